"""examples/top_titles_br.py against the demo."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from rtgraph import Client, Hop, Node

from .conftest import wait_for

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "top_titles_br.py"


def _load():
    spec = importlib.util.spec_from_file_location("top_titles_br", EXAMPLE)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_top_titles_br(client: Client, account_1001: Node) -> None:
    mod = _load()
    df = wait_for(lambda: (d := mod.top_titles(client, "BR", top=5)) is not None and len(d) > 0 and d,
                  what="titles played by profiles of BR accounts")
    assert list(df.columns) == ["title_id", "name", "genre", "kind", "profiles"]
    assert str(df["profiles"].dtype) == "Int64"
    assert 1 <= len(df) <= 5
    assert list(df["profiles"]) == sorted(df["profiles"], reverse=True)
    # The top title's count is the number of BR-account profiles that played it.
    top = df.iloc[0]
    r = client.traverse(("title", top["title_id"]), [Hop("started_playback", direction="in"), Hop("has_profile", direction="in")])
    br_accounts = {n.key for n in r.nodes if n.type == "account" and n.props.get("country") == "BR"}
    assert br_accounts, "the top title was played from a BR account"
