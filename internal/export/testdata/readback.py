"""Reads an `rtgraph export` directory with pyarrow and pandas and checks
that every Parquet file says exactly what its JSON Lines twin says.

Usage: python readback.py EXPORT_DIR

Needs pyarrow and pandas. Exits 0 when every type matches, 1 with one line
per mismatch otherwise, 2 on a usage error.
"""

import json
import os
import sys

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ARROW_TYPES = {
    "string": pa.string(),
    "int64": pa.int64(),
    "double": pa.float64(),
    "boolean": pa.bool_(),
    "timestamp_us_utc": pa.timestamp("us", tz="UTC"),
}

NODE_FIXED = ["id", "event_time"]
EDGE_FIXED = ["from_type", "from_id", "to_type", "to_id", "event_time", "expires_at"]


def ts(value):
    """A JSON time text or a pyarrow datetime as a UTC pandas Timestamp."""
    t = pd.Timestamp(value)
    if t.tzinfo is None:
        t = t.tz_localize("UTC")
    return t.tz_convert("UTC")


def same_value(col_type, parquet_value, json_value):
    if col_type == "timestamp_us_utc":
        return isinstance(json_value, str) and ts(parquet_value) == ts(json_value)
    if col_type == "double":
        return (
            isinstance(json_value, (int, float))
            and not isinstance(json_value, bool)
            and float(json_value) == parquet_value
        )
    if col_type == "int64":
        return isinstance(json_value, int) and not isinstance(json_value, bool) and json_value == parquet_value
    if col_type == "boolean":
        return isinstance(json_value, bool) and json_value == parquet_value
    return isinstance(json_value, str) and json_value == parquet_value


def key_of(row, edges):
    if edges:
        return (row["from"]["type"], row["from"]["id"], row["to"]["type"], row["to"]["id"])
    return (row["id"],)


def parquet_key(rec, edges):
    if edges:
        return (rec["from_type"], rec["from_id"], rec["to_type"], rec["to_id"])
    return (rec["id"],)


def check_type(root, kind, entry, errors):
    edges = kind == "edges"
    name = f"{kind}/{entry['type']}"
    files = entry["files"]
    if "parquet" not in files or "jsonl" not in files:
        errors.append(f"{name}: the check needs both formats, manifest lists {sorted(files)}")
        return 0
    columns = entry["parquet_columns"]
    table = pq.read_table(os.path.join(root, files["parquet"]))

    # Columns: names, order, Arrow types, nullability as the manifest says.
    if table.schema.names != [c["name"] for c in columns]:
        errors.append(f"{name}: parquet columns {table.schema.names}, manifest {[c['name'] for c in columns]}")
        return 0
    for c in columns:
        f = table.schema.field(c["name"])
        if f.type != ARROW_TYPES[c["type"]]:
            errors.append(f"{name}: column {c['name']} is {f.type}, manifest says {c['type']}")
        if f.nullable != c["optional"]:
            errors.append(f"{name}: column {c['name']} nullable={f.nullable}, manifest optional={c['optional']}")
    fixed = EDGE_FIXED if edges else NODE_FIXED
    if [c["name"] for c in columns[: len(fixed)]] != fixed or columns[-1]["name"] != "extra_props":
        errors.append(f"{name}: fixed columns are not {fixed} ... extra_props")

    # pandas: the frame has the rows and timezone-aware timestamps.
    df = table.to_pandas(types_mapper=pd.ArrowDtype)
    if len(df) != entry["rows"]:
        errors.append(f"{name}: {len(df)} parquet rows, manifest says {entry['rows']}")
    et = df["event_time"].dtype
    if not (isinstance(et, pd.ArrowDtype) and et.pyarrow_dtype == ARROW_TYPES["timestamp_us_utc"]):
        errors.append(f"{name}: pandas event_time dtype {et}")

    with open(os.path.join(root, files["jsonl"]), encoding="utf-8") as fh:
        lines = [json.loads(line) for line in fh if line.strip()]
    if len(lines) != entry["rows"]:
        errors.append(f"{name}: {len(lines)} JSON lines, manifest says {entry['rows']}")
    jdf = pd.DataFrame({"event_time": [ts(line["event_time"]) for line in lines]})
    if len(lines) and jdf["event_time"].max() != ts(df["event_time"].max()):
        errors.append(f"{name}: newest event_time differs between parquet and jsonl")

    by_key = {}
    for line in lines:
        if line.get("type") != entry["type"]:
            errors.append(f"{name}: JSON line of type {line.get('type')!r}")
        by_key[key_of(line, edges)] = line
    if len(by_key) != len(lines):
        errors.append(f"{name}: duplicate keys in the JSON lines")

    declared = [c for c in columns if c.get("property")]
    declared_names = {c["property"] for c in declared}
    for rec in table.to_pylist():
        k = parquet_key(rec, edges)
        line = by_key.pop(k, None)
        if line is None:
            errors.append(f"{name}: parquet row {k} has no JSON line")
            continue
        where = f"{name} {k}"
        if ts(rec["event_time"]) != ts(line["event_time"]):
            errors.append(f"{where}: event_time {rec['event_time']} vs {line['event_time']}")
        if edges:
            exp = line.get("expires_at")
            if (rec["expires_at"] is None) != (exp is None) or (exp is not None and ts(rec["expires_at"]) != ts(exp)):
                errors.append(f"{where}: expires_at {rec['expires_at']} vs {exp}")
        props = line["props"]
        for c in declared:
            pv, jv = rec[c["name"]], props.get(c["property"])
            if pv is None and jv is None:
                continue
            if pv is None or jv is None or not same_value(c["type"], pv, jv):
                errors.append(f"{where}: property {c['property']} (column {c['name']}) {pv!r} vs {jv!r}")
        extra = {p: v for p, v in props.items() if p not in declared_names}
        got = json.loads(rec["extra_props"]) if rec["extra_props"] is not None else {}
        if got != extra:
            errors.append(f"{where}: extra_props {got!r} vs {extra!r}")
    for k in by_key:
        errors.append(f"{name}: JSON line {k} has no parquet row")
    return len(lines)


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = argv[1]
    with open(os.path.join(root, "manifest.json"), encoding="utf-8") as fh:
        manifest = json.load(fh)
    errors = []
    rows = 0
    types = 0
    for kind in ("nodes", "edges"):
        for entry in manifest[kind]:
            rows += check_type(root, kind, entry, errors)
            types += 1
    for e in errors:
        print(e)
    if errors:
        return 1
    print(f"readback ok: {types} types, {rows} rows, pyarrow {pa.__version__}, pandas {pd.__version__}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
