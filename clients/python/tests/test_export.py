"""`rtgraph export` of the demo graph, read with pandas and pyarrow, equals what the API serves.

A demo runs until the generator has written a few hundred events, then
stops, so the graph holds still. `rtgraph export` writes it to Parquet and
JSON Lines; `rtgraph serve` then serves the same store, and every node and
edge of the export is compared with the API's listing and adjacency.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest

from rtgraph import Client, NotFound

from .conftest import READY_TIMEOUT, free_port, start_demo, wait_for


def _normal(v):
    """A property value as the API's JSON has it (pandas and Arrow give numpy and Timestamp values)."""
    if v is None or (isinstance(v, float) and v != v):
        return None
    if isinstance(v, pd.Timestamp):
        return v.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if hasattr(v, "item"):
        v = v.item()
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _api_time(s: str) -> str:
    return pd.Timestamp(s).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture(scope="module")
def exported(rtgraph_bin: str, tmp_path_factory: pytest.TempPathFactory):
    work = tmp_path_factory.mktemp("export")
    demo = start_demo(rtgraph_bin, work, "source", "api:\n  rate_limit:\n    requests_per_second: 0\n", rate=200)
    try:
        with Client(demo.url) as c:

            def enough():
                try:
                    c.node("account", "1001")
                except NotFound:
                    return None
                return c.degree("account", "1001").total > 0 or None

            wait_for(enough, what="account 1001 with edges")
            time.sleep(3)
    finally:
        demo.stop()
    graph_dir = demo.dir / "data" / "graph"
    port = free_port()
    cfg = work / "serve.yaml"
    cfg.write_text(
        "store:\n  backend: embedded\n"
        f"embedded:\n  dir: {graph_dir}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        "api:\n  rate_limit:\n    requests_per_second: 0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RTGRAPH_")}
    out = work / "out"
    res = subprocess.run([rtgraph_bin, "export", "--config", str(cfg), "--out", str(out)],
                         capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0, res.stderr
    assert "export:" in res.stderr  # progress on stderr
    log = open(work / "serve.err", "wb")  # noqa: SIM115
    proc = subprocess.Popen([rtgraph_bin, "serve", "--config", str(cfg)], stdout=subprocess.DEVNULL, stderr=log,
                            stdin=subprocess.DEVNULL, env=env, cwd=work)
    log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert proc.poll() is None, (work / "serve.err").read_text()
            try:
                if httpx.get(url + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "rtgraph serve not ready"
            time.sleep(0.25)
        with Client(url, max_retries=2) as c:
            yield out, json.loads((out / "manifest.json").read_text()), c
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_nodes_equal_the_api(exported) -> None:
    out, manifest, c = exported
    schema = c.schema()
    assert sorted(e["type"] for e in manifest["nodes"]) == sorted(t.name for t in schema.node_types)
    total = 0
    for entry in manifest["nodes"]:
        typ = entry["type"]
        df = pd.read_parquet(out / entry["files"]["parquet"])
        assert len(df) == entry["rows"]
        jl = [json.loads(line) for line in (out / entry["files"]["jsonl"]).read_text().splitlines()]
        assert len(jl) == entry["rows"]
        api = {n.id: n for n in c.nodes(typ, limit=500)}
        assert set(df["id"]) == set(api) == {r["id"] for r in jl}, typ
        declared = [col for col in entry["parquet_columns"] if col.get("property")]
        for row in df.to_dict("records"):
            n = api[row["id"]]
            assert _normal(row["event_time"]) == _api_time(n.event_time.isoformat()), (typ, row["id"])
            props = {col["property"]: _normal(row[col["name"]]) for col in declared if _normal(row[col["name"]]) is not None}
            if _normal(row.get("extra_props")) is not None:
                props.update(json.loads(row["extra_props"]))
            want = {k: (_api_time(v) if schema.node_type(typ).props.get(k) == "time" else _normal(v)) for k, v in n.props.items()}
            assert props == want, (typ, row["id"])
        total += len(df)
    assert total > 0


def test_edges_equal_the_api(exported) -> None:
    out, manifest, c = exported
    total = 0
    for entry in manifest["edges"]:
        typ = entry["type"]
        table = pq.read_table(out / entry["files"]["parquet"])
        assert str(table.schema.field("event_time").type) == "timestamp[us, tz=UTC]"
        df = table.to_pandas()
        assert len(df) == entry["rows"]
        for (ft, fid), group in df.groupby(["from_type", "from_id"]):
            api = {(e.to.type, e.to.id): e for e in c.edges(ft, fid, typ, order="key", since="1970-01-01T00:00:00Z")}
            got = {(r["to_type"], r["to_id"]): r for r in group.to_dict("records")}
            assert set(got) == set(api), (typ, ft, fid)
            for k, r in got.items():
                assert _normal(r["event_time"]) == _api_time(api[k].event_time.isoformat()), (typ, ft, fid, k)
        total += len(df)
    assert total > 0
    # Every edge the API lists from a listed node is exported: the degrees add up.
    for entry in manifest["edges"]:
        if entry.get("coverage") != "complete":
            continue
        et = next(t for t in c.schema().edge_types if t.name == entry["type"])
        want = sum(c.degree(ft, n.id, et.name, "out").count(et.name, "out") for ft in et.from_types for n in c.nodes(ft, limit=500))
        assert entry["rows"] == want, entry["type"]
