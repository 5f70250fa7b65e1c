"""GET /v1/schema, GET /v1/nodes/{type} (listing) and GET /v1/nodes/{type}/{id}/degree."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rtgraph import Client, Node, NodeKey, UnknownType

from .conftest import wait_for


def test_schema(client: Client) -> None:
    s = client.schema()
    names = [n.name for n in s.node_types]
    assert names == sorted(names)
    assert {"account", "profile", "title", "user", "campaign"} <= set(names)
    account = s.node_type("account")
    assert account is not None and not account.implicit
    assert account.props["lifetime_months"] == "int" and account.props["country"] == "string"
    assert s.node_type("profile").props["kids"] == "bool"  # type: ignore[union-attr]
    assert s.node_type("user").implicit  # type: ignore[union-attr]
    edge_names = [e.name for e in s.edge_types]
    assert edge_names == sorted(edge_names)
    hp = s.edge_type("has_profile")
    assert hp is not None and hp.from_types == ["account"] and hp.to_types == ["profile"] and hp.reverse
    assert hp.ttl_seconds is None and hp.props["primary"] == "bool"
    imp = s.edge_type("impressed")
    assert imp is not None and not imp.reverse and imp.ttl_seconds == 7 * 86400 + 3600
    assert set(imp.to_types) == {"campaign", "creative"} and imp.props["dwell_s"] == "float"
    assert "has_profile" in s.edge_types_of("account", "out")
    assert "has_profile" in s.edge_types_of("profile", "in")
    assert "impressed" not in s.edge_types_of("campaign", "in")
    assert s.watermark is not None


def test_list_nodes_follows_cursors(client: Client, account_1001: Node) -> None:
    it = client.nodes("account", limit=3)
    nodes = list(it)
    assert it.pages_fetched >= 2
    ids = [n.id for n in nodes]
    assert len(ids) == len(set(ids)), "a listing returns a node once"
    assert all(n.type == "account" for n in nodes)
    assert [i.encode() for i in ids] == sorted(i.encode() for i in ids)  # embedded store: by id bytes
    assert "1001" in ids
    assert it.watermark is not None
    assert len(client.nodes("account", limit=2, max_nodes=3).to_list()) == 3


def test_list_nodes_fields(client: Client, account_1001: Node) -> None:
    some = client.nodes("account", fields=["country"], limit=50, max_nodes=50).to_list()
    assert some and all(set(n.props) <= {"country"} for n in some)
    assert any("country" in n.props for n in some)
    bare = client.nodes("account", fields=[], limit=50, max_nodes=50).to_list()
    assert bare and all(n.props == {} for n in bare)


def test_list_nodes_to_pandas(client: Client, account_1001: Node) -> None:
    df = client.nodes("account", limit=100, max_nodes=200).to_pandas()
    assert len(df) >= 1
    assert str(df["id"].dtype) == "string"
    assert str(df["event_time"].dtype) == "datetime64[ns, UTC]"
    assert str(df["lifetime_months"].dtype) == "Int64"
    assert str(df["country"].dtype) == "string"
    assert "1001" in set(df["id"])


def test_list_nodes_unknown_type(client: Client) -> None:
    with pytest.raises(UnknownType):
        client.nodes("spaceship").to_list()


def test_degree_matches_the_edges_listing(client: Client, account_1001: Node) -> None:
    def stable():
        before = client.degree("account", "1001", "has_profile", "out")
        edges = client.edges("account", "1001", "has_profile", order="key", since="1970-01-01T00:00:00Z").to_list()
        after = client.degree("account", "1001", "has_profile", "out")
        if before.degrees == after.degrees:
            return before, edges
        return None

    d, edges = wait_for(stable, what="two equal degree reads around a listing")
    assert d.node == NodeKey("account", "1001")
    assert [(x.edge_type, x.direction) for x in d.degrees] == [("has_profile", "out")]
    assert d.count("has_profile", "out") == len(edges) == d.total
    # One page holds up to 5000 edges: one store read counted this degree.
    assert d.store_reads == 1
    assert d.watermark is not None


def test_degree_of_every_edge_type(client: Client, account_1001: Node) -> None:
    s = client.schema()
    d = client.degree("account", "1001")
    got = {(x.edge_type, x.direction) for x in d.degrees}
    want = {(t, "out") for t in s.edge_types_of("account", "out")} | {(t, "in") for t in s.edge_types_of("account", "in")}
    assert got == want
    assert all(x.count >= 0 for x in d.degrees)
    assert d.store_reads >= len(d.degrees)
    assert d.count("has_profile", "out") >= 1


def test_degree_in_a_window(client: Client, account_1001: Node) -> None:
    d = client.degree("account", "1001", "has_profile", "out", since="1970-01-01T00:00:00Z", until="1970-01-02T00:00:00Z")
    assert d.window is not None
    assert d.window.since == datetime(1970, 1, 1, tzinfo=timezone.utc)
    assert d.window.until == datetime(1970, 1, 2, tzinfo=timezone.utc)
    assert d.count("has_profile", "out") == 0  # no edge of the demo is that old


def test_degree_unknown_edge_type(client: Client) -> None:
    with pytest.raises(UnknownType) as ei:
        client.degree("account", "1001", "no_such_edge")
    assert ei.value.status == 400


def test_frames_are_typed_by_the_server_schema(client: Client, account_1001: Node) -> None:
    from dataclasses import replace

    r = client.traverse(("account", "1001"), "has_profile")
    nodes, _ = r.to_pandas()
    assert client._schema is not None, "to_pandas fetched GET /v1/schema"
    assert str(nodes["lifetime_months"].dtype) == "Int64"
    # A schema given explicitly wins: the same column declared float.
    s = client._schema
    acct = replace(s.node_type("account"), props={**s.node_type("account").props, "lifetime_months": "float"})  # type: ignore[union-attr,arg-type]
    other = replace(s, node_types=[acct if n.name == "account" else n for n in s.node_types])
    nodes, _ = r.to_pandas(other)
    assert str(nodes["lifetime_months"].dtype) == "Float64"
