"""The synchronous client of rtgraph's REST API (api/openapi.yaml)."""

from __future__ import annotations

import os
import random
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, Mapping, Sequence, TypeVar
from urllib.parse import quote

import httpx

from .errors import ProblemError, TransportError, problem_from_response
from .models import (
    CountCap,
    CountsBatchResult,
    CountsLookup,
    CountsResult,
    DegreeResult,
    Edge,
    EdgesPage,
    Hop,
    Node,
    NodeKey,
    NodesPage,
    Schema,
    TraversalResult,
    Watermark,
    format_time,
    hop_json,
    keys_json,
    lookup_json,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas

DEFAULT_URL = "http://127.0.0.1:8080"
ENV_URL = "RTGRAPH_URL"
ENV_API_KEY = "RTGRAPH_API_KEY"

#: Statuses retried (with Retry-After honoured) up to max_retries times.
RETRY_STATUSES = frozenset({429, 503})

T = TypeVar("T")
P = TypeVar("P", EdgesPage, NodesPage)


def _time_param(value: datetime | str | None) -> str | None:
    return None if value is None else format_time(value)


def _seg(value: str) -> str:
    """A path segment, percent-encoded ("/" as %2F)."""
    return quote(str(value), safe="")


class _Pager(Generic[T, P]):
    """An iterator over the items of a cursor-paged listing, fetching pages as it goes.

    Iterating yields items; :meth:`pages` yields whole pages. Each page is
    fetched once: the two share their position. ``watermark`` is the
    watermark of the last page fetched, ``pages_fetched`` how many were.
    """

    def __init__(self, fetch: Callable[[str | None], P], items: Callable[[P], list[T]], max_items: int | None) -> None:
        self._fetch: Callable[[str | None], P] = fetch
        self._items: Callable[[P], list[T]] = items
        self._max_items = max_items
        self._cursor: str | None = None
        self._done = False
        self._yielded = 0
        self.watermark: Watermark | None = None
        self.pages_fetched = 0
        self._it: Iterator[T] | None = None

    def pages(self) -> Iterator[P]:
        """The remaining pages, following next_cursor until has_more is false."""
        while not self._done:
            page = self._fetch(self._cursor)
            self.pages_fetched += 1
            self.watermark = page.watermark
            self._cursor = page.next_cursor
            if not page.has_more or not page.next_cursor:
                self._done = True
            yield page

    def _gen(self) -> Iterator[T]:
        for page in self.pages():
            for item in self._items(page):
                if self._max_items is not None and self._yielded >= self._max_items:
                    self._done = True
                    return
                self._yielded += 1
                yield item
            if self._max_items is not None and self._yielded >= self._max_items:
                self._done = True
                return

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._it is None:
            self._it = self._gen()
        return next(self._it)

    def to_list(self) -> list[T]:
        """Every remaining item."""
        return list(self)


class EdgeIterator(_Pager[Edge, EdgesPage]):
    """The edges of GET /v1/nodes/{type}/{id}/edges, page after page."""

    def __init__(self, client: Client, fetch: Callable[[str | None], EdgesPage], max_items: int | None) -> None:
        super().__init__(fetch, lambda p: p.edges, max_items)
        self._client = client

    def to_pandas(self, schema: Schema | None = None) -> pandas.DataFrame:
        """Every remaining edge as a DataFrame, property columns typed by the schema (fetched when not given)."""
        from .frames import edges_frame

        edges = self.to_list()
        return edges_frame(edges, schema=schema if schema is not None else self._client._schema_for_frames())


class NodeIterator(_Pager[Node, NodesPage]):
    """The nodes of GET /v1/nodes/{type}, page after page."""

    def __init__(self, client: Client, fetch: Callable[[str | None], NodesPage], max_items: int | None) -> None:
        super().__init__(fetch, lambda p: p.nodes, max_items)
        self._client = client

    def to_pandas(self, schema: Schema | None = None) -> pandas.DataFrame:
        """Every remaining node as a DataFrame, property columns typed by the schema (fetched when not given)."""
        from .frames import nodes_frame

        nodes = self.to_list()
        return nodes_frame(nodes, schema=schema if schema is not None else self._client._schema_for_frames())


class Client:
    """A synchronous client of one rtgraph server.

    ``base_url`` defaults to ``$RTGRAPH_URL``, else http://127.0.0.1:8080;
    ``api_key`` to ``$RTGRAPH_API_KEY`` (sent as ``Authorization: Bearer``;
    none is sent when neither is set). Answers 429 and 503 are retried up
    to ``max_retries`` times, waiting what ``Retry-After`` says (refusing to
    wait longer than ``max_retry_wait`` seconds), else an exponential
    backoff with jitter from ``backoff`` seconds; so are connections that
    could not be opened. Any other non-2xx answer raises the
    :class:`rtgraph.ProblemError` subclass of its status.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float | httpx.Timeout = 10.0,
        max_retries: int = 3,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_retry_wait: float = 60.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        self.base_url = (base_url or os.environ.get(ENV_URL) or DEFAULT_URL).rstrip("/")
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_retry_wait = max_retry_wait
        h = {"Accept": "application/json, application/problem+json", "User-Agent": "rtgraph-python/0.1.0"}
        if key:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        self._http = httpx.Client(base_url=self.base_url, headers=h, timeout=timeout, transport=transport)
        self._schema: Schema | None = None
        self._schema_missing = False
        self._sleep: Callable[[float], None] = time.sleep

    def __repr__(self) -> str:
        return f"Client({self.base_url!r})"

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- transport -------------------------------------------------------

    def _delay(self, attempt: int, retry_after: float | None) -> float | None:
        """Seconds to wait before retry number attempt+1, or None to give up."""
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_wait else None
        cap = min(self.max_backoff, self.backoff * (2**attempt))
        return random.uniform(cap / 2, cap)

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: Any = None,
        json: Any = None,
    ) -> Any:
        attempt = 0
        while True:
            try:
                resp = self._http.request(method, path, params=params, json=json)
            except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                if attempt >= self.max_retries:
                    raise TransportError(f"{method} {self.base_url}{path}: {e}") from e
                delay = self._delay(attempt, None)
                attempt += 1
                self._sleep(delay or 0)
                continue
            except httpx.HTTPError as e:
                raise TransportError(f"{method} {self.base_url}{path}: {e}") from e
            if resp.is_success:
                try:
                    return resp.json()
                except ValueError as e:
                    raise TransportError(f"{method} {path}: the answer is not JSON: {resp.text[:200]!r}") from e
            err = problem_from_response(resp)
            if resp.status_code in RETRY_STATUSES and attempt < self.max_retries:
                delay = self._delay(attempt, err.retry_after)
                if delay is not None:
                    attempt += 1
                    self._sleep(delay)
                    continue
            raise err

    # --- graph -----------------------------------------------------------

    def node(self, type: str, id: str) -> Node:
        """GET /v1/nodes/{type}/{id}: the node, with the response's watermark (NotFound when it does not exist)."""
        d = self._request("GET", f"/v1/nodes/{_seg(type)}/{_seg(id)}")
        return Node.from_json(d["node"], Watermark.from_json(d.get("watermark")))

    def edges_page(
        self,
        type: str,
        id: str,
        edge_type: str,
        *,
        direction: str | None = None,
        limit: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        order: str | None = None,
        cursor: str | None = None,
    ) -> EdgesPage:
        """One page of GET /v1/nodes/{type}/{id}/edges."""
        params: dict[str, Any] = {"edge_type": edge_type}
        for name, v in (
            ("direction", direction),
            ("limit", limit),
            ("since", _time_param(since)),
            ("until", _time_param(until)),
            ("order", order),
            ("cursor", cursor),
        ):
            if v is not None:
                params[name] = v
        page = EdgesPage.from_json(self._request("GET", f"/v1/nodes/{_seg(type)}/{_seg(id)}/edges", params=params))
        return replace(page, _schema_source=self._schema_for_frames)

    def edges(
        self,
        type: str,
        id: str,
        edge_type: str,
        *,
        direction: str | None = None,
        limit: int | None = None,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        order: str | None = None,
        cursor: str | None = None,
        max_edges: int | None = None,
    ) -> EdgeIterator:
        """A node's edges of one type, following next_cursor page after page.

        ``limit`` is the page size (the API's limit; server default 300);
        ``max_edges`` stops after that many edges in all. ``cursor`` resumes a
        listing of the same query. Iterate, or call ``to_list()``,
        ``to_pandas()`` or ``pages()``.
        """
        start = cursor

        def fetch(c: str | None) -> EdgesPage:
            return self.edges_page(
                type, id, edge_type, direction=direction, limit=limit, since=since, until=until, order=order,
                cursor=c if c is not None else start,
            )

        return EdgeIterator(self, fetch, max_edges)

    def traverse(
        self,
        start: Any,
        hops: Sequence[Hop | Mapping[str, Any] | str] | Hop | str,
        *,
        max_results: int | None = None,
        include_paths: bool = False,
        time_budget_ms: int | None = None,
        cursor: str | None = None,
    ) -> TraversalResult:
        """POST /v1/traversals: a breadth-first traversal of 1 to 4 hops.

        ``start`` is one node or a list of them (NodeKey, Node, ("type", "id"),
        {"type", "id"} or "type:id"); None with a ``cursor``. Each hop is a
        :class:`Hop`, a dict of the Hop schema, or an edge type name (one hop
        out along it). A truncated result has ``next_cursor``: send the same
        request again with ``cursor=`` to continue.
        """
        if isinstance(hops, (Hop, str)):
            hops = [hops]
        body: dict[str, Any] = {"hops": [Hop(h).to_json() if isinstance(h, str) else hop_json(h) for h in hops]}
        if start is not None:
            body["start"] = keys_json(start)
        if max_results is not None:
            body["max_results"] = max_results
        if include_paths:
            body["include_paths"] = True
        if time_budget_ms is not None:
            body["time_budget_ms"] = time_budget_ms
        if cursor is not None:
            body["cursor"] = cursor
        result = TraversalResult.from_json(self._request("POST", "/v1/traversals", json=body))
        return replace(result, _schema_source=self._schema_for_frames)

    def schema(self) -> Schema:
        """GET /v1/schema: the node and edge types the server reads with."""
        s = Schema.from_json(self._request("GET", "/v1/schema"))
        self._schema = s
        return s

    def _schema_for_frames(self) -> Schema | None:
        """The schema to type DataFrame columns with, fetched once; None on a server without /v1/schema
        (and when the client was closed before it fetched one): columns are then typed from their values.
        """
        from .errors import NotFound

        if self._schema is None and not self._schema_missing and not self._http.is_closed:
            try:
                self.schema()
            except NotFound:
                self._schema_missing = True
        return self._schema

    def nodes_page(
        self,
        type: str,
        *,
        fields: Iterable[str] | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> NodesPage:
        """One page of GET /v1/nodes/{type}."""
        params: dict[str, Any] = {}
        if fields is not None:
            params["fields"] = fields if isinstance(fields, str) else ",".join(fields)
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        page = NodesPage.from_json(self._request("GET", f"/v1/nodes/{_seg(type)}", params=params))
        return replace(page, _schema_source=self._schema_for_frames)

    def nodes(
        self,
        type: str,
        *,
        fields: Iterable[str] | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        max_nodes: int | None = None,
    ) -> NodeIterator:
        """The nodes of one type, following next_cursor page after page.

        ``fields`` names the properties to return (an empty list: none; None:
        all); ``limit`` is the page size (server default 100); ``max_nodes``
        stops after that many nodes in all. Iterate, or call ``to_list()``,
        ``to_pandas()`` or ``pages()``.
        """
        fields = fields if fields is None or isinstance(fields, str) else list(fields)
        start = cursor

        def fetch(c: str | None) -> NodesPage:
            return self.nodes_page(type, fields=fields, limit=limit, cursor=c if c is not None else start)

        return NodeIterator(self, fetch, max_nodes)

    def degree(
        self,
        type: str,
        id: str,
        edge_type: str | None = None,
        direction: str | None = None,
        *,
        since: datetime | str | None = None,
        until: datetime | str | None = None,
        time_budget_ms: int | None = None,
    ) -> DegreeResult:
        """GET /v1/nodes/{type}/{id}/degree: the node's edge counts by edge type and direction
        (every edge type of the node type, and both directions, unless narrowed).
        """
        params: dict[str, Any] = {}
        for name, v in (
            ("edge_type", edge_type),
            ("direction", direction),
            ("since", _time_param(since)),
            ("until", _time_param(until)),
            ("time_budget_ms", time_budget_ms),
        ):
            if v is not None:
                params[name] = v
        return DegreeResult.from_json(self._request("GET", f"/v1/nodes/{_seg(type)}/{_seg(id)}/degree", params=params))

    # --- counts ----------------------------------------------------------

    def counts(
        self,
        user: Any,
        targets: Iterable[Any] | str | NodeKey | tuple[str, str] = (),
        *,
        edge_type: str,
        windows: Iterable[str] | str | None = None,
        as_of: datetime | str | None = None,
        caps: Iterable[CountCap | tuple[Any, str, int] | Mapping[str, Any] | str] = (),
    ) -> CountsResult:
        """GET /v1/counts/{type}/{id}: a user's impressions towards targets in sliding windows.

        ``user`` and each target are "type:id", ("type", "id") or a NodeKey;
        ``windows`` a list or "1m,1h,1d" (server default 1m,5m,1h,1d,7d);
        ``caps`` CountCap, (target, window, max) or "type:id,window,max".
        """
        u = NodeKey.of(user)
        if isinstance(targets, (str, NodeKey)) or (
            isinstance(targets, tuple) and len(targets) == 2 and all(isinstance(x, str) for x in targets)
        ):
            targets = [targets]
        params: list[tuple[str, str]] = [("edge_type", edge_type)]
        params += [("target", NodeKey.of(t).ref) for t in targets]
        if windows is not None:
            params.append(("windows", windows if isinstance(windows, str) else ",".join(windows)))
        if as_of is not None:
            params.append(("as_of", format_time(as_of)))
        params += [("cap", CountCap.of(c).to_param()) for c in caps]
        d = self._request("GET", f"/v1/counts/{_seg(u.type)}/{_seg(u.id)}", params=params)
        return CountsResult.from_json(d)

    def counts_batch(self, lookups: Iterable[CountsLookup | Mapping[str, Any]]) -> CountsBatchResult:
        """POST /v1/counts:batch: up to 100 lookups in one request; results in the order of the lookups."""
        body = {"lookups": [lookup_json(lk) for lk in lookups]}
        return CountsBatchResult.from_json(self._request("POST", "/v1/counts:batch", json=body))

    # --- operations ------------------------------------------------------

    def ready(self) -> bool:
        """Whether GET /readyz answers 200 (no retries)."""
        try:
            return self._http.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False


__all__ = ["Client", "EdgeIterator", "NodeIterator", "ProblemError", "DEFAULT_URL"]
