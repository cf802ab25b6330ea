"""What a comparison stores is enough to check it: every interval of results.json recomputed from
the run records stored in it (every budget, k and arm, and the oracle's), and no choice made from
downstream results reads a test episode."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from airhockey.cli import app
from airhockey.learn.config import CompareConfig
from airhockey.learn.downstream.labelled import ClassifierData
from airhockey.learn.protocol.compare import compare_on_dataset, selection_data
from airhockey.learn.protocol.results import ArmAccuracy, OracleBudget, Results, read_results
from airhockey.learn.protocol.runlog import RUN_LOG, read_run_log, run_key
from airhockey.learn.protocol.summaries import arm_summary, paired_difference
from tests.learn.protocol.test_compare import compare_args
from tests.learn.tiny import SCHEDULE, TinyRuns, tiny_runs

CONFIG = CompareConfig(
    budgets=(2, 8),
    repeats=2,
    training=SCHEDULE,
    hidden=8,
    frames_k=(2,),
    oracle_epochs=10,
    after_hit_effect=False,
    probes=False,
)
"""k = 1 and 2 at 2 and 8 labelled episodes (at 8: 6 trained on, 2 validating), the oracle at every
budget and k."""


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> TinyRuns:
    return tiny_runs(tmp_path_factory)


@pytest.fixture(scope="module")
def report(runs: TinyRuns, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("recompute") / "report"
    compare_on_dataset(runs.data, [runs.pretext], out, CONFIG, progress=False)
    return out


def assert_recomputed(stored: ArmAccuracy, budget: int, k: int) -> None:
    """``stored`` is what the project's bootstrap makes of its own runs, which are of ``budget`` and k."""
    assert stored.runs is not None and len(stored.runs) == CONFIG.repeats
    assert [r["repeat"] for r in stored.runs] == list(range(CONFIG.repeats))
    assert {(r["labelled_episodes"], r["context_frames"]) for r in stored.runs} == {(budget, k)}
    assert arm_summary(stored.runs) == stored


def assert_oracle_recomputed(models: OracleBudget, budget: int, k: int) -> None:
    assert models.head is not None and models.boosting is not None
    assert_recomputed(models.head, budget, k)
    assert_recomputed(models.boosting, budget, k)


def test_every_stored_interval_is_recomputed_from_the_stored_runs(report):
    results: Results = read_results(report)  # the typed reader, from the file alone
    ref = results.reference
    for budget in results.budgets:
        for stored in budget.arms.values():
            assert_recomputed(stored, budget.labelled_episodes, 1)
        for arm, difference in budget.paired_difference.items():
            pair = budget.arms[arm].runs, budget.arms[ref].runs
            assert paired_difference(*pair) == difference
    # The k-frame runs at every budget (no frames_k_budget), each recomputed from its own runs.
    assert [(b.labelled_episodes, b.context_frames) for b in results.by_k] == [(2, 2), (8, 2)]
    assert results.ks == [1, 2]
    for budget in results.by_k:
        for stored in budget.arms.values():
            assert_recomputed(stored, budget.labelled_episodes, 2)
        for arm, difference in budget.paired_difference.items():
            pair = budget.arms[arm].runs, budget.arms[ref].runs
            assert paired_difference(*pair) == difference
    assert [(o.labelled_episodes, o.context_frames) for o in results.oracle] == [(2, 1), (8, 1)]
    assert [(o.labelled_episodes, o.context_frames) for o in results.oracle_by_k] == [(2, 2), (8, 2)]
    for oracle in (*results.oracle, *results.oracle_by_k):
        assert_oracle_recomputed(oracle, oracle.labelled_episodes, oracle.context_frames)
    # Positions and convergence at every budget and k.
    at = [(b.labelled_episodes, b.context_frames) for b in results.convergence.budgets]
    assert at == [(2, 1), (8, 1), (2, 2), (8, 2)]
    assert [(b.labelled_episodes, b.context_frames) for b in results.accuracy_by_position.budgets] == at


def test_every_run_of_the_log_is_stored_in_results_json(report):
    results = read_results(report)
    stored = [r for b in results.budgets for a in b.arms.values() for r in a.runs or ()]
    stored += [r for b in results.by_k for a in b.arms.values() for r in a.runs or ()]
    logged = {key for key in read_run_log(report / RUN_LOG) if not key[-1]}  # not the search's
    assert {run_key(r) for r in stored} == logged


def test_no_choice_made_from_downstream_results_can_read_a_test_episode(runs):
    data = ClassifierData.load(runs.data)
    seen = selection_data(data)
    assert len(data.split.test) and not len(seen.split.test)
    assert not np.isin(seen.frames.episode, data.split.test).any()
    assert set(seen.frames.episode) == {*data.split.train.tolist(), *data.split.val.tolist()}
    # The view changes no choice: the search and the oracle head draw the same episodes from it.
    drawn = [s.labelled_and_validation(8, np.random.default_rng(0)) for s in (data, seen)]
    assert [d.tolist() for d in drawn[0]] == [d.tolist() for d in drawn[1]]


def test_learn_compare_refuses_a_selection_rule_that_reads_test(runs, tmp_path):
    with pytest.raises(ValueError, match="would choose on the test episodes"):
        CompareConfig(validation="test")
    out = tmp_path / "report"
    result = CliRunner().invoke(app, [*compare_args(runs, out, "2"), "--set", "validation=test"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "test episodes" in lines[0]
    assert not out.exists()
