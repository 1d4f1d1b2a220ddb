"""The one Prefect event every source emits (flows.events)."""

from __future__ import annotations

from flows.events import object_event
from flows.objectstore import ObjectInfo


def test_object_event_identifies_bucket_and_key() -> None:
    info = ObjectInfo("my-bucket", "landing/employees/Q1 report.csv", "0123abcd", 4321)
    ev = object_event(info, "tns", "watcher")
    assert ev.event == "tns.object.created"
    assert ev.resource.id == "tns.object.my-bucket/landing/employees/Q1 report.csv"
    assert ev.resource["bucket"] == "my-bucket"
    assert ev.resource["key"] == "landing/employees/Q1 report.csv"
    assert ev.resource.name == "landing/employees/Q1 report.csv"
    assert ev.payload == {"etag": "0123abcd", "size": 4321, "source": "watcher"}
    assert ev.related == []


def test_each_event_has_its_own_id_and_the_namespace_prefixes_everything() -> None:
    info = ObjectInfo("b", "landing/ds/a.csv", "e", 1)
    a, b = object_event(info, "pa", "sweep"), object_event(info, "pa", "sweep")
    assert a.id != b.id
    assert a.event == "pa.object.created"
    assert a.resource.id.startswith("pa.object.")


def test_event_round_trips_through_json() -> None:
    from prefect.events import Event

    ev = object_event(ObjectInfo("b", "landing/ds/a+b (1).csv", '"q"', 0), "pa", "webhook")
    back = Event.model_validate_json(ev.model_dump_json())
    assert back.resource["key"] == "landing/ds/a+b (1).csv"
    assert back.payload["etag"] == '"q"'
