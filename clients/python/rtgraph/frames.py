"""DataFrames and graphs built from results (pandas and networkx are optional).

Property columns are typed from the graph schema (GET /v1/schema) when one is
given: ``int`` -> ``Int64``, ``float`` -> ``Float64``, ``bool`` ->
``boolean``, ``string`` -> ``string``, ``time`` -> ``datetime64[ns, UTC]``,
all nullable, so a node without the property has ``<NA>``/``NaT``. A
property the schema does not declare (or every property, without a schema)
is typed from its values the same way, ``object`` when they are mixed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .models import Edge, Node, NodeKey, Schema, TraversalNode

if TYPE_CHECKING:  # pragma: no cover
    import networkx
    import pandas

#: The pandas dtype of each schema property type.
DTYPES: dict[str, str] = {
    "int": "Int64",
    "float": "Float64",
    "bool": "boolean",
    "string": "string",
    "time": "datetime64[ns, UTC]",
}


def _pandas() -> Any:
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("to_pandas needs pandas: pip install 'rtgraph[pandas]'") from e
    return pandas


def _infer_kind(values: Iterable[Any]) -> str | None:
    """The schema property type that fits every non-null value, or None."""
    kinds = set()
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            kinds.add("bool")
        elif isinstance(v, int):
            kinds.add("int")
        elif isinstance(v, float):
            kinds.add("float")
        elif isinstance(v, str):
            kinds.add("string")
        else:
            return None
    if kinds == {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        return kinds.pop()
    return "string" if not kinds else None


def _series(pd: Any, values: list[Any], kind: str | None, index: Any) -> Any:
    """A Series of values with the dtype of the schema type kind (object when they do not fit)."""
    if kind == "time":
        try:
            s = pd.to_datetime(pd.Series(values, index=index, dtype=object), utc=True, format="ISO8601")
            return s.astype("datetime64[ns, UTC]")
        except (TypeError, ValueError):
            return pd.Series(values, index=index, dtype=object)
    dtype = DTYPES.get(kind or "")
    if dtype is None:
        return pd.Series(values, index=index, dtype=object)
    try:
        if kind == "float":
            values = [float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v for v in values]
        return pd.Series(pd.array(values, dtype=dtype), index=index)
    except (TypeError, ValueError):
        return pd.Series(values, index=index, dtype=object)


def _time_series(pd: Any, values: list[Any], index: Any) -> Any:
    s = pd.Series(values, index=index, dtype=object)
    return pd.to_datetime(s, utc=True).astype("datetime64[ns, UTC]")


def _declared(schema: Schema | None, types: Iterable[str], *, edges: bool) -> dict[str, str | None]:
    """Property name -> declared type over the given node or edge types (None when they disagree)."""
    out: dict[str, str | None] = {}
    if schema is None:
        return out
    for t in types:
        info = schema.edge_type(t) if edges else schema.node_type(t)
        if info is None:
            continue
        for name, kind in info.props.items():
            if name in out and out[name] != kind:
                out[name] = None
            else:
                out[name] = kind
    return out


def _prop_columns(
    pd: Any,
    rows: Sequence[Any],
    schema: Schema | None,
    *,
    edges: bool,
    reserved: set[str],
    index: Any,
) -> dict[str, Any]:
    """The property columns: every property present in some row, in schema order then by name."""
    seen: dict[str, None] = {}
    for r in rows:
        for name in r.props:
            seen.setdefault(name, None)
    types = dict.fromkeys(r.type for r in rows)
    declared = _declared(schema, types, edges=edges)
    names = [n for n in declared if n in seen] + sorted(n for n in seen if n not in declared)
    cols: dict[str, Any] = {}
    for name in names:
        values = [r.props.get(name) for r in rows]
        kind = declared[name] if name in declared else _infer_kind(values)
        col = name if name not in reserved else f"props.{name}"
        cols[col] = _series(pd, values, kind, index)
    return cols


def nodes_frame(nodes: Sequence[Node | TraversalNode], schema: Schema | None = None) -> pandas.DataFrame:
    """A DataFrame of nodes: type, id, (status, hop for traversal nodes), event_time, then one column per property.

    A property named like a fixed column is prefixed ``props.``.
    """
    pd = _pandas()
    nodes = list(nodes)
    index = pd.RangeIndex(len(nodes))
    traversal = any(isinstance(n, TraversalNode) for n in nodes)
    cols: dict[str, Any] = {
        "type": pd.Series([n.type for n in nodes], index=index, dtype="string"),
        "id": pd.Series([n.id for n in nodes], index=index, dtype="string"),
    }
    if traversal:
        cols["status"] = pd.Series([getattr(n, "status", None) for n in nodes], index=index, dtype="string")
        cols["hop"] = pd.Series(pd.array([getattr(n, "hop", None) for n in nodes], dtype="Int64"), index=index)
    cols["event_time"] = _time_series(pd, [n.event_time for n in nodes], index)
    cols.update(_prop_columns(pd, nodes, schema, edges=False, reserved=set(cols), index=index))
    return pd.DataFrame(cols, index=index)


def edges_frame(edges: Sequence[Edge], schema: Schema | None = None) -> pandas.DataFrame:
    """A DataFrame of edges: type, from_type, from_id, to_type, to_id, event_time, expires_at,
    (hop for traversal edges), then one column per property.
    """
    pd = _pandas()
    edges = list(edges)
    index = pd.RangeIndex(len(edges))
    cols: dict[str, Any] = {
        "type": pd.Series([e.type for e in edges], index=index, dtype="string"),
        "from_type": pd.Series([e.from_.type for e in edges], index=index, dtype="string"),
        "from_id": pd.Series([e.from_.id for e in edges], index=index, dtype="string"),
        "to_type": pd.Series([e.to.type for e in edges], index=index, dtype="string"),
        "to_id": pd.Series([e.to.id for e in edges], index=index, dtype="string"),
        "event_time": _time_series(pd, [e.event_time for e in edges], index),
        "expires_at": _time_series(pd, [e.expires_at for e in edges], index),
    }
    if any(e.hop is not None for e in edges):
        cols["hop"] = pd.Series(pd.array([e.hop for e in edges], dtype="Int64"), index=index)
    cols.update(_prop_columns(pd, edges, schema, edges=True, reserved=set(cols), index=index))
    return pd.DataFrame(cols, index=index)


def node_label(key: NodeKey | Node | TraversalNode) -> str:
    """The networkx node key of a node: "type:id"."""
    return NodeKey.of(key).ref


def to_networkx(nodes: Iterable[Node | TraversalNode], edges: Iterable[Edge]) -> networkx.MultiDiGraph:
    """A MultiDiGraph: one node per node, keyed "type:id", with its props as attributes;
    one edge per edge, from "type:id" to "type:id", keyed by the edge type, with its props as attributes.
    """
    try:
        import networkx as nx
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("to_networkx needs networkx: pip install 'rtgraph[networkx]'") from exc
    g = nx.MultiDiGraph()
    for n in nodes:
        g.add_node(node_label(n), **n.props)
    for e in edges:
        g.add_edge(e.from_.ref, e.to.ref, key=e.type, **e.props)
    return g
