#!/usr/bin/env python3
"""Print every row of a ref of an Iceberg table, as Spark (PySpark + the Iceberg Spark
runtime) reads it, in the canonical text of Go's validate.RefRows (see canon.py): one
"col=value ..." line per row, sorted.

  read_spark.py --catalog-uri http://127.0.0.1:8181 --table analytics.clv_daily --ref main
  read_spark.py --sqlite icefill-data/catalog.db --warehouse icefill-data/warehouse \
      --catalog-name icefill --ref clv-fix

REST catalogs use S3FileIO (--s3-endpoint, path-style, AWS_* credentials); the SQLite
catalog is opened with Iceberg's JdbcCatalog (org.xerial sqlite-jdbc) under the same
catalog name icefill wrote it with. The ref is resolved to its snapshot id through the
table's refs metadata table and read with `VERSION AS OF <snapshot id>`, so the rows
come with that snapshot's schema, as iceberg-go's Scan(WithSnapshotID) does.

Jars: --jars DIR (default $ICEFILL_SPARK_JARS, else <repo>/.cache/spark-jars), filled
by setup.sh. A summary goes to stderr.

--serve keeps one Spark session and answers requests, one JSON object per stdin line,
{"refs": ["main", ...], "out_dir": DIR}: each ref is resolved and read again (the
catalog's table cache is off), its lines written to DIR/REF.rows, and one line
"ICEFILL-SPARK-SERVE {json}" is printed on stdout ({"ok": true, "summary": [...]} or
{"ok": false, "error": "..."}). It ends at the end of stdin. The integration tests use
it to read a ref several times as it moves (promotion, rollback) without paying the
session start each time: a running reader must see the new snapshot by itself.
"""

from __future__ import annotations

import argparse
import atexit
import glob
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


def session(a, cat: str):
    from pyspark.sql import SparkSession

    jars = sorted(glob.glob(os.path.join(a.jars, "*.jar")))
    if not any("iceberg-spark-runtime" in j for j in jars):
        sys.exit(f"read_spark: no iceberg-spark-runtime jar in {a.jars}: run integration/readers/setup.sh")
    pre = f"spark.sql.catalog.{cat}"
    tmp = tempfile.mkdtemp(prefix="icefill-spark-")
    atexit.register(shutil.rmtree, tmp, True)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    b = (
        SparkSession.builder.master("local[2]")
        .appName("icefill-read-spark")
        .config("spark.jars", ",".join(jars))
        .config("spark.sql.extensions", "org.apache.iceberg.spark.extensions.IcebergSparkSessionExtensions")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.driver.host", "127.0.0.1")
        .config("spark.driver.bindAddress", "127.0.0.1")
        .config("spark.local.dir", tmp)
        .config("spark.sql.warehouse.dir", os.path.join(tmp, "spark-warehouse"))
        .config("spark.driver.memory", "1g")
        .config("spark.sql.shuffle.partitions", "2")
        .config("spark.sql.session.timeZone", "UTC")
        .config(pre, "org.apache.iceberg.spark.SparkCatalog")
        .config(f"{pre}.cache-enabled", "false")
    )
    if a.sqlite:
        path = os.path.abspath(a.sqlite)
        if not os.path.exists(path):
            sys.exit(f"read_spark: no catalog database at {path}")
        b = (b.config(f"{pre}.catalog-impl", "org.apache.iceberg.jdbc.JdbcCatalog")
             .config(f"{pre}.uri", f"jdbc:sqlite:{path}")
             .config(f"{pre}.warehouse", canon.warehouse_url(a.warehouse)))
    else:
        b = b.config(f"{pre}.type", "rest").config(f"{pre}.uri", a.catalog_uri)
        if a.warehouse:
            b = b.config(f"{pre}.warehouse", a.warehouse)
    # ResolvingFileIO picks S3FileIO for s3:// paths (with the s3.* settings below)
    # and HadoopFileIO for file:// ones.
    b = b.config(f"{pre}.io-impl", "org.apache.iceberg.io.ResolvingFileIO")
    if a.s3_endpoint:
        b = b.config(f"{pre}.s3.endpoint", a.s3_endpoint).config(f"{pre}.s3.path-style-access", "true")
    b = b.config(f"{pre}.client.region", a.s3_region)
    if os.environ.get("AWS_ACCESS_KEY_ID") and os.environ.get("AWS_SECRET_ACCESS_KEY"):
        b = (b.config(f"{pre}.s3.access-key-id", os.environ["AWS_ACCESS_KEY_ID"])
             .config(f"{pre}.s3.secret-access-key", os.environ["AWS_SECRET_ACCESS_KEY"]))
    spark = b.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def quote_ident(table: str, cat: str) -> str:
    return ".".join(f"`{p}`" for p in [cat, *table.split(".")])


def resolve(spark, tname: str, ref: str) -> int:
    rows = spark.sql(f"SELECT snapshot_id FROM {tname}.refs WHERE name = '{ref.replace(chr(39), '')}'").collect()
    if rows:
        return int(rows[0][0])
    if ref.lstrip("-").isdigit():
        found = spark.sql(f"SELECT snapshot_id FROM {tname}.snapshots WHERE snapshot_id = {int(ref)}").collect()
        if found:
            return int(ref)
    sys.exit(f"read_spark: ref {ref!r} is neither a branch, a tag nor a snapshot id of the table")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    canon.add_common_args(p)
    p.add_argument("--jars", default=os.environ.get("ICEFILL_SPARK_JARS")
                   or os.path.join(os.environ.get("ICEFILL_IT_CACHE") or os.path.join(REPO, ".cache"), "spark-jars"))
    p.add_argument("--serve", action="store_true",
                   help="keep the session and read the refs of each JSON request on stdin (see above)")
    a = p.parse_args()
    canon.check_args(p, a)

    t0 = time.monotonic()
    cat = a.catalog_name
    spark = session(a, cat)
    t_start = time.monotonic() - t0
    tname = quote_ident(a.table, cat)

    def read(ref: str, out_dir) -> str:
        t1 = time.monotonic()
        snap = resolve(spark, tname, ref)
        df = spark.sql(f"SELECT * FROM {tname} VERSION AS OF {snap}")
        names = df.columns
        lines = canon.canonical(names, (tuple(r) for r in df.toLocalIterator()))
        canon.write_lines(lines, canon.out_path(out_dir, ref))
        return (f"spark: {a.table}@{ref} (snapshot {snap}): {len(lines)} rows, {len(names)} columns, "
                f"{time.monotonic() - t1:.1f}s (session start {t_start:.1f}s)")

    try:
        if a.serve:
            serve(read)
        for ref in a.ref:
            print(read(ref, a.out_dir), file=sys.stderr)
    finally:
        spark.stop()


def serve(read) -> None:
    """Answer read requests from stdin until it ends (see the module doc)."""
    def answer(obj) -> None:
        sys.stdout.write("ICEFILL-SPARK-SERVE " + json.dumps(obj) + "\n")
        sys.stdout.flush()

    answer({"ok": True, "ready": True})
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            req = json.loads(line)
            summary = [read(ref, req["out_dir"]) for ref in req["refs"]]
            for s in summary:
                print(s, file=sys.stderr)
            answer({"ok": True, "summary": summary})
        except SystemExit as e:  # resolve() exits on an unknown ref
            answer({"ok": False, "error": str(e)})
        except Exception as e:  # noqa: BLE001 -- reported to the caller, who fails the test
            answer({"ok": False, "error": f"{type(e).__name__}: {e}"})


if __name__ == "__main__":
    main()
