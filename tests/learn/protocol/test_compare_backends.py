"""A comparison's classifier runs as tasks: in this process, in a local pool, or on Ray, the same results."""

from __future__ import annotations

import dataclasses

import pytest

from airhockey.backends import Backend
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.compare import compare_on_dataset
from airhockey.learn.protocol.results import Results
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

CONFIG = CompareConfig(
    budgets=(2,), repeats=2, training=SCHEDULE, hidden=8, after_hit_effect=False, probes=False, oracle=False
)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


def accuracies(results: Results) -> dict[str, list[float]]:
    return {arm: [r["accuracy"] for r in results.budgets[0].arms[arm].runs] for arm in results.arms}


def test_the_runs_give_the_same_results_in_process_in_a_pool_and_on_ray(runs, tmp_path, local_ray):
    config = dataclasses.replace(CONFIG, frames_k=(2,))
    here = compare_on_dataset(runs.data, [runs.pretext], tmp_path / "here", config, progress=False)
    pool = compare_on_dataset(runs.data, [runs.pretext], tmp_path / "pool", config, workers=2, progress=False)
    ray = compare_on_dataset(
        runs.data, [runs.pretext], tmp_path / "ray", config, backend=Backend("ray", local_ray), progress=False
    )
    assert accuracies(here) == accuracies(pool) == accuracies(ray)
    for results in (pool, ray):
        assert results.budgets[0].paired_difference == here.budgets[0].paired_difference
        assert summaries(results.frames_k) == summaries(here.frames_k)


def summaries(by_arm):
    """Each arm's accuracy at each k without its runs (whose records hold wall-clock seconds)."""
    return {
        arm: {k: (s.accuracy_mean, s.accuracy_ci95) for k, s in by_k.items()} for arm, by_k in by_arm.items()
    }


@pytest.mark.slow
def test_the_benchmark_on_ray_gives_the_local_leaderboard(tmp_path, local_ray):
    from airhockey.learn.protocol.benchmark import QUICK, run_benchmark

    config = dataclasses.replace(
        QUICK,
        methods=("next_frame",),
        pretext=dataclasses.replace(QUICK.pretext, steps=3),
        compare=dataclasses.replace(QUICK.compare, budgets=(1,), frames_k=(), probes=False, search_lrs=()),
    )
    quiet = {"progress": False, "say": lambda line: None}
    here = run_benchmark(tmp_path / "here", config, **quiet)
    ray = run_benchmark(tmp_path / "ray", config, backend=Backend("ray", local_ray), **quiet)
    assert [r.accuracy for r in here.rows] == [r.accuracy for r in ray.rows]
    pretrained = [i for i, row in enumerate(here.rows) if row.pretext is not None]
    assert [here.rows[i].pretext.steps for i in pretrained] == [ray.rows[i].pretext.steps for i in pretrained]
    assert [here.rows[i].pretext.steps for i in pretrained] == [(3,)]
