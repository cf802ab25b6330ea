"""Settings written before a field existed still continue the comparison they describe."""

from __future__ import annotations

import dataclasses
import json

from airhockey.learn.config import ClassifyConfig, CompareConfig
from airhockey.learn.protocol.runlog import comparable


def written(config: CompareConfig) -> dict:
    return {"config": json.loads(json.dumps(dataclasses.asdict(config)))}


def test_a_field_added_later_reads_as_what_older_settings_did():
    now = written(CompareConfig(practitioner=False, convergence_accuracy=0.9))
    old = written(CompareConfig())
    for name in ("practitioner", "search_norms", "search_epochs", "convergence_accuracy"):
        del old["config"][name]
    del old["config"]["training"]["head_norm"]
    assert comparable(old) == comparable(now)  # no practitioner then; summaries only change no run


def test_a_changed_setting_is_still_another_comparison():
    old = written(CompareConfig())
    del old["config"]["practitioner"]
    assert comparable(old) != comparable(written(CompareConfig()))  # now with a practitioner arm
    batchnorm = written(CompareConfig(training=ClassifyConfig(head_norm="batchnorm")))
    assert comparable(batchnorm) != comparable(written(CompareConfig()))
