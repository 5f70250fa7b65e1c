"""Errors raised by the client.

Every non-2xx answer of the API is an RFC 9457 ``application/problem+json``
document; :func:`problem_from_response` turns it into the :class:`ProblemError`
subclass of its status (and, for some 400s, of its problem type).
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from .models import Watermark

PROBLEM_PREFIX = "urn:rtgraph:problem:"


class RtgraphError(Exception):
    """Base class of every error this package raises."""


class TransportError(RtgraphError):
    """The server could not be reached or the connection broke (after retries)."""


class ProblemError(RtgraphError):
    """An API answer other than 2xx, built from its problem+json body.

    Attributes mirror the Problem schema of api/openapi.yaml: ``status``,
    ``type`` (a ``urn:rtgraph:problem:*`` URI), ``title``, ``detail``,
    ``instance``, ``field`` (the request field concerned, e.g.
    ``hops[1].limit``), ``cap`` (the server limit exceeded), ``watermark``
    (a :class:`rtgraph.Watermark`, on answers about the graph), plus the
    ``request_id`` (body, else the ``X-Request-Id`` header), ``retry_after``
    (seconds, from ``Retry-After``) and the raw ``body``.
    """

    def __init__(
        self,
        status: int,
        type: str = "about:blank",
        title: str = "",
        detail: str | None = None,
        *,
        instance: str | None = None,
        field: str | None = None,
        cap: int | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
        watermark: Any = None,
        body: Any = None,
    ) -> None:
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.instance = instance
        self.field = field
        self.cap = cap
        self.request_id = request_id
        self.retry_after = retry_after
        self.watermark = watermark
        self.body = body
        super().__init__(str(self))

    @property
    def slug(self) -> str:
        """The problem type without its ``urn:rtgraph:problem:`` prefix."""
        return self.type.removeprefix(PROBLEM_PREFIX)

    def __str__(self) -> str:
        s = f"{self.status} {self.slug}"
        if self.detail:
            s += f": {self.detail}"
        elif self.title:
            s += f": {self.title}"
        if self.field:
            s += f" (field {self.field}"
            if self.cap is not None:
                s += f", cap {self.cap}"
            s += ")"
        if self.request_id:
            s += f" [request {self.request_id}]"
        return s

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self)!r})"


class BadRequest(ProblemError):
    """400: malformed request, invalid parameter or query, unknown type, bad cursor."""


class UnknownType(BadRequest):
    """400 unknown-type: a node or edge type the schema does not declare."""


class InvalidCursor(BadRequest):
    """400 invalid-cursor: altered, foreign, or from another query."""


class Unauthorized(ProblemError):
    """401: no API key, or an invalid one."""


class Forbidden(ProblemError):
    """403: the key lacks the scope."""


class NotFound(ProblemError):
    """404: no such node (or no such route on this server)."""


class MethodNotAllowed(ProblemError):
    """405."""


class BodyTooLarge(ProblemError):
    """413: the request body is over the server's max_body_bytes (``cap``)."""


class UnsupportedMediaType(ProblemError):
    """415."""


class OverCap(ProblemError):
    """422 over-cap: a value over a server limit; ``field`` and ``cap`` say which."""


class RateLimited(ProblemError):
    """429: over the rate limit (retried by the client up to max_retries)."""


class InternalError(ProblemError):
    """500: a server bug; quote ``request_id`` when reporting it."""


class NotImplementedOnServer(ProblemError):
    """501: the operation is not served by this process."""


class Unavailable(ProblemError):
    """503: the store is unavailable or the server is at its in-flight limit (retried)."""


class Timeout(ProblemError):
    """504 time-budget-exceeded: the store did not answer within the time budget."""


_BY_STATUS: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    413: BodyTooLarge,
    415: UnsupportedMediaType,
    422: OverCap,
    429: RateLimited,
    500: InternalError,
    501: NotImplementedOnServer,
    503: Unavailable,
    504: Timeout,
}

_BY_TYPE: dict[str, type[ProblemError]] = {
    PROBLEM_PREFIX + "unknown-type": UnknownType,
    PROBLEM_PREFIX + "invalid-cursor": InvalidCursor,
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import datetime, timezone
        from email.utils import parsedate_to_datetime

        when = parsedate_to_datetime(value)
        if when.tzinfo is None:
            when = when.replace(tzinfo=timezone.utc)
        return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


def problem_from_response(resp: httpx.Response) -> ProblemError:
    """The ProblemError subclass for a non-2xx response."""
    body: Any = None
    doc: dict[str, Any] = {}
    try:
        body = resp.json()
        if isinstance(body, dict):
            doc = body
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        body = resp.text
    raw_status, raw_type = doc.get("status"), doc.get("type")
    status: int = raw_status if isinstance(raw_status, int) else resp.status_code
    ptype: str = raw_type if isinstance(raw_type, str) else "about:blank"
    cls = _BY_TYPE.get(ptype) or _BY_STATUS.get(resp.status_code)
    if cls is None:
        cls = BadRequest if 400 <= resp.status_code < 500 else ProblemError
    detail = doc.get("detail")
    if detail is None and not doc and isinstance(body, str) and body:
        detail = body[:500]
    cap = doc.get("cap")
    wm = doc.get("watermark")
    return cls(
        status,
        ptype,
        doc.get("title") or resp.reason_phrase or "",
        detail,
        instance=doc.get("instance"),
        field=doc.get("field"),
        cap=cap if isinstance(cap, int) else None,
        request_id=doc.get("request_id") or resp.headers.get("X-Request-Id"),
        retry_after=parse_retry_after(resp.headers.get("Retry-After")),
        watermark=Watermark.from_json(wm) if isinstance(wm, dict) else None,
        body=body,
    )
