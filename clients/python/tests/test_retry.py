"""Retries, headers and problem mapping against a small local fake server."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from rtgraph import Client, RateLimited, Unavailable, UnknownType

NODE = {
    "node": {"type": "account", "id": "1001", "props": {"country": "BR"}, "event_time": "2026-11-25T21:07:57.530248Z"},
    "watermark": {"event_time": "2026-11-25T21:08:10.281052Z", "known": True},
}


class Fake:
    """Answers each request with the next scripted (status, headers, body); the last one repeats."""

    def __init__(self) -> None:
        self.script: list[tuple[int, dict[str, str], object]] = []
        self.requests: list[tuple[str, str, dict[str, str], float]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                fake.requests.append((self.command, self.path, dict(self.headers), time.monotonic()))
                n = len(fake.requests) - 1
                status, headers, body = fake.script[min(n, len(fake.script) - 1)]
                data = json.dumps(body).encode()
                self.send_response(status)
                ctype = "application/json" if status < 400 else "application/problem+json"
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = _answer
            do_POST = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def problem(status: int, slug: str, **ext: object) -> dict[str, object]:
    return {"type": f"urn:rtgraph:problem:{slug}", "title": slug, "status": status, **ext}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Fake]:
    monkeypatch.delenv("RTGRAPH_API_KEY", raising=False)
    monkeypatch.delenv("RTGRAPH_URL", raising=False)
    f = Fake()
    yield f
    f.close()


def test_429_is_retried_after_retry_after(fake: Fake) -> None:
    fake.script = [(429, {"Retry-After": "1"}, problem(429, "rate-limited")), (200, {}, NODE)]
    with Client(fake.url, max_retries=3) as c:
        n = c.node("account", "1001")
    assert n.props == {"country": "BR"} and n.watermark and n.watermark.known
    assert len(fake.requests) == 2
    waited = fake.requests[1][3] - fake.requests[0][3]
    assert waited >= 0.95, f"Retry-After: 1 honoured, waited {waited:.3f} s"


def test_503_is_retried(fake: Fake) -> None:
    fake.script = [
        (503, {"Retry-After": "0"}, problem(503, "unavailable")),
        (503, {}, problem(503, "unavailable")),
        (200, {}, NODE),
    ]
    with Client(fake.url, max_retries=3, backoff=0.01) as c:
        assert c.node("account", "1001").id == "1001"
    assert len(fake.requests) == 3


def test_retries_are_bounded(fake: Fake) -> None:
    fake.script = [(429, {"Retry-After": "0"}, problem(429, "rate-limited", detail="slow down", request_id="r-1"))]
    with Client(fake.url, max_retries=2) as c:
        with pytest.raises(RateLimited) as ei:
            c.node("account", "1001")
    assert len(fake.requests) == 3
    e = ei.value
    assert e.status == 429 and e.retry_after == 0 and e.detail == "slow down" and e.request_id == "r-1"


def test_a_long_retry_after_is_not_waited_for(fake: Fake) -> None:
    fake.script = [(503, {"Retry-After": "3600"}, problem(503, "unavailable"))]
    with Client(fake.url, max_retries=3, max_retry_wait=5) as c:
        with pytest.raises(Unavailable) as ei:
            c.node("account", "1001")
    assert len(fake.requests) == 1 and ei.value.retry_after == 3600


def test_other_problems_are_not_retried(fake: Fake) -> None:
    fake.script = [(400, {"X-Request-Id": "abc"}, problem(400, "unknown-type", field="type", detail="unknown node type"))]
    with Client(fake.url, max_retries=3) as c:
        with pytest.raises(UnknownType) as ei:
            c.node("spaceship", "1")
    assert len(fake.requests) == 1
    assert ei.value.field == "type" and ei.value.request_id == "abc"


def test_api_key_and_url_from_environment(fake: Fake, monkeypatch: pytest.MonkeyPatch) -> None:
    fake.script = [(200, {}, NODE)]
    monkeypatch.setenv("RTGRAPH_URL", fake.url)
    monkeypatch.setenv("RTGRAPH_API_KEY", "env-key")
    with Client() as c:
        c.node("account", "a/b c")
    method, path, headers, _ = fake.requests[0]
    assert (method, path) == ("GET", "/v1/nodes/account/a%2Fb%20c")
    assert headers["Authorization"] == "Bearer env-key"
    with Client(api_key="arg-key") as c:
        c.node("account", "1001")
    assert fake.requests[1][2]["Authorization"] == "Bearer arg-key"
    monkeypatch.delenv("RTGRAPH_API_KEY")
    with Client() as c:
        c.node("account", "1001")
    assert "Authorization" not in fake.requests[2][2]


def test_query_parameters(fake: Fake) -> None:
    fake.script = [(200, {}, {
        "user": "user:u-1", "edge_type": "impressed", "as_of": "2026-11-25T21:00:00Z", "windows": ["1m", "1d"],
        "targets": [{"target": "campaign:c-1", "counts": {"1m": 1, "1d": 2}}], "caps": [], "allowed": True,
        "watermark": {"event_time": None, "known": False},
    })]
    with Client(fake.url) as c:
        r = c.counts("user:u-1", ["campaign:c-1", ("campaign", "c,2")], edge_type="impressed", windows=["1m", "1d"],
                     caps=[("campaign:c,2", "1d", 3)])
    assert r.count("campaign:c-1", "1d") == 2 and r.watermark and not r.watermark.known
    path = fake.requests[0][1]
    assert path.startswith("/v1/counts/user/u-1?")
    from urllib.parse import parse_qs, urlsplit

    q = parse_qs(urlsplit(path).query)
    assert q == {"edge_type": ["impressed"], "target": ["campaign:c-1", "campaign:c,2"], "windows": ["1m,1d"],
                 "cap": ["campaign:c,2,1d,3"]}
