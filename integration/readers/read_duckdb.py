#!/usr/bin/env python3
"""Print every row of a ref of an Iceberg table, as DuckDB (the iceberg extension,
attached to the REST catalog) reads it, in the canonical text of Go's
validate.RefRows (see canon.py): one "col=value ..." line per row, sorted.

  read_duckdb.py --catalog-uri http://127.0.0.1:8181 --s3-endpoint http://127.0.0.1:9000 \
      --table analytics.clv_daily --ref main --ref clv-fix --out-dir DIR

How a DuckDB user reads a ref, which this script does:

  LOAD httpfs; LOAD avro; LOAD iceberg;
  CREATE SECRET (TYPE s3, KEY_ID '…', SECRET '…', REGION '…', ENDPOINT '127.0.0.1:9000',
                 URL_STYLE 'path', USE_SSL false);
  ATTACH '' AS rc (TYPE iceberg, ENDPOINT 'http://127.0.0.1:8181', AUTHORIZATION_TYPE 'none');
  SELECT metadata FROM iceberg_load_table_response(rc.analytics.clv_daily);  -- refs -> snapshot ids
  SELECT * FROM rc.analytics.clv_daily AT (VERSION => <snapshot id>);

DuckDB 1.5 has no syntax for a branch name (AT (VERSION => 'clv-fix') is an error):
a branch or tag is resolved to its snapshot id through the table metadata the
catalog returns. AT (VERSION => <id>) shows the snapshot with its own schema (the
legacy main with its 8 columns), as iceberg-go's scan does; canon.project checks the
columns against that schema.

The extensions come from PyPI (duckdb-extension-{httpfs,avro,iceberg}, pinned in
requirements.txt) and are LOADed by path: INSTALL would download them at run time.
Only the REST catalog is supported (not --sqlite). A summary goes to stderr.
"""

from __future__ import annotations

import argparse
import glob
import importlib
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402


def connect(a):
    import duckdb

    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    for name in ("httpfs", "avro", "iceberg"):
        mod = importlib.import_module(f"duckdb_extension_{name}")
        paths = glob.glob(os.path.join(os.path.dirname(mod.__file__), "extensions", "*", f"{name}.duckdb_extension"))
        if len(paths) != 1:
            sys.exit(f"read_duckdb: want one {name}.duckdb_extension in the {mod.__name__} package, found {paths}")
        con.execute(f"LOAD '{paths[0]}'")
    if a.s3_endpoint:
        host = a.s3_endpoint.split("://", 1)[-1].rstrip("/")
        ssl = a.s3_endpoint.startswith("https://")
        con.execute(
            "CREATE SECRET icefill_s3 (TYPE s3, KEY_ID $k, SECRET $s, REGION $r, ENDPOINT $e, URL_STYLE 'path', USE_SSL $ssl)",
            {"k": os.environ.get("AWS_ACCESS_KEY_ID", ""), "s": os.environ.get("AWS_SECRET_ACCESS_KEY", ""),
             "r": a.s3_region, "e": host, "ssl": ssl})
    quote = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
    con.execute(f"ATTACH {quote(a.warehouse or '')} AS rc (TYPE iceberg, ENDPOINT {quote(a.catalog_uri)}, "
                "AUTHORIZATION_TYPE 'none')")
    return con


def table_ident(table: str) -> str:
    return ".".join(['rc'] + ['"' + p.replace('"', '""') + '"' for p in table.split(".")])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    canon.add_common_args(p)
    a = p.parse_args()
    canon.check_args(p, a)
    if a.sqlite:
        p.error("read_duckdb reads through the REST catalog only (--catalog-uri)")

    t0 = time.monotonic()
    con = connect(a)
    tname = table_ident(a.table)
    for ref in a.ref:
        t1 = time.monotonic()
        # A fresh LoadTable for every ref: the table may have moved since.
        # (metadata is a VARIANT: it comes to Python as the JSON's dicts and lists.)
        (meta,) = con.execute(f"SELECT metadata FROM iceberg_load_table_response({tname})").fetchone()
        snap = canon.resolve_ref(meta, ref)
        keep = canon.snapshot_columns(meta, snap)
        cur = con.execute(f"SELECT * FROM {tname} AT (VERSION => {snap})")
        names = [d[0] for d in cur.description]
        rows = canon.project(names, cur.fetchall(), keep)
        lines = canon.canonical(keep, rows)
        canon.write_lines(lines, canon.out_path(a.out_dir, ref))
        print(f"duckdb: {a.table}@{ref} (snapshot {snap}): {len(lines)} rows, {len(keep)} columns "
              f"(DuckDB returned {len(names)}), {time.monotonic() - t1:.1f}s (total {time.monotonic() - t0:.1f}s)",
              file=sys.stderr)


if __name__ == "__main__":
    main()
