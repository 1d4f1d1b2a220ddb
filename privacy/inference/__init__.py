"""Draft a dataset contract from a file, for a human to review.

``infer_contract(lf, dataset)`` looks at the column names and a sample of the rows and
proposes a role and a type per column: direct identifiers (by name, by content, by
near-uniqueness), quasi-identifiers with a standard generalization, time columns,
measures (``bounds: auto``) and dimensions; high-cardinality text is dropped. See
docs/architecture.md, "Drafts".

>>> import polars as pl
>>> draft = infer_contract(pl.LazyFrame({"email": ["a@x.org", "b@y.org"]}), "signups")
>>> print(draft.split("columns:")[1].split("analyses:")[0].strip())
email:  # column name suggests an email address
    role: identifier
    type: string
    action: pseudonymize  # keyed HMAC-SHA256 pseudonym
"""

from privacy.inference.drafts import infer_contract

__all__ = ["infer_contract"]
