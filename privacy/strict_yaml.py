"""Safe YAML that refuses a key given twice in one mapping (PyYAML keeps the last one
silently): the loader contracts and the dashboard's users file are read with.

>>> import yaml
>>> Loader = unique_key_loader("key '{key}' is given twice")
>>> yaml.load("{role: viewer}", Loader=Loader)
{'role': 'viewer'}
>>> yaml.load("{role: viewer, role: operator}", Loader=Loader)  # doctest: +ELLIPSIS
Traceback (most recent call last):
yaml.constructor.ConstructorError: key 'role' is given twice
...
"""

from __future__ import annotations

from typing import Any

import yaml


def unique_key_loader(duplicate: str = "duplicate key '{key}'") -> type[yaml.SafeLoader]:
    """A ``yaml.SafeLoader`` subclass that raises ``ConstructorError`` with the message
    ``duplicate`` (``{key}``: the key) at a key given twice in one mapping."""

    class UniqueKeyLoader(yaml.SafeLoader):
        pass

    def mapping(loader: yaml.SafeLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node)  # type: ignore[no-untyped-call]
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, duplicate.format(key=key), key_node.start_mark
                )
            seen.add(key)
        return loader.construct_mapping(node)

    UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, mapping  # type: ignore[arg-type]
    )
    return UniqueKeyLoader
