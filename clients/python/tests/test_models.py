"""Parsing and conversions that need no server."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rtgraph import (
    CountCap,
    CountsLookup,
    Edge,
    Hop,
    Node,
    NodeKey,
    Schema,
    edges_frame,
    nodes_frame,
)
from rtgraph.errors import ProblemError
from rtgraph.models import keys_json

SCHEMA = Schema.from_json({
    "node_types": [
        {"name": "thing", "implicit": False,
         "props": {"n": "int", "x": "float", "ok": "bool", "s": "string", "at": "time", "id": "string"}},
    ],
    "edge_types": [
        {"name": "links", "from": ["thing"], "to": ["thing"], "props": {"w": "float", "since": "time"},
         "multiplicity": "simple", "reverse": True, "ttl_seconds": 60},
    ],
    "watermark": {"event_time": None, "known": False},
})


def test_nodes_frame_types_columns_from_the_schema() -> None:
    nodes = [
        Node("thing", "a", {"n": 1, "x": 2, "ok": True, "s": "one", "at": "2026-11-25T09:00:00.000001Z", "id": "x"},
             datetime(2026, 11, 25, tzinfo=timezone.utc)),
        Node("thing", "b", {"n": None, "x": 1.5, "extra": 7}, None),
    ]
    df = nodes_frame(nodes, SCHEMA)
    dtypes = {c: str(t) for c, t in df.dtypes.items()}
    assert dtypes == {
        "type": "string", "id": "string", "event_time": "datetime64[ns, UTC]",
        "n": "Int64", "x": "Float64", "ok": "boolean", "s": "string", "at": "datetime64[ns, UTC]",
        "props.id": "string", "extra": "Int64",
    }
    assert df["at"].iloc[0].microsecond == 1 and df["at"].isna().iloc[1]
    assert df["n"].isna().iloc[1] and df["x"].iloc[0] == 2.0
    assert df["event_time"].isna().iloc[1]


def test_nodes_frame_without_a_schema_infers_types() -> None:
    df = nodes_frame([Node("thing", "a", {"n": 1, "f": 1.5, "b": False, "s": "x", "mixed": 1}),
                      Node("thing", "b", {"n": 2, "f": 2, "mixed": "y"})])
    assert str(df["n"].dtype) == "Int64" and str(df["f"].dtype) == "Float64"
    assert str(df["b"].dtype) == "boolean" and str(df["s"].dtype) == "string"
    assert str(df["mixed"].dtype) == "object"


def test_empty_frames_keep_their_columns() -> None:
    assert list(nodes_frame([], SCHEMA).columns) == ["type", "id", "event_time"]
    df = edges_frame([], SCHEMA)
    assert list(df.columns) == ["type", "from_type", "from_id", "to_type", "to_id", "event_time", "expires_at"]
    assert str(df["event_time"].dtype) == "datetime64[ns, UTC]"


def test_edges_frame() -> None:
    e = Edge.from_json({"type": "links", "from": {"type": "thing", "id": "a"}, "to": {"type": "thing", "id": "b"},
                        "props": {"w": 1, "since": "2026-11-25T09:00:00Z"}, "event_time": "2026-11-25T09:00:00Z",
                        "expires_at": "2026-11-25T09:01:00Z", "hop": 1})
    df = edges_frame([e], SCHEMA)
    assert str(df["w"].dtype) == "Float64" and str(df["since"].dtype) == "datetime64[ns, UTC]"
    assert str(df["hop"].dtype) == "Int64" and df["expires_at"].iloc[0] == datetime(2026, 11, 25, 9, 1, tzinfo=timezone.utc)


def test_node_references() -> None:
    assert NodeKey.of("user:u:1") == NodeKey("user", "u:1")
    assert keys_json(("account", "1")) == [{"type": "account", "id": "1"}]
    assert keys_json([NodeKey("a", "1"), ("b", "2"), "c:3", {"type": "d", "id": "4"}]) == [
        {"type": "a", "id": "1"}, {"type": "b", "id": "2"}, {"type": "c", "id": "3"}, {"type": "d", "id": "4"}]
    assert keys_json((NodeKey("a", "1"), NodeKey("b", "2"))) == [{"type": "a", "id": "1"}, {"type": "b", "id": "2"}]
    with pytest.raises(ValueError):
        NodeKey.of("no-colon")


def test_caps_and_lookups() -> None:
    assert CountCap.of("campaign:c,1,1d,5") == CountCap("campaign:c,1", "1d", 5)
    assert CountCap.of((("campaign", "c-1"), "1h", 2)).to_param() == "campaign:c-1,1h,2"
    lk = CountsLookup(("user", "u-1"), "impressed", ["campaign:c-1"], windows="1m,1d",
                      as_of=datetime(2026, 11, 25, 9, 0, tzinfo=timezone.utc), caps=[("campaign:c-1", "1d", 3)])
    assert lk.to_json() == {"user": "user:u-1", "edge_type": "impressed", "targets": ["campaign:c-1"],
                            "windows": ["1m", "1d"], "as_of": "2026-11-25T09:00:00Z",
                            "caps": [{"target": "campaign:c-1", "window": "1d", "max": 3}]}


def test_hop_json() -> None:
    h = Hop("viewed_title", direction="in", limit=5, since=datetime(2026, 1, 1, tzinfo=timezone.utc), where={"kids": False})
    assert h.to_json() == {"edge_types": ["viewed_title"], "direction": "in", "limit": 5, "where": {"kids": False},
                           "since": "2026-01-01T00:00:00Z"}


def test_problem_str() -> None:
    e = ProblemError(422, "urn:rtgraph:problem:over-cap", "Over a server limit", "too many", field="limit", cap=5000,
                     request_id="r1")
    assert str(e) == "422 over-cap: too many (field limit, cap 5000) [request r1]"
