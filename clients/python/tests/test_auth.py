"""API keys against a demo that requires one."""

from __future__ import annotations

import pytest

from rtgraph import Client, NodeKey, Unauthorized

from .conftest import Demo


def test_key_as_argument(keyed_demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTGRAPH_API_KEY", raising=False)
    with Client(keyed_demo.url, api_key=keyed_demo.api_key) as c:
        page = c.edges_page("account", "1001", "has_profile")
    assert page.node == NodeKey("account", "1001") and page.edge_type == "has_profile"
    assert page.edges == [] and not page.has_more  # this demo publishes nothing
    assert page.watermark is not None


def test_key_from_environment(keyed_demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RTGRAPH_API_KEY", keyed_demo.api_key or "")
    monkeypatch.setenv("RTGRAPH_URL", keyed_demo.url)
    with Client() as c:
        r = c.counts("user:u-9001", "campaign:c-500", edge_type="impressed", windows="1d")
    assert r.user == "user:u-9001" and r.count("campaign:c-500", "1d") == 0


def test_missing_key_is_401(keyed_demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RTGRAPH_API_KEY", raising=False)
    with Client(keyed_demo.url) as c:
        with pytest.raises(Unauthorized) as ei:
            c.node("account", "1001")
    e = ei.value
    assert e.status == 401
    assert e.type == "urn:rtgraph:problem:unauthenticated"
    assert e.title == "Missing or invalid API key"
    assert "Bearer" in (e.detail or "")
    assert e.watermark is None  # a refusal says nothing about the graph


def test_wrong_key_is_401(keyed_demo: Demo) -> None:
    with Client(keyed_demo.url, api_key="not-the-key") as c:
        with pytest.raises(Unauthorized) as ei:
            c.traverse(("account", "1001"), "has_profile")
    assert ei.value.status == 401
