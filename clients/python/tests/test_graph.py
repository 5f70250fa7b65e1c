"""Reads, traversals and counts against a running demo."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from rtgraph import (
    BadRequest,
    Client,
    CountsLookup,
    Hop,
    InvalidCursor,
    Node,
    NodeKey,
    NotFound,
    OverCap,
    ProblemError,
    TraversalResult,
    UnknownType,
)

from .conftest import wait_for

START_ACCOUNTS = [("account", str(i)) for i in range(1001, 1031)]


def test_node_account_1001(client: Client, account_1001: Node) -> None:
    n = account_1001
    assert n.watermark is not None and n.watermark.known == (n.watermark.event_time is not None)
    # The watermark becomes known once every partition has been consumed.
    n = wait_for(lambda: (m := client.node("account", "1001")).watermark.known and m, what="a known watermark")
    assert (n.type, n.id) == ("account", "1001")
    assert n.key == NodeKey("account", "1001")
    assert isinstance(n.props["country"], str) and len(n.props["country"]) == 2
    assert isinstance(n.props["lifetime_months"], int)
    assert n.props["status"] in {"active", "on_hold", "closed"}
    assert n.event_time is not None and n.event_time.tzinfo is not None
    assert n.watermark is not None and n.watermark.known
    assert n.watermark.event_time is not None and n.watermark.event_time.tzinfo is not None


def test_node_not_found(client: Client) -> None:
    with pytest.raises(NotFound) as ei:
        client.node("account", "no/such account")
    e = ei.value
    assert e.status == 404
    assert e.type == "urn:rtgraph:problem:not-found"
    assert e.title == "Not found"
    # The id went to the server percent-encoded and came back decoded.
    assert "account:no/such account" in (e.detail or "")
    assert e.request_id


@pytest.fixture(scope="module")
def two_hops(demo) -> TraversalResult:
    """accounts -has_profile-> profiles -viewed_title-> titles, once some title views are in."""
    with Client(demo.url) as c:

        def run():
            r = c.traverse(START_ACCOUNTS, [Hop("has_profile"), {"edge_types": ["viewed_title"], "direction": "out"}])
            return r if any(e.hop == 2 for e in r.edges) else None

        return wait_for(run, what="a 2-hop traversal reaching titles")


def test_two_hop_traversal(two_hops: TraversalResult) -> None:
    r = two_hops
    assert [h.hop for h in r.hops] == [1, 2]
    assert r.watermark is not None and r.watermark.known
    nodes = {n.key: n for n in r.nodes}
    assert len(nodes) == len(r.nodes), "a node is returned once"
    starts = {NodeKey(t, i) for t, i in START_ACCOUNTS}
    assert {k for k, n in nodes.items() if n.hop == 0} == starts
    hop1 = [e for e in r.edges if e.hop == 1]
    hop2 = [e for e in r.edges if e.hop == 2]
    assert hop1 and hop2
    assert len(hop1) + len(hop2) == len(r.edges)
    for e in hop1:
        assert e.type == "has_profile" and e.from_ in starts and e.to.type == "profile"
        assert nodes[e.to].hop == 1
    profiles = {e.to for e in hop1}
    for e in hop2:
        assert e.type == "viewed_title" and e.from_ in profiles and e.to.type == "title"
        assert e.to in nodes
    for h in r.hops:
        assert h.edges == sum(1 for e in r.edges if e.hop == h.hop)
    assert len({e.key for e in r.edges}) == len(r.edges), "an edge is returned once"


def test_traversal_truncation_and_cursor(client: Client, two_hops: TraversalResult) -> None:
    # A hop limit of 1 truncates hop 1; its cursor continues exactly there.
    hops = [Hop("has_profile", limit=1)]
    first = client.traverse(START_ACCOUNTS, hops)
    assert first.truncated and first.hops[0].truncated and "hop_limit" in first.hops[0].reasons
    assert first.next_cursor and len(first.edges) == 1
    seen = {first.edges[0].key}
    r = first
    for _ in range(200):
        if not r.truncated:
            break
        r = client.traverse(START_ACCOUNTS, hops, cursor=r.next_cursor)
        for e in r.edges:
            assert e.key not in seen, "a continuation does not repeat an edge"
            seen.add(e.key)
    assert not r.truncated
    assert len(seen) > 1


def test_to_networkx_matches_traversal(two_hops: TraversalResult) -> None:
    r = two_hops
    g = r.to_networkx()
    assert g.is_directed() and g.is_multigraph()
    assert g.number_of_nodes() == len(r.nodes)
    assert g.number_of_edges() == len(r.edges)
    for n in r.nodes:
        assert g.nodes[f"{n.type}:{n.id}"] == n.props
    for e in r.edges:
        assert g.has_edge(e.from_.ref, e.to.ref, key=e.type)
        assert g.edges[e.from_.ref, e.to.ref, e.type] == e.props


def test_traversal_to_pandas(two_hops: TraversalResult) -> None:
    nodes, edges = two_hops.to_pandas()
    assert len(nodes) == len(two_hops.nodes) and len(edges) == len(two_hops.edges)
    assert str(nodes["hop"].dtype) == "Int64"
    assert str(nodes["event_time"].dtype) == "datetime64[ns, UTC]"
    assert str(nodes["lifetime_months"].dtype) == "Int64"  # account, int
    assert str(nodes["kids"].dtype) == "boolean"  # profile, bool
    assert str(nodes["name"].dtype) == "string"
    assert str(edges["position"].dtype) == "Int64"  # viewed_title, int
    assert str(edges["primary"].dtype) == "boolean"  # has_profile, bool
    assert set(edges["type"]) == {"has_profile", "viewed_title"}
    acct = nodes[(nodes["type"] == "account") & (nodes["id"] == "1001")]
    # "status" is also a traversal column: the property is prefixed.
    if len(acct) and two_hops.nodes[acct.index[0]].status == "found":
        assert acct["props.status"].iloc[0] == two_hops.nodes[acct.index[0]].props["status"]


def _busiest_title(client: Client, r: TraversalResult, at_least: int) -> NodeKey | None:
    counts = Counter(e.to for e in r.edges if e.type == "viewed_title")
    for title, _ in counts.most_common(5):
        if len(client.edges_page(title.type, title.id, "viewed_title", direction="in", limit=at_least).edges) >= at_least:
            return title
    return None


@pytest.mark.parametrize("order", ["latest", "key"])
def test_edge_cursors_yield_no_duplicates(client: Client, two_hops: TraversalResult, order: str) -> None:
    title = wait_for(lambda: _busiest_title(client, two_hops, 5), what="a title viewed by 5 profiles")
    it = client.edges(title.type, title.id, "viewed_title", direction="in", limit=2, order=order)
    edges = list(it)
    assert it.pages_fetched >= 3
    assert it.watermark is not None and it.watermark.known
    keys = [e.key for e in edges]
    assert len(keys) == len(set(keys)) >= 5
    for e in edges:
        assert e.type == "viewed_title" and e.to == title and e.from_.type == "profile"
    if order == "key":
        far = [(e.from_.type.encode(), e.from_.id.encode()) for e in edges]
        assert far == sorted(far)
    # max_edges stops early.
    assert len(client.edges(title.type, title.id, "viewed_title", direction="in", limit=2, max_edges=3).to_list()) == 3


def test_edges_to_pandas(client: Client, account_1001: Node) -> None:
    df = client.edges("account", "1001", "has_profile", limit=1).to_pandas()
    assert list(df.columns[:7]) == ["type", "from_type", "from_id", "to_type", "to_id", "event_time", "expires_at"]
    assert str(df["event_time"].dtype) == "datetime64[ns, UTC]"
    assert str(df["from_id"].dtype) == "string"
    if len(df):
        assert set(df["from_id"]) == {"1001"}
        assert str(df["primary"].dtype) == "boolean"
        assert str(df["created_at"].dtype) == "string"


def test_float_and_bool_props_to_pandas(client: Client) -> None:
    def impressions():
        for i in range(9001, 9031):
            edges = client.edges("user", f"u-{i}", "impressed", limit=50).to_list()
            if edges:
                return edges
        return None

    edges = wait_for(impressions, what="impressions of users u-9001..u-9030")
    from rtgraph import edges_frame

    df = edges_frame(edges, client._schema_for_frames())
    assert str(df["dwell_s"].dtype) == "Float64"
    assert str(df["cost_micros"].dtype) == "Int64"
    assert str(df["viewable"].dtype) == "boolean"
    assert str(df["placement"].dtype) == "string"
    assert str(df["expires_at"].dtype) == "datetime64[ns, UTC]"
    assert df["expires_at"].notna().all()  # impressed has a TTL


def test_counts(client: Client) -> None:
    def user_with_campaign():
        for i in range(9001, 9031):
            for e in client.edges("user", f"u-{i}", "impressed", limit=50):
                if e.to.type == "campaign":
                    return e
        return None

    edge = wait_for(user_with_campaign, what="a user's impression of a campaign")
    user, target = edge.from_, edge.to
    assert edge.event_time is not None and edge.event_time > datetime.now(timezone.utc) - timedelta(days=1)

    def counted():
        r = client.counts(user.ref, [target.ref], edge_type="impressed", windows=["1m", "1d", "7d"],
                          caps=[(target, "1d", 1_000_000)])
        return r if r.count(target, "1d") >= 1 else None

    r = wait_for(counted, what=f"{user.ref}'s impressions of {target.ref} counted")
    assert r.user == user.ref and r.edge_type == "impressed"
    assert r.windows == ["1m", "1d", "7d"]
    c = r.targets[0].counts
    assert c["7d"] >= c["1d"] >= c["1m"] >= 0 and c["1d"] >= 1
    (cap,) = r.caps
    assert (cap.target, cap.window, cap.max) == (target.ref, "1d", 1_000_000)
    assert cap.count == c["1d"] and cap.remaining == 1_000_000 - cap.count and cap.allowed and r.allowed
    assert r.watermark is not None and r.watermark.known

    # A cap already reached is not allowed.
    full = client.counts((user.type, user.id), edge_type="impressed", caps=[f"{target.ref},7d,1"])
    assert full.caps[0].count >= 1 and not full.caps[0].allowed and full.caps[0].remaining == 0 and not full.allowed

    batch = client.counts_batch([
        CountsLookup(user, "impressed", [target], windows="1d"),
        {"user": "user:u-never-seen", "edge_type": "impressed", "targets": [target.ref], "windows": ["1d"]},
    ])
    assert [x.user for x in batch.results] == [user.ref, "user:u-never-seen"]
    assert batch.results[0].count(target, "1d") >= 1
    assert batch.results[1].count(target, "1d") == 0
    assert batch.watermark is not None and batch.watermark.known


def test_problem_bad_direction(client: Client, account_1001: Node) -> None:
    with pytest.raises(BadRequest) as ei:
        client.edges("account", "1001", "has_profile", direction="sideways").to_list()
    e = ei.value
    assert isinstance(e, ProblemError)
    assert e.status == 400
    assert e.type == "urn:rtgraph:problem:invalid-parameter" and e.slug == "invalid-parameter"
    assert e.title == "Invalid parameter"
    assert e.field == "direction"
    assert "sideways" in (e.detail or "")
    assert e.cap is None and e.request_id
    assert e.watermark is not None and e.watermark.known
    assert "field direction" in str(e)


def test_problem_unknown_type(client: Client) -> None:
    with pytest.raises(UnknownType) as ei:
        client.node("spaceship", "1")
    assert ei.value.status == 400 and ei.value.field == "type"
    assert ei.value.type == "urn:rtgraph:problem:unknown-type"


def test_problem_over_cap(client: Client) -> None:
    with pytest.raises(OverCap) as ei:
        client.edges_page("account", "1001", "has_profile", limit=1_000_000)
    e = ei.value
    assert e.status == 422 and e.type == "urn:rtgraph:problem:over-cap"
    assert e.field == "limit" and e.cap == 5000
    with pytest.raises(OverCap) as ei:
        client.traverse(START_ACCOUNTS[:1], [Hop("has_profile"), Hop("viewed_title", limit=1_000_000)])
    assert ei.value.field == "hops[1].limit" and ei.value.cap == 5000


def test_problem_cursor_of_another_query(client: Client, two_hops: TraversalResult) -> None:
    # A cursor is bound to its query: another node's listing refuses it.
    account = next(e.from_ for e in two_hops.edges if e.type == "has_profile")
    other = next(e.from_ for e in two_hops.edges if e.type == "viewed_title")
    page = client.edges_page(account.type, account.id, "has_profile", limit=1)
    if not page.has_more:
        page = client.edges_page(other.type, other.id, "viewed_title", limit=1)
        account, other = other, account
    assert page.has_more and page.next_cursor
    with pytest.raises(InvalidCursor) as ei:
        client.edges_page("account", "no-such-account", "has_profile", limit=1, cursor=page.next_cursor)
    assert ei.value.status == 400 and ei.value.field == "cursor"
