"""Typed results, parsed from exactly the JSON shapes of api/openapi.yaml."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

if TYPE_CHECKING:  # pragma: no cover
    import networkx
    import pandas

Props = dict[str, Any]


def parse_time(value: str | None) -> datetime | None:
    """An RFC 3339 time as an aware datetime (UTC when the text says Z)."""
    if value is None or value == "":
        return None
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt


def format_time(value: datetime | str) -> str:
    """A datetime (naive means UTC) or RFC 3339 text, as RFC 3339 text."""
    if isinstance(value, str):
        return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Watermark:
    """The event time up to which ingestion is complete (None when unknown)."""

    event_time: datetime | None
    known: bool

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Watermark | None:
        if d is None:
            return None
        return cls(parse_time(d.get("event_time")), bool(d.get("known")))


@dataclass(frozen=True)
class NodeKey:
    """A node's identity: its type and id."""

    type: str
    id: str

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NodeKey:
        return cls(d["type"], d["id"])

    @classmethod
    def of(cls, value: NodeKey | Node | TraversalNode | tuple[str, str] | Mapping[str, Any] | str) -> NodeKey:
        """Accepts a NodeKey, a Node, a (type, id) pair, a {"type","id"} dict or "type:id"."""
        if isinstance(value, NodeKey):
            return value
        if isinstance(value, (Node, TraversalNode)):
            return value.key
        if isinstance(value, str):
            t, sep, i = value.partition(":")
            if not sep or not t or not i:
                raise ValueError(f"not a node reference type:id: {value!r}")
            return cls(t, i)
        if isinstance(value, Mapping):
            return cls(value["type"], value["id"])
        t, i = value
        return cls(t, i)

    @property
    def ref(self) -> str:
        """The node as type:id (the NodeRef form of counts)."""
        return f"{self.type}:{self.id}"

    def to_json(self) -> dict[str, str]:
        return {"type": self.type, "id": self.id}


@dataclass(frozen=True, eq=True)
class Node:
    """A node with its properties and the event time of its last write."""

    type: str
    id: str
    props: Props = field(default_factory=dict, hash=False, compare=True)
    event_time: datetime | None = None
    #: The response's watermark, for a node read on its own (GET /v1/nodes/{type}/{id}).
    watermark: Watermark | None = field(default=None, hash=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any], watermark: Watermark | None = None) -> Node:
        return cls(d["type"], d["id"], dict(d.get("props") or {}), parse_time(d.get("event_time")), watermark)

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.type, self.id)


@dataclass(frozen=True)
class TraversalNode:
    """A node reached by a traversal: status is found, missing or not_read; hop 0 for start nodes."""

    type: str
    id: str
    status: str
    hop: int
    props: Props = field(default_factory=dict, hash=False)
    event_time: datetime | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TraversalNode:
        return cls(
            d["type"], d["id"], d["status"], int(d["hop"]), dict(d.get("props") or {}), parse_time(d.get("event_time"))
        )

    @property
    def key(self) -> NodeKey:
        return NodeKey(self.type, self.id)


@dataclass(frozen=True)
class Edge:
    """An edge. ``from_`` is the JSON ``from`` (a Python keyword); ``hop`` is set in traversals."""

    type: str
    from_: NodeKey
    to: NodeKey
    props: Props = field(default_factory=dict, hash=False)
    event_time: datetime | None = None
    expires_at: datetime | None = None
    hop: int | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Edge:
        return cls(
            d["type"],
            NodeKey.from_json(d["from"]),
            NodeKey.from_json(d["to"]),
            dict(d.get("props") or {}),
            parse_time(d.get("event_time")),
            parse_time(d.get("expires_at")),
            d.get("hop"),
        )

    @property
    def key(self) -> tuple[NodeKey, NodeKey, str]:
        return (self.from_, self.to, self.type)


@dataclass(frozen=True)
class Window:
    """An event-time window [since, until); None is unbounded."""

    since: datetime | None
    until: datetime | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any] | None) -> Window | None:
        if d is None:
            return None
        return cls(parse_time(d.get("since")), parse_time(d.get("until")))


@dataclass(frozen=True)
class EdgesPage:
    """One page of GET /v1/nodes/{type}/{id}/edges."""

    node: NodeKey
    edge_type: str
    direction: str
    order: str
    window: Window | None
    edges: list[Edge]
    has_more: bool
    next_cursor: str | None
    watermark: Watermark | None
    #: Where to_pandas gets the schema from when none is given (set by the Client).
    _schema_source: Callable[[], Schema | None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> EdgesPage:
        return cls(
            NodeKey.from_json(d["node"]),
            d["edge_type"],
            d["direction"],
            d["order"],
            Window.from_json(d.get("window")),
            [Edge.from_json(e) for e in d.get("edges") or []],
            bool(d["has_more"]),
            d.get("next_cursor"),
            Watermark.from_json(d.get("watermark")),
        )

    def to_pandas(self, schema: Schema | None = None) -> pandas.DataFrame:
        """This page's edges as a DataFrame (see rtgraph.edges_frame), typed by the schema
        (the client's when none is given; property types are inferred without one)."""
        from .frames import edges_frame

        if schema is None and self._schema_source is not None:
            schema = self._schema_source()
        return edges_frame(self.edges, schema=schema)


@dataclass(frozen=True)
class NodesPage:
    """One page of GET /v1/nodes/{type} (the listing)."""

    type: str
    nodes: list[Node]
    has_more: bool
    next_cursor: str | None
    watermark: Watermark | None
    #: Where to_pandas gets the schema from when none is given (set by the Client).
    _schema_source: Callable[[], Schema | None] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> NodesPage:
        return cls(
            d["type"],
            [Node.from_json(n) for n in d.get("nodes") or []],
            bool(d["has_more"]),
            d.get("next_cursor"),
            Watermark.from_json(d.get("watermark")),
        )

    def to_pandas(self, schema: Schema | None = None) -> pandas.DataFrame:
        """This page's nodes as a DataFrame (see rtgraph.nodes_frame), typed by the schema
        (the client's when none is given; property types are inferred without one)."""
        from .frames import nodes_frame

        if schema is None and self._schema_source is not None:
            schema = self._schema_source()
        return nodes_frame(self.nodes, schema=schema)


@dataclass(frozen=True)
class Degree:
    """The number of a node's visible edges of one type in one direction."""

    edge_type: str
    direction: str
    count: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Degree:
        return cls(d["edge_type"], d["direction"], int(d["count"]))


@dataclass(frozen=True)
class DegreeResult:
    """GET /v1/nodes/{type}/{id}/degree: degrees by edge type and direction."""

    node: NodeKey
    degrees: list[Degree]
    window: Window | None
    #: Adjacency pages the server read from its store to count (stats.store_reads).
    store_reads: int
    duration_ms: float
    watermark: Watermark | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> DegreeResult:
        stats = d.get("stats") or {}
        return cls(
            NodeKey.from_json(d["node"]),
            [Degree.from_json(x) for x in d.get("degrees") or []],
            Window.from_json(d.get("window")),
            int(stats.get("store_reads", 0)),
            float(stats.get("duration_ms", 0)),
            Watermark.from_json(d.get("watermark")),
        )

    @property
    def total(self) -> int:
        """The sum over every edge type and direction returned."""
        return sum(x.count for x in self.degrees)

    def count(self, edge_type: str, direction: str = "out") -> int:
        """The degree of one edge type and direction (0 when not returned)."""
        return sum(x.count for x in self.degrees if x.edge_type == edge_type and x.direction == direction)


@dataclass(frozen=True)
class HopResult:
    """What one hop of a traversal did."""

    hop: int
    edges: int
    new_nodes: int
    skipped: bool
    truncated: bool
    reasons: list[str]
    unread_edges: int
    unread_exact: bool
    cursor: str | None = None
    cursor_too_large: bool = False

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> HopResult:
        return cls(
            int(d["hop"]),
            int(d["edges"]),
            int(d["new_nodes"]),
            bool(d["skipped"]),
            bool(d["truncated"]),
            list(d.get("reasons") or []),
            int(d["unread_edges"]),
            bool(d["unread_exact"]),
            d.get("cursor"),
            bool(d.get("cursor_too_large", False)),
        )


@dataclass(frozen=True)
class TraversalStats:
    store_reads: int
    duration_ms: float


@dataclass(frozen=True)
class TraversalResult:
    """POST /v1/traversals: the nodes and edges reached, per-hop results, and a cursor when truncated."""

    nodes: list[TraversalNode]
    edges: list[Edge]
    hops: list[HopResult]
    truncated: bool
    next_cursor: str | None
    stats: TraversalStats
    watermark: Watermark | None
    paths: list[list[int]] | None = None
    #: Where to_pandas gets the schema from when none is given (set by the Client).
    _schema_source: Callable[[], Schema | None] | None = field(default=None, repr=False, compare=False)

    def _schema(self, schema: Schema | None) -> Schema | None:
        if schema is None and self._schema_source is not None:
            return self._schema_source()
        return schema

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TraversalResult:
        stats = d.get("stats") or {}
        return cls(
            [TraversalNode.from_json(n) for n in d.get("nodes") or []],
            [Edge.from_json(e) for e in d.get("edges") or []],
            [HopResult.from_json(h) for h in d.get("hops") or []],
            bool(d["truncated"]),
            d.get("next_cursor"),
            TraversalStats(int(stats.get("store_reads", 0)), float(stats.get("duration_ms", 0))),
            Watermark.from_json(d.get("watermark")),
            d.get("paths"),
        )

    def nodes_frame(self, schema: Schema | None = None) -> pandas.DataFrame:
        """The nodes as a DataFrame (see rtgraph.nodes_frame), with status and hop columns."""
        from .frames import nodes_frame

        return nodes_frame(self.nodes, schema=self._schema(schema))

    def edges_frame(self, schema: Schema | None = None) -> pandas.DataFrame:
        """The edges as a DataFrame (see rtgraph.edges_frame), with a hop column."""
        from .frames import edges_frame

        return edges_frame(self.edges, schema=self._schema(schema))

    def to_pandas(self, schema: Schema | None = None) -> tuple[pandas.DataFrame, pandas.DataFrame]:
        """(nodes DataFrame, edges DataFrame), typed by the schema (the client's when none is given)."""
        schema = self._schema(schema)
        return self.nodes_frame(schema), self.edges_frame(schema)

    def to_networkx(self) -> networkx.MultiDiGraph:
        """A MultiDiGraph: nodes keyed "type:id" with their props as attributes, edges keyed by edge type."""
        from .frames import to_networkx

        return to_networkx(self.nodes, self.edges)


@dataclass(frozen=True)
class TargetCounts:
    """A target (type:id) and its impressions per window."""

    target: str
    counts: dict[str, int]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TargetCounts:
        return cls(d["target"], {k: int(v) for k, v in (d.get("counts") or {}).items()})


@dataclass(frozen=True)
class CountCapResult:
    target: str
    window: str
    max: int
    count: int
    allowed: bool
    remaining: int

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CountCapResult:
        return cls(d["target"], d["window"], int(d["max"]), int(d["count"]), bool(d["allowed"]), int(d["remaining"]))


@dataclass(frozen=True)
class CountsResult:
    """One user's impression counts towards targets in windows, with caps."""

    user: str
    edge_type: str
    as_of: datetime | None
    windows: list[str]
    targets: list[TargetCounts]
    caps: list[CountCapResult]
    allowed: bool
    watermark: Watermark | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CountsResult:
        return cls(
            d["user"],
            d["edge_type"],
            parse_time(d.get("as_of")),
            list(d.get("windows") or []),
            [TargetCounts.from_json(t) for t in d.get("targets") or []],
            [CountCapResult.from_json(c) for c in d.get("caps") or []],
            bool(d["allowed"]),
            Watermark.from_json(d.get("watermark")),
        )

    def count(self, target: str | NodeKey | tuple[str, str], window: str) -> int:
        """Impressions towards target in window (KeyError when not asked for)."""
        ref = NodeKey.of(target).ref
        for t in self.targets:
            if t.target == ref:
                return t.counts[window]
        raise KeyError(ref)


@dataclass(frozen=True)
class CountsBatchResult:
    results: list[CountsResult]
    watermark: Watermark | None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> CountsBatchResult:
        return cls([CountsResult.from_json(r) for r in d.get("results") or []], Watermark.from_json(d.get("watermark")))


@dataclass(frozen=True)
class NodeTypeInfo:
    """A node type: its declared properties (name -> string|int|float|bool|time)."""

    name: str
    props: dict[str, str]
    implicit: bool


@dataclass(frozen=True)
class EdgeTypeInfo:
    """An edge type: its ends, properties, TTL, multiplicity and whether direction=in can be read."""

    name: str
    from_types: list[str]
    to_types: list[str]
    props: dict[str, str]
    multiplicity: str
    reverse: bool
    ttl_seconds: int | None = None


@dataclass(frozen=True)
class Schema:
    """GET /v1/schema: the node and edge types the server reads with."""

    node_types: list[NodeTypeInfo]
    edge_types: list[EdgeTypeInfo]
    watermark: Watermark | None = None

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Schema:
        return cls(
            [NodeTypeInfo(n["name"], dict(n.get("props") or {}), bool(n.get("implicit"))) for n in d["node_types"]],
            [
                EdgeTypeInfo(
                    e["name"],
                    list(e.get("from") or []),
                    list(e.get("to") or []),
                    dict(e.get("props") or {}),
                    e.get("multiplicity", "simple"),
                    bool(e.get("reverse")),
                    e.get("ttl_seconds"),
                )
                for e in d["edge_types"]
            ],
            Watermark.from_json(d.get("watermark")),
        )

    def node_type(self, name: str) -> NodeTypeInfo | None:
        return next((n for n in self.node_types if n.name == name), None)

    def edge_type(self, name: str) -> EdgeTypeInfo | None:
        return next((e for e in self.edge_types if e.name == name), None)

    def edge_types_of(self, node_type: str, direction: str = "out") -> list[str]:
        """The edge types a node of node_type can be expanded by (in: only those with a reverse index)."""
        if direction == "out":
            return [e.name for e in self.edge_types if node_type in e.from_types]
        return [e.name for e in self.edge_types if node_type in e.to_types and e.reverse]


@dataclass
class Hop:
    """One hop of a traversal (the Hop schema). ``edge_types`` may be one name."""

    edge_types: list[str] | str
    direction: str | None = None
    limit: int | None = None
    since: datetime | str | None = None
    until: datetime | str | None = None
    node_types: list[str] | None = None
    where: dict[str, Any] | None = None
    edge_where: dict[str, Any] | None = None
    order: str | None = None

    def to_json(self) -> dict[str, Any]:
        et = [self.edge_types] if isinstance(self.edge_types, str) else list(self.edge_types)
        d: dict[str, Any] = {"edge_types": et}
        for name in ("direction", "limit", "node_types", "where", "edge_where", "order"):
            v = getattr(self, name)
            if v is not None:
                d[name] = v
        for name in ("since", "until"):
            v = getattr(self, name)
            if v is not None:
                d[name] = format_time(v)
        return d


def hop_json(h: Hop | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(h, Hop):
        return h.to_json()
    d = dict(h)
    if isinstance(d.get("edge_types"), str):
        d["edge_types"] = [d["edge_types"]]
    for name in ("since", "until"):
        if isinstance(d.get(name), datetime):
            d[name] = format_time(d[name])
    return d


def _is_single_key(v: Any) -> bool:
    if isinstance(v, (NodeKey, Node, TraversalNode, str)) or isinstance(v, Mapping):
        return True
    return isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, str) for x in v)


def keys_json(start: Iterable[Any] | Any) -> list[dict[str, str]]:
    """One node reference, or an iterable of them, as a list of NodeKey JSON objects."""
    if _is_single_key(start):
        start = [start]
    return [NodeKey.of(s).to_json() for s in start]


@dataclass(frozen=True)
class CountCap:
    """A frequency cap to check: is one more impression towards target in window allowed under max?"""

    target: str | NodeKey | tuple[str, str]
    window: str
    max: int

    @classmethod
    def of(cls, value: CountCap | tuple[Any, str, int] | Mapping[str, Any] | str) -> CountCap:
        """Accepts a CountCap, a (target, window, max) tuple, a {"target","window","max"} dict or "type:id,window,max"."""
        if isinstance(value, CountCap):
            return value
        if isinstance(value, str):
            rest, _, mx = value.rpartition(",")
            target, _, window = rest.rpartition(",")
            if not target or not window or not mx.isdigit():
                raise ValueError(f"not a cap type:id,window,max: {value!r}")
            return cls(target, window, int(mx))
        if isinstance(value, Mapping):
            return cls(value["target"], value["window"], int(value["max"]))
        target, window, limit = value
        return cls(target, window, int(limit))

    @property
    def ref(self) -> str:
        return NodeKey.of(self.target).ref

    def to_param(self) -> str:
        """The cap query parameter form, type:id,window,max."""
        return f"{self.ref},{self.window},{self.max}"

    def to_json(self) -> dict[str, Any]:
        return {"target": self.ref, "window": self.window, "max": self.max}


@dataclass
class CountsLookup:
    """One lookup of POST /v1/counts:batch: a user's counts towards targets, with optional caps."""

    user: str | NodeKey | tuple[str, str]
    edge_type: str
    targets: list[Any] = field(default_factory=list)
    windows: list[str] | str | None = None
    as_of: datetime | str | None = None
    caps: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"user": NodeKey.of(self.user).ref, "edge_type": self.edge_type}
        if self.targets:
            d["targets"] = [NodeKey.of(t).ref for t in self.targets]
        if self.windows:
            d["windows"] = self.windows.split(",") if isinstance(self.windows, str) else list(self.windows)
        if self.as_of is not None:
            d["as_of"] = format_time(self.as_of)
        if self.caps:
            d["caps"] = [CountCap.of(c).to_json() for c in self.caps]
        return d


def lookup_json(lookup: CountsLookup | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(lookup, CountsLookup):
        return lookup.to_json()
    d = dict(lookup)
    return CountsLookup(
        d.pop("user"),
        d.pop("edge_type"),
        list(d.pop("targets", None) or []),
        d.pop("windows", None),
        d.pop("as_of", None),
        list(d.pop("caps", None) or []),
    ).to_json() | d
