"""A small dataset, generated once per session with the scripted policy, for the read-side tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from airhockey.generate import generate
from tests.generate.helpers import SMALL


@pytest.fixture(scope="session")
def small_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("small") / "data"
    generate(SMALL, path, workers=1, progress=False)
    return path
