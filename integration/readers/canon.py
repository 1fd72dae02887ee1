"""Canonical text of table rows, identical to Go's validate.RefRows.

RefRows prints each row as "col=value col=value ..." in schema order, each value
formatted by arrow-go's Array.ValueStr, and sorts the lines. For the column types of
icefill's table that is:

  date32   YYYY-MM-DD                     (arrow.Date32.FormattedString)
  int32/64 decimal                        (fmt "%v")
  float64  strconv.FormatFloat(v, 'g', -1, 64)
  string   the string itself
  null     "(null)"                       (array.NullValueStr)

Go sorts with slices.Sort on strings (byte order); Python's str order is code-point
order, which is the same order for UTF-8.
"""

from __future__ import annotations

import datetime
import decimal
import math
from typing import Any, Iterable, Sequence

NULL = "(null)"


def go_float(x: float) -> str:
    """strconv.FormatFloat(x, 'g', -1, 64): shortest round-trip digits, %e form when
    the decimal exponent is < -4 or >= 6 (Go uses 6 as the %e threshold when the
    precision is the shortest), exponent with sign and at least two digits."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "+Inf" if x > 0 else "-Inf"
    if x == 0:
        return "-0" if math.copysign(1.0, x) < 0 else "0"
    # repr gives the shortest digits that round-trip (like Go's shortest mode).
    sign, digits, exp = decimal.Decimal(repr(x)).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp += len(digits) - len(ds)  # account for the stripped zeros
    nd = len(ds)
    dp = nd + exp  # decimal point position relative to the digit string
    out = "-" if sign else ""
    e = dp - 1
    if e < -4 or e >= 6:
        mant = ds[0] + ("." + ds[1:] if nd > 1 else "")
        return f"{out}{mant}e{'-' if e < 0 else '+'}{abs(e):02d}"
    if dp <= 0:
        return f"{out}0.{'0' * -dp}{ds}"
    if dp >= nd:
        return f"{out}{ds}{'0' * (dp - nd)}"
    return f"{out}{ds[:dp]}.{ds[dp:]}"


def value_str(v: Any) -> str:
    """One value as arrow-go's ValueStr prints it."""
    if v is None:
        return NULL
    if isinstance(v, bool):  # not in icefill's schema; Go prints true/false
        return "true" if v else "false"
    if isinstance(v, float):
        return go_float(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, datetime.datetime):
        raise TypeError(f"timestamp values are not in icefill's schema: {v!r}")
    if isinstance(v, datetime.date):
        return v.strftime("%Y-%m-%d") if v.year >= 1000 else f"{v.year:04d}-{v.month:02d}-{v.day:02d}"
    if isinstance(v, str):
        return v
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).decode("utf-8", errors="surrogateescape")
    raise TypeError(f"no canonical form for {type(v).__name__} value {v!r}")


def row_line(names: Sequence[str], values: Sequence[Any]) -> str:
    return " ".join(f"{n}={value_str(v)}" for n, v in zip(names, values))


def canonical(names: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    """Sorted canonical lines of rows (tuples in the order of names)."""
    return sorted(row_line(names, r) for r in rows)


def write_lines(lines: list[str], path: str | None) -> None:
    """Write the lines to path, or to stdout when path is None."""
    import sys

    text = "".join(line + "\n" for line in lines)
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
    else:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


def out_path(out_dir: str | None, ref: str) -> str | None:
    import os

    if out_dir is None:
        return None
    os.makedirs(out_dir, exist_ok=True)
    return os.path.join(out_dir, ref.replace("/", "_") + ".rows")


def add_common_args(p) -> None:
    """The command-line flags both readers share."""
    import os

    g = p.add_argument_group("catalog (REST, or the embedded SQLite catalog of icefill)")
    g.add_argument("--catalog-uri", help="REST catalog URI, e.g. http://127.0.0.1:8181")
    g.add_argument("--sqlite", metavar="PATH", help="SQLite catalog file written by icefill (instead of --catalog-uri)")
    g.add_argument("--warehouse", help="warehouse: a folder or file:// URL for --sqlite; optional for REST")
    g.add_argument("--catalog-name", default="icefill", help="catalog name; for --sqlite it must be icefill's (default icefill)")
    p.add_argument("--table", default="analytics.clv_daily", help="namespace.table (default analytics.clv_daily)")
    p.add_argument("--ref", action="append", default=[],
                   help="branch, tag or snapshot id to read; repeat for several (then use --out-dir)")
    p.add_argument("--out-dir", help="write each ref's lines to OUT_DIR/REF.rows instead of stdout")
    s = p.add_argument_group("S3 (defaults from the environment)")
    s.add_argument("--s3-endpoint", default=os.environ.get("ICEFILL_S3_ENDPOINT") or os.environ.get("AWS_ENDPOINT_URL"))
    s.add_argument("--s3-region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")


def check_args(p, a) -> None:
    if bool(a.catalog_uri) == bool(a.sqlite):
        p.error("give exactly one of --catalog-uri and --sqlite")
    if a.sqlite and not a.warehouse:
        p.error("--sqlite needs --warehouse")
    if not a.ref and not getattr(a, "serve", False):
        p.error("--ref is required")
    if len(a.ref) > 1 and not a.out_dir:
        p.error("several --ref need --out-dir")


def warehouse_url(w: str) -> str:
    import os
    import pathlib

    if "://" in w:
        return w.rstrip("/")
    return pathlib.Path(os.path.abspath(w)).as_uri()


# ---- checking a reader shows a snapshot with the snapshot's schema ----
#
# iceberg-go's Scan(WithSnapshotID) shows a snapshot with the schema it was written
# with (the legacy main has 8 columns while the table's current schema, after the
# corrected backfill, has 11). An engine may use the table's current schema instead,
# as the Iceberg spec allows for branches; DuckDB 1.5.5 and Trino 476 were measured
# to use the snapshot's. These helpers resolve a ref in the table metadata (the JSON
# of the REST catalog's LoadTable answer) and cut rows down to the snapshot's
# columns, failing if a dropped column holds a value.


def resolve_ref(metadata: dict, ref: str) -> int:
    """The snapshot id a branch or tag points at, or ref itself if it is the id of
    one of the table's snapshots; exits otherwise."""
    import sys

    refs = metadata.get("refs") or {}
    if ref in refs:
        return int(refs[ref]["snapshot-id"])
    if ref.lstrip("-").isdigit() and any(int(s["snapshot-id"]) == int(ref) for s in metadata.get("snapshots") or []):
        return int(ref)
    sys.exit(f"ref {ref!r} is neither a branch, a tag nor a snapshot id of the table (refs: {sorted(refs)})")


def snapshot_columns(metadata: dict, snapshot_id: int) -> list[str]:
    """The column names of the schema snapshot_id was written with."""
    snaps = {int(s["snapshot-id"]): s for s in metadata.get("snapshots") or []}
    if snapshot_id not in snaps:
        raise ValueError(f"snapshot {snapshot_id} is not in the table metadata")
    sid = snaps[snapshot_id].get("schema-id", metadata.get("current-schema-id"))
    for s in metadata.get("schemas") or []:
        if s.get("schema-id") == sid:
            return [f["name"] for f in s["fields"]]
    raise ValueError(f"schema {sid} of snapshot {snapshot_id} is not in the table metadata")


def project(names: Sequence[str], rows: Iterable[Sequence[Any]], keep: Sequence[str]) -> list[tuple]:
    """rows (in the order of names) cut down to the columns keep, in keep's order.
    Raises ValueError if a column of keep is missing, or a dropped column holds a
    value: then the reader did not show the snapshot as its schema says."""
    idx = {n: i for i, n in enumerate(names)}
    missing = [k for k in keep if k not in idx]
    if missing:
        raise ValueError(f"the reader returned no column {missing} (it returned {list(names)})")
    take = [idx[k] for k in keep]
    dropped = [i for n, i in idx.items() if n not in set(keep)]
    out = []
    for r in rows:
        for i in dropped:
            if r[i] is not None:
                raise ValueError(f"column {names[i]} is not in the snapshot's schema but holds {r[i]!r}: {r}")
        out.append(tuple(r[i] for i in take))
    return out
