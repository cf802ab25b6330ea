"""The oracle's ceiling is the model better on validation, never on test."""

from __future__ import annotations

import json
import math
from typing import Any

from airhockey.jsonio import json_safe
from airhockey.learn.protocol.jobs import ceiling_model, oracle_summary
from airhockey.learn.protocol.results import OracleBudget
from airhockey.records import from_json, to_json


def record(val: float, hits: list[int]) -> dict[str, Any]:
    """One draw of an oracle model: its validation accuracy and its hits on 2 test episodes of 10 frames."""
    return {"val_accuracy": val, "accuracy": sum(hits) / 20, "episode_hits": hits, "episode_frames": [10, 10]}


def test_the_ceiling_is_the_model_better_on_validation_even_where_test_says_otherwise():
    # The head validates better (0.9 against 0.8) but tests worse (60% against 95%).
    records = {
        "head": [record(0.9, [6, 6]), record(0.9, [6, 6])],
        "boosting": [record(0.8, [10, 9]), record(0.8, [9, 10])],
    }
    fields = oracle_summary(records)
    assert fields["ceiling_model"] == "head"
    assert fields["ceiling"].accuracy_mean == fields["head"].accuracy_mean == 0.6
    assert fields["ceiling"].runs is None and len(fields["head"].runs) == 2  # the runs stay with the head
    assert fields["val_accuracy"] == {"head": 0.9, "boosting": 0.8}
    # The same models, validation the other way round: the trees.
    records = {
        "head": [record(0.7, [6, 6]), record(0.7, [6, 6])],
        "boosting": [record(0.8, [10, 9]), record(0.8, [9, 10])],
    }
    assert oracle_summary(records)["ceiling_model"] == "boosting"


def test_without_validation_frames_the_ceiling_is_the_head_and_equal_scores_keep_the_head():
    nan = math.nan
    assert ceiling_model({"head": [nan, nan], "boosting": [nan, nan]}) == "head"
    assert ceiling_model({"head": [None], "boosting": [None]}) == "head"  # NaN as read back from JSON
    assert ceiling_model({"head": [0.8, 0.9], "boosting": [0.9, 0.8]}) == "head"
    assert ceiling_model({"head": [0.8, nan], "boosting": [0.7, 0.7]}) == "boosting"  # a draw without


def test_the_ceiling_fields_are_written_and_read_back_and_older_files_still_read():
    records = {"head": [record(0.9, [6, 6]), record(0.9, [7, 6])], "boosting": [record(0.8, [9, 9])] * 2}
    budget = OracleBudget(16, **oracle_summary(records))
    plain = json.loads(json.dumps(json_safe(to_json(budget))))
    again = from_json(OracleBudget, plain)
    assert again.ceiling_model == "head" and again.ceiling == budget.ceiling
    # As results_upgrade.upgrade_v1 gives an older entry: at k = 1, without the ceiling's fields.
    older = {"labelled_episodes": 16, "context_frames": 1, **{m: plain[m] for m in ("head", "boosting")}}
    read = from_json(OracleBudget, older)
    assert read.ceiling is None and read.ceiling_model is None and read.val_accuracy is None
