#!/usr/bin/env python3
"""Print every row of a ref of an Iceberg table, as PyIceberg reads it, in the canonical
text of Go's validate.RefRows (see canon.py): one "col=value ..." line per row, sorted.

  read_pyiceberg.py --catalog-uri http://127.0.0.1:8181 --table analytics.clv_daily --ref main
  read_pyiceberg.py --sqlite icefill-data/catalog.db --warehouse icefill-data/warehouse \
      --catalog-name icefill --ref clv-fix

The ref (branch, tag or snapshot id) is resolved to its snapshot and scanned with that
snapshot's schema, as iceberg-go's Scan(WithSnapshotID) does. S3 settings come from
--s3-endpoint/--s3-region and AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY.
A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402


def open_catalog(a):
    props = {}
    if a.s3_endpoint:
        props["s3.endpoint"] = a.s3_endpoint
    props["s3.region"] = a.s3_region
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        props["s3.access-key-id"] = os.environ["AWS_ACCESS_KEY_ID"]
        props["s3.secret-access-key"] = os.environ["AWS_SECRET_ACCESS_KEY"]
        if os.environ.get("AWS_SESSION_TOKEN"):
            props["s3.session-token"] = os.environ["AWS_SESSION_TOKEN"]
    if a.sqlite:
        from pyiceberg.catalog.sql import SqlCatalog

        path = os.path.abspath(a.sqlite)
        if not os.path.exists(path):
            sys.exit(f"read_pyiceberg: no catalog database at {path}")
        return SqlCatalog(a.catalog_name, uri=f"sqlite:///{path}", warehouse=canon.warehouse_url(a.warehouse), **props)
    from pyiceberg.catalog.rest import RestCatalog

    if a.warehouse:
        props["warehouse"] = a.warehouse
    return RestCatalog(a.catalog_name, uri=a.catalog_uri, **props)


def resolve(tbl, ref: str):
    snap = tbl.snapshot_by_name(ref)
    if snap is None and ref.lstrip("-").isdigit():
        snap = tbl.snapshot_by_id(int(ref))
    if snap is None:
        sys.exit(f"read_pyiceberg: ref {ref!r} is neither a branch, a tag nor a snapshot id of the table")
    return snap


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    canon.add_common_args(p)
    a = p.parse_args()
    canon.check_args(p, a)

    t0 = time.monotonic()
    cat = open_catalog(a)
    tbl = cat.load_table(a.table)
    for ref in a.ref:
        snap = resolve(tbl, ref)
        arrow_tbl = tbl.scan(snapshot_id=snap.snapshot_id).to_arrow()
        names = arrow_tbl.column_names
        cols = [arrow_tbl.column(i).to_pylist() for i in range(arrow_tbl.num_columns)]
        lines = canon.canonical(names, zip(*cols)) if cols else []
        canon.write_lines(lines, canon.out_path(a.out_dir, ref))
        print(f"pyiceberg: {a.table}@{ref} (snapshot {snap.snapshot_id}): {len(lines)} rows, "
              f"{len(names)} columns, {time.monotonic() - t0:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
