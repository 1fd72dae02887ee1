#!/usr/bin/env python3
"""Print every row of a ref of an Iceberg table, as Trino reads it (through the Trino
CLI, from a running Trino server whose catalog "iceberg" is the table's REST
catalog), in the canonical text of Go's validate.RefRows (see canon.py): one
"col=value ..." line per row, sorted.

  read_trino.py --trino-server http://127.0.0.1:8080 --trino-cli trino-cli.jar \
      --catalog-uri http://127.0.0.1:8181 --table analytics.clv_daily --ref main

The queries are what a Trino user types, all sent in one CLI call (a CLI start costs
seconds):

  SELECT name, snapshot_id FROM iceberg.analytics."clv_daily$refs";
  SELECT * FROM iceberg.analytics.clv_daily FOR VERSION AS OF 'clv-fix';   -- a branch or tag
  SELECT * FROM iceberg.analytics.clv_daily FOR VERSION AS OF 1234567890;  -- a snapshot id

Trino 476 shows a branch read by name with its snapshot's own schema (the legacy main
with its 8 columns), as iceberg-go's scan does; canon.project checks the columns
against that schema, looked up in the REST catalog's LoadTable answer (--catalog-uri).

The CLI (an executable jar, --trino-cli, default $ICEFILL_IT_CACHE/trino/trino-cli.jar)
runs on `java` from PATH (17+, --java); it prints rows as JSON objects; doubles are
parsed back to the same float64 (Java prints a round-tripping decimal). A summary
goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import canon  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))


class Trino:
    def __init__(self, a):
        self.a = a
        self.calls = 0
        self.seconds = 0.0

    def run(self, sql: str) -> list[dict]:
        """The rows the CLI prints for sql (one or more statements), as JSON objects
        with their keys in column order."""
        a = self.a
        # C1 only and the serial collector: a short-lived CLI starts faster.
        cmd = [a.java, "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-jar", a.trino_cli, "--server", a.trino_server, "--catalog", a.trino_catalog,
               "--output-format", "JSON", "--execute", sql]
        t0 = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=a.timeout)
        self.calls += 1
        self.seconds += time.monotonic() - t0
        if p.returncode != 0:
            noise = ("WARNING: Unable to create a system terminal", "org.jline.utils.Log")
            err = "\n".join(l for l in p.stderr.splitlines() if not l.startswith(noise))
            sys.exit(f"read_trino: trino-cli exit {p.returncode} for {sql!r}:\n{err}")
        return [json.loads(line) for line in p.stdout.splitlines() if line.strip()]

    def queries(self, tagged: dict[str, str]) -> dict[str, tuple[list[str], list[tuple]]]:
        """Runs several SELECT * … statements in one CLI call (a JVM start each is
        slow): each statement gets a first column naming it, which tells the rows
        apart. Returns each tag's column names (none if it has no rows) and rows."""
        tag = "icefill_query"
        sql = ";\n".join(f"SELECT '{t}' AS {tag}, {q[len('SELECT '):]}" for t, q in tagged.items())
        out: dict[str, tuple[list[str], list[tuple]]] = {t: ([], []) for t in tagged}
        for obj in self.run(sql):
            t = obj.pop(tag)
            names, rows = out[t]
            if not names:
                names.extend(obj)
            rows.append(tuple(obj[n] for n in names))
        return out


def rest_metadata(uri: str, table: str) -> dict:
    """The table metadata of the REST catalog's LoadTable answer."""
    base = uri.rstrip("/")
    with urllib.request.urlopen(base + "/v1/config", timeout=60) as r:
        cfg = json.load(r)
    prefix = (cfg.get("overrides") or {}).get("prefix") or (cfg.get("defaults") or {}).get("prefix")
    ns, _, name = table.rpartition(".")
    path = "/v1/" + (urllib.parse.quote(prefix, safe="") + "/" if prefix else "")
    path += "namespaces/" + urllib.parse.quote("\x1f".join(ns.split(".")), safe="")
    path += "/tables/" + urllib.parse.quote(name, safe="")
    with urllib.request.urlopen(base + path, timeout=60) as r:
        return json.load(r)["metadata"]


def convert(names: list[str], rows: list[tuple], doubles: set[str]) -> list[tuple]:
    """JSON values to the Python types canon formats: dates stay "YYYY-MM-DD" strings
    (their canonical form); the columns in doubles become floats (a whole double comes
    as 2.0, NaN and the infinities as strings)."""
    conv = [(lambda v: None if v is None else float(v)) if n in doubles else (lambda v: v) for n in names]
    return [tuple(c(v) for c, v in zip(conv, r)) for r in rows]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    canon.add_common_args(p)
    cache = os.environ.get("ICEFILL_IT_CACHE") or os.path.join(REPO, ".cache")
    p.add_argument("--trino-server", required=True, help="Trino server URI, e.g. http://127.0.0.1:8080")
    p.add_argument("--trino-cli", default=os.path.join(cache, "trino", "trino-cli.jar"))
    p.add_argument("--trino-catalog", default="iceberg", help="the Trino catalog on the REST catalog (default iceberg)")
    p.add_argument("--java", default="java", help="java for the CLI (default: java on PATH)")
    p.add_argument("--timeout", type=float, default=300, help="seconds per query (default 300)")
    a = p.parse_args()
    canon.check_args(p, a)
    if a.sqlite:
        p.error("read_trino reads through the REST catalog only (--catalog-uri)")

    trino = Trino(a)
    ns, _, name = a.table.rpartition(".")
    q = lambda s: '"' + s.replace('"', '""') + '"'  # noqa: E731
    tname = f"{q(a.trino_catalog)}.{q(ns)}.{q(name)}"
    meta = rest_metadata(a.catalog_uri, a.table)
    doubles = {f["name"] for s in meta.get("schemas") or [] for f in s["fields"] if f.get("type") in ("double", "float")}
    # One CLI call: the refs, and each ref as a user reads it (a branch or tag by
    # name, a snapshot by id).
    tagged = {"refs": f"SELECT name, snapshot_id FROM {q(a.trino_catalog)}.{q(ns)}.{q(name + '$refs')}"}
    for ref in a.ref:
        version = ref if ref.lstrip("-").isdigit() else "'" + ref.replace("'", "''") + "'"
        tagged[f"ref:{ref}"] = f"SELECT * FROM {tname} FOR VERSION AS OF {version}"
    t1 = time.monotonic()
    got = trino.queries(tagged)
    by_name = {n: int(s) for n, s in got["refs"][1]}

    for ref in a.ref:
        snap = int(ref) if ref.lstrip("-").isdigit() else by_name.get(ref)
        if snap is None:
            sys.exit(f"read_trino: Trino read {ref!r} but {name}$refs has no such ref ({sorted(by_name)})")
        keep = canon.snapshot_columns(meta, snap)
        names, rows = got[f"ref:{ref}"]
        lines = canon.canonical(keep, canon.project(names, convert(names, rows, doubles), keep)) if rows else []
        canon.write_lines(lines, canon.out_path(a.out_dir, ref))
        print(f"trino: {a.table}@{ref} (snapshot {snap}): {len(lines)} rows, {len(keep)} columns "
              f"(Trino returned {len(names)}); {len(tagged)} queries in {time.monotonic() - t1:.1f}s, "
              f"{trino.calls} CLI call(s) in {trino.seconds:.1f}s", file=sys.stderr)


if __name__ == "__main__":
    main()
