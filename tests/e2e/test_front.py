"""Scale-out, for real on one machine: three cache nodes (nginx + sidecar each, own port and cache) behind a
front nginx rendered by `nginx-config --front`, with one moto S3 behind them all.

Which node served a request is read from the nodes themselves: a rendition is in exactly one node's
cache, and every miss is a line in that node's sidecar log, so a request that reached a node without
the file would show up as a new miss there.
"""
from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from sidecar.render import nginx as nginx_config
from tests.support.images import small_jpeg
from tests.support.servers import BUCKET, MotoS3, upload
from tests.support.stack import Reply, Stack, make_front, make_stack

NODES = 3
ORIGINALS = 10
WIDTHS = range(1, 101)  # 10 originals x 100 widths = 1,000 distinct renditions
CLIENTS = 8


@pytest.fixture(scope="module")
def cluster(moto_s3: MotoS3) -> Iterator[tuple[list[Stack], Stack]]:
    upload(moto_s3.env, [(f"front/o{i}.jpg", small_jpeg(100 + i, 75)) for i in range(ORIGINALS)])
    stacks: list[Stack] = []
    try:
        for _ in range(NODES):
            stacks.append(make_stack([f"s3://{BUCKET}/front"], env=moto_s3.env))
        front = make_front(stacks)
        stacks.append(front)
        yield stacks[:NODES], front
    finally:
        for stack in stacks:
            stack.close()


def get_all(front: Stack, paths: list[str]) -> list[Reply]:
    with ThreadPoolExecutor(CLIENTS) as pool:
        return list(pool.map(front.get, paths))


def holders(nodes: list[Stack], path: str) -> list[int]:
    """The nodes whose cache holds the rendition at `path` (the URL path is the cache path)."""
    return [i for i, node in enumerate(nodes) if node.cache_file(path).is_file()]


def misses(node: Stack) -> list[str]:
    return [str(record["path"]) for record in node.sidecar_requests()]


def test_each_rendition_lives_on_one_node_and_a_dead_node_moves_only_its_own(
        cluster: tuple[list[Stack], Stack]) -> None:
    nodes, front = cluster
    paths = [front.url(f"o{i}.jpg", width=width) for i in range(ORIGINALS) for width in WIDTHS]
    assert len(set(paths)) == 1000
    started = time.monotonic()

    first = get_all(front, paths)
    assert Counter(reply.status for reply in first) == {200: len(paths)}
    assert all(reply.image().width == min(width, 100 + i)
               for reply, (i, width) in zip(first, [(i, w) for i in range(ORIGINALS) for w in WIDTHS]))
    owner: dict[str, int] = {}
    for path in paths:
        where = holders(nodes, path)
        assert len(where) == 1, f"{path} is cached on nodes {where}"
        owner[path] = where[0]
    made = [misses(node) for node in nodes]
    per_node = Counter(owner.values())
    assert [sorted(m) for m in made] == [sorted(p for p in paths if owner[p] == i) for i in range(NODES)]
    shares = [per_node[i] / len(paths) for i in range(NODES)]
    # Every node takes a share; how large depends on where its random port puts its points on the ring,
    # so the shares are printed below, not bounded.
    assert all(per_node[i] > 0 for i in range(NODES)), shares

    second = get_all(front, paths)
    assert [reply.status for reply in second] == [200] * len(paths)
    assert [reply.body for reply in second] == [reply.body for reply in first]
    # No node saw a miss: every second request was a hit on the one node that holds the file.
    assert [misses(node) for node in nodes] == made

    dead = 0
    nodes[dead].stop()
    after_death = time.monotonic()
    third = get_all(front, paths)
    assert Counter(reply.status for reply in third) == {200: len(paths)}, "the front must answer every request"
    new = [set(misses(node)[len(made[i]):]) for i, node in enumerate(nodes)]
    others = [p for p in paths if owner[p] != dead]
    moved = [p for p in others if any(p in new[i] for i in range(NODES))]
    orphans = [p for p in paths if owner[p] == dead]
    regenerated_on = Counter(next(i for i in range(NODES) if p in new[i]) for p in orphans)
    assert sum(regenerated_on.values()) == len(orphans)  # each orphan made once, on a surviving node
    assert all(set(holders(nodes, p)) & {1, 2} for p in orphans)
    print(f"\nfront: {len(paths)} renditions over {NODES} nodes: "
          f"{', '.join(f'node{i} {per_node[i]} ({shares[i]:.1%})' for i in range(NODES))}; "
          f"second pass: {len(paths)} hits, 0 misses; node{dead} stopped: {len(third)} answered, "
          f"its {len(orphans)} regenerated on "
          f"{', '.join(f'node{i} {n}' for i, n in sorted(regenerated_on.items()))}; "
          f"other nodes' keys moved: {len(moved)}/{len(others)} ({len(moved) / len(others):.1%}); "
          f"three passes in {time.monotonic() - started:.1f}s (the one with a dead node "
          f"{time.monotonic() - after_death:.1f}s)")
    assert moved == [], f"{len(moved)} of {len(others)} renditions of live nodes moved"

    # The operator takes the dead node out of the front's config: with consistent hashing its points
    # leave the ring and nothing else moves, so this pass is all hits (a plain hash would move ~2/3).
    seen = [len(misses(node)) for node in nodes]
    front.stop_nginx()
    front.site_conf = nginx_config.front(front.config, [f"127.0.0.1:{node.port}" for node in nodes[1:]])
    front.start_nginx()
    fourth = get_all(front, paths)
    assert Counter(reply.status for reply in fourth) == {200: len(paths)}
    remade = sum(len(misses(node)) - seen[i] for i, node in enumerate(nodes))
    print(f"front without node{dead} in its config: {remade} of {len(paths)} renditions moved")
    assert remade == 0
