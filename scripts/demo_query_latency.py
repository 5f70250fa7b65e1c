#!/usr/bin/env python3
# Sequential (concurrency 1) latency of the README queries against a running `rtgraph demo`.
# Usage: scripts/demo_query_latency.py http://127.0.0.1:8080 300 data/demogen.json
# (account ids are taken from the generator state file, so only live accounts are queried).
import json, sys, time, urllib.request, random
base = sys.argv[1]; n = int(sys.argv[2])
def req(method, path, body=None):
    data = json.dumps(body).encode() if body else None
    r = urllib.request.Request(base + path, data=data, method=method, headers={"Content-Type": "application/json"})
    t0 = time.perf_counter()
    with urllib.request.urlopen(r, timeout=10) as resp:
        resp.read()
    return (time.perf_counter() - t0) * 1000
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs)-1, int(p/100*len(xs)))]
ids = [str(r["account_id"]) for r in json.load(open(sys.argv[3]))["accounts"]["rows"]]
out = {}
for name, fn in [
    ("node", lambda a: req("GET", f"/v1/nodes/account/{a}")),
    ("1-hop edges (has_profile)", lambda a: req("GET", f"/v1/nodes/account/{a}/edges?edge_type=has_profile&direction=out")),
    ("2-hop traversal", lambda a: req("POST", "/v1/traversals", {"start":[{"type":"account","id":a}],"hops":[{"edge_types":["has_profile"],"direction":"out"},{"edge_types":["viewed_title"],"direction":"out"}]})),
    ("3-hop traversal", lambda a: req("POST", "/v1/traversals", {"start":[{"type":"account","id":a}],"hops":[{"edge_types":["has_profile"],"direction":"out"},{"edge_types":["viewed_title"],"direction":"out"},{"edge_types":["viewed_title"],"direction":"in"}]})),
]:
    lat = []
    for i in range(n):
        a = random.choice(ids)
        try:
            lat.append(fn(a))
        except urllib.error.HTTPError as e:
            if e.code != 404: raise
            lat.append(None)
    ok = [x for x in lat if x is not None]
    print(f"{name}: n={len(ok)} p50={pct(ok,50):.2f} ms p99={pct(ok,99):.2f} ms")
