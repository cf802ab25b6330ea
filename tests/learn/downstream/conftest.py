"""The tiny dataset and pretext run the classifier tests share, opened once per module."""

from __future__ import annotations

import pytest

from airhockey.learn.downstream.labelled import ClassifierData
from airhockey.learn.pretext.run import PretextRun
from tests.learn.tiny import TinyRuns, tiny_runs


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def run(runs: TinyRuns) -> PretextRun:
    return PretextRun.open(runs.pretext)


@pytest.fixture(scope="module")
def prepared(runs: TinyRuns, run: PretextRun) -> ClassifierData:
    return ClassifierData.load(runs.data, [run])
