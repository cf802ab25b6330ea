"""Fixtures shared across the test packages."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """A Ray instance on this machine (2 CPUs, no dashboard) for one test module; its address.

    Skips where Ray is not installed (CI installs it: it is in the ``dev`` extra).
    """
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[ray]"')
    if ray.is_initialized():  # left by another module: each module gets its own instance
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()
