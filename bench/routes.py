"""What old URLs cost: symlinked hits against canonical hits, and the misses that only resolve and link.

    .venv/bin/python -m bench.routes [--rounds N]

One stack (nginx + sidecar, 1 worker) and a real PostgreSQL behind PgBouncer (as the tests start them), one
tiny original so that transforms do not dominate. Variants are interleaved round by round (the machine is
shared), each a keep-alive request from this process; the table gives the median and p90 per request in
milliseconds and the ratio to a canonical hit.

  canonical hit        a canonical URL whose file exists: try_files, sendfile
  old URL hit          an old URL whose link exists: try_files through the symlink
  old URL, link only   new slug of a known ID: the sidecar's cached answer, the canonical file exists, one
                       symlink made (each old URL pays this once)
  old URL, query+link  a new ID whose canonical file exists: one query through PgBouncer, then the link
"""
from __future__ import annotations

import argparse
import http.client
import shutil
import statistics
import time

from PIL import Image

from tests.support.images import encoded
from tests.support.postgres import PgBouncer, Postgres
from tests.support.processes import world_readable_tempdir
from tests.support.stack import make_stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--per-round", type=int, default=25)
    args = parser.parse_args()
    root = world_readable_tempdir()
    originals = root / "originals"
    originals.mkdir()
    originals.chmod(0o755)
    (originals / "a.jpg").write_bytes(encoded(Image.new("RGB", (64, 48), (120, 130, 140)), "JPEG"))
    postgres = Postgres(root / "postgres")
    bouncer = PgBouncer(root / "pgbouncer", postgres)
    total_ids = args.rounds * args.per_round + 1
    postgres.sql("create table images (id bigint primary key, key text)")
    postgres.sql(f"insert into images select i, 'a.jpg' from generate_series(1, {total_ids}) i")
    extra = ('workers = 1\nresolver_query = "select key from images where id = $1::text::bigint"\n'
             'resolver_prepared_statements = false\nopen_file_cache_valid = 5\n'
             '[routes.legacy]\npattern = "/{id}_w{w}_h{h}_{name}.{ext}"\n')
    stack = make_stack([originals], extra=extra, env={"SIDECAR_RESOLVER_DSN": bouncer.dsn})
    try:
        canonical = stack.url("a.jpg", width=32, height=24, format="jpeg")
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=30)

        def get(path: str) -> float:
            started = time.perf_counter()
            conn.request("GET", path)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, (path, response.status)
            return (time.perf_counter() - started) * 1000

        get("/1_w32_h24_first.jpg")  # makes the canonical file and the first link (ID 1)
        get(canonical)
        times: dict[str, list[float]] = {name: [] for name in
                                         ("canonical hit", "old URL hit", "old URL, link only", "old URL, query+link")}
        next_id, slug = 2, 0
        for _ in range(args.rounds):
            for _ in range(args.per_round):
                times["canonical hit"].append(get(canonical))
                times["old URL hit"].append(get("/1_w32_h24_first.jpg"))
                slug += 1
                times["old URL, link only"].append(get(f"/1_w32_h24_slug{slug}.jpg"))
                times["old URL, query+link"].append(get(f"/{next_id}_w32_h24_x.jpg"))
                next_id += 1
        scrape = stack.scrape()

        def count(name: str) -> int:
            return round(scrape.value(f"resize_sidecar_{name}"))

        base = statistics.median(times["canonical hit"])
        print(f"\nold URLs through routes ({args.rounds} rounds x {args.per_round}, interleaved; shared machine, "
              f"compare ratios)\n")
        print(f"{'variant':<22}{'median ms':>11}{'p90 ms':>9}{'x canonical hit':>17}")
        for name, values in times.items():
            p90 = statistics.quantiles(values, n=10)[-1]
            print(f"{name:<22}{statistics.median(values):>11.3f}{p90:>9.3f}{statistics.median(values) / base:>17.1f}")
        queries, seconds = count("resolver_queries_total"), scrape.value("resize_sidecar_resolver_query_seconds_sum")
        print(f"\nresolver: {queries} queries, {seconds / max(queries, 1) * 1000:.2f} ms each on average "
              f"(through PgBouncer); {count('resolver_cache_hits_total')} answers from the cache; "
              f"{count('route_links_total')} links made; {count('renditions_total')} renditions")
        conn.close()
    finally:
        stack.stop()
        bouncer.stop()
        postgres.stop()
        shutil.rmtree(stack.root, ignore_errors=True)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
