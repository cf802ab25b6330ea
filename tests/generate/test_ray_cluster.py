"""Generation across the nodes of a two-node Ray cluster on this machine."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from airhockey.backends import Backend
from airhockey.generate import generate
from tests.generate.helpers import SMALL, file_digests, running_ray_tasks
from tests.generate.test_ray import SHARD_TASK


@pytest.fixture(scope="module")
def two_nodes() -> Iterator[str]:
    """A head and one worker node, one CPU each (each its own raylet, object store and workers);
    the head's address. The test joins it by address, as a driver on a real cluster does."""
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')
    from ray.cluster_utils import Cluster

    if ray.is_initialized():
        ray.shutdown()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    cluster.add_node(num_cpus=1)
    cluster.wait_for_nodes()
    yield cluster.address
    ray.shutdown()
    cluster.shutdown()


def test_shards_played_on_both_nodes_give_the_local_backends_files(two_nodes, small_dataset, tmp_path):
    raylets: set[int] = set()  # the parent of a worker is its node's raylet
    with ThreadPoolExecutor(1) as driver:
        cluster = Backend("ray", ray_address=two_nodes)
        run = driver.submit(generate, SMALL, tmp_path / "data", backend=cluster, progress=False)
        while not run.done():
            raylets.update(running_ray_tasks(SHARD_TASK).values())
            time.sleep(0.005)
        run.result()
    assert len(raylets) == 2, "every node plays shards"
    assert file_digests(tmp_path / "data") == file_digests(small_dataset)
