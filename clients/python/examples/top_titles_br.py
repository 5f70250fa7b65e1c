"""Which titles do the profiles of accounts in BR watch most, two hops out?

    account (country BR) -has_profile-> profile -started_playback-> title

Lists the accounts with their country only, keeps those in BR, traverses
two hops from them (100 start nodes per request, following hop cursors when
a hop is truncated) and counts, per title, the profiles that started playing
it. Run it against `rtgraph demo` (or $RTGRAPH_URL, with $RTGRAPH_API_KEY):

    python examples/top_titles_br.py [--country BR] [--top 10] [--edge-type started_playback]
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pandas as pd

from rtgraph import Client, Edge, Hop, NodeKey

MAX_CONTINUATIONS = 1000


def _chunks(items: list[Any], n: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), n):
        yield items[i : i + n]


def top_titles(client: Client, country: str = "BR", top: int = 10, edge_type: str = "started_playback") -> pd.DataFrame:
    """The titles most watched by the profiles of accounts in country: one row per title, most watched first."""
    accounts = [n.key for n in client.nodes("account", fields=["country"], limit=1000) if n.props.get("country") == country]
    hops = [Hop("has_profile"), Hop(edge_type)]
    watched: dict[tuple[NodeKey, NodeKey], Edge] = {}
    titles: dict[NodeKey, dict[str, Any]] = {}
    for start in _chunks(accounts, 100):
        r = client.traverse(start, hops, max_results=10_000)
        for _ in range(MAX_CONTINUATIONS):
            for e in r.edges:
                if e.type == edge_type:
                    watched[(e.from_, e.to)] = e
            for n in r.nodes:
                if n.type == "title" and n.status == "found":
                    titles[n.key] = n.props
            if not r.truncated or not r.next_cursor:
                break
            r = client.traverse(start, hops, max_results=10_000, cursor=r.next_cursor)
        else:
            raise RuntimeError("the traversal was still truncated after %d continuations" % MAX_CONTINUATIONS)
    per_title = Counter(title for (_, title) in watched)
    rows = [
        {
            "title_id": t.id,
            "name": titles.get(t, {}).get("name"),
            "genre": titles.get(t, {}).get("genre"),
            "kind": titles.get(t, {}).get("kind"),
            "profiles": n,
        }
        for t, n in per_title.most_common()
    ]
    df = pd.DataFrame(rows, columns=["title_id", "name", "genre", "kind", "profiles"]).astype(
        {"title_id": "string", "name": "string", "genre": "string", "kind": "string", "profiles": "Int64"}
    )
    df = df.sort_values(["profiles", "title_id"], ascending=[False, True], kind="stable").head(top)
    df.attrs["accounts"] = len(accounts)
    df.attrs["profile_title_pairs"] = len(watched)
    return df.reset_index(drop=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--country", default="BR")
    p.add_argument("--top", type=int, default=10)
    p.add_argument("--edge-type", default="started_playback", help="started_playback (plays) or viewed_title (title page views)")
    args = p.parse_args()
    with Client() as client:
        df = top_titles(client, args.country, args.top, args.edge_type)
    print(f"{df.attrs['accounts']} accounts in {args.country}, {df.attrs['profile_title_pairs']} profile-title pairs")
    with pd.option_context("display.width", 120, "display.max_columns", None):
        print(df.to_string(index=False))


if __name__ == "__main__":
    main()
