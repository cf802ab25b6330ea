"""A comparison's classifier runs run again from its report folder alone.

A run's record in ``runs.jsonl`` names everything the run was: its arm and pretext run, the
episodes it trained and validated on, its schedule (the search's choice), k and seed. Run again
from it with the same code on a CPU, it gives the same record; run again with one setting of the
schedule changed (``training.precision``, say), it gives a paired measurement of that setting's
effect on the same episodes, weights and frame order (``benchmarks/precision_effect.py``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig, from_dict
from airhockey.learn.downstream.classifier import EncoderSpec
from airhockey.learn.downstream.labelled import ClassifierData
from airhockey.learn.pretext.guards import data_fingerprint
from airhockey.learn.protocol.arms import Arm, build_arms, open_arms
from airhockey.learn.protocol.jobs import ClassifierJob, run_classifier_job
from airhockey.learn.protocol.runlog import RUN_LOG, SETTINGS_FILE, read_run_log, stored_config
from airhockey.records import read_json_file


@dataclass
class StoredComparison:
    """A comparison's report folder opened to run its classifier runs again: its settings, its data
    and arms loaded as the comparison loaded them, and its finished runs' records."""

    folder: Path
    config: CompareConfig
    data: ClassifierData
    arms: list[Arm]
    records: list[dict[str, Any]]
    """The records of ``runs.jsonl`` in their order, search candidates included."""

    @classmethod
    def open(cls, folder: str | Path) -> StoredComparison:
        """Reads ``folder/compare.json`` and ``folder/runs.jsonl`` and loads the data and pretext runs.

        Raises:
            UserError: a missing or damaged file (naming it and the field), or data or pretext
                runs that changed since the comparison read them.
        """
        folder = Path(folder)
        path = folder / SETTINGS_FILE
        if not path.is_file():
            raise UserError(f"{str(folder)!r} holds no {SETTINGS_FILE}: give a comparison's report folder")
        settings = read_json_file(path)
        field = "config"
        try:
            config = from_dict(CompareConfig, stored_config(settings["config"]))
            field = "data"
            data, test_data = settings["data"], settings["test_data"]
            fingerprints = [settings["data_fingerprint"], settings["test_data_fingerprint"]]
            field = "arms"
            stored = settings["arms"]
            # As the comparison was given them: a one-run arm as its folder (named after it), a
            # several-run arm as a list (named after its method), a supervised arm by its name.
            sources: list[Any] = [
                [run["path"] for run in arm["pretext_runs"]]
                if len(arm["pretext_runs"]) > 1
                else arm["pretext_runs"][0]["path"]
                if arm["pretext_runs"]
                else arm["name"]
                for arm in stored
            ]
            hashes = [[run["sha256"] for run in arm["pretext_runs"]] for arm in stored]
        except (KeyError, TypeError, AttributeError, ValueError):
            raise UserError(f"{path}: field {field!r} is missing or damaged") from None
        if data_fingerprint(data) != fingerprints[0] or (
            test_data is not None and data_fingerprint(test_data) != fingerprints[1]
        ):
            raise UserError(f"{path}: the data changed since the comparison ran: it cannot be rerun")
        arm_runs, names = open_arms(
            sources, stored[0]["name"], config.practitioner, config.scratch_per_backbone
        )
        if names != [arm["name"] for arm in stored]:
            raise UserError(f"{path}: field 'arms': the runs open as arms {names}, not as recorded")
        runs = [run for group in arm_runs for run in group]
        loaded = ClassifierData.load(data, runs, test_data=test_data)
        arms = build_arms(names, arm_runs, loaded.image_size)
        for arm, expected in zip(arms, hashes, strict=True):
            if expected and arm.checkpoint_hashes() != expected:
                raise UserError(f"{path}: arm {arm.name!r}: a pretext run was retrained since the comparison")
        records = list(read_run_log(folder / RUN_LOG).values())
        return cls(folder, config, loaded, arms, records)

    def tested(self) -> list[dict[str, Any]]:
        """The records of the comparison's own runs (not the search's candidates), in file order."""
        return [r for r in self.records if not r.get("search")]

    def job(self, record: dict[str, Any], **training: Any) -> ClassifierJob:
        """The job that made ``record``, with the schedule's fields in ``training`` changed, run in
        this process.

        Raises:
            UserError: for a record of an arm the comparison does not have.
        """
        names = [arm.name for arm in self.arms]
        if record["arm"] not in names:
            raise UserError(f"{self.folder / RUN_LOG}: a run of arm {record['arm']!r}, not among {names}")
        val = np.asarray(record["val_episodes"], dtype=np.int64)
        own_val = self.config.validation == "budget"
        schedule = dataclasses.replace(
            self.config.training,
            **record["schedule"],
            seed=record["seed"],
            include_after_hit=record["include_after_hit"],
            context_frames=record["context_frames"],
            select_best=not own_val or len(val) > 0,
        )
        return ClassifierJob(
            arm=record["arm"],
            arm_index=names.index(record["arm"]),
            run_index=record["pretext_run"],
            budget=record["labelled_episodes"],
            include_after_hit=record["include_after_hit"],
            context_frames=record["context_frames"],
            repeat=record["repeat"],
            labelled=np.asarray(record["episodes"], dtype=np.int64),
            val_episodes=val if own_val else None,
            training=dataclasses.replace(schedule, **training),
            in_process=True,
            candidate=record.get("search") or "",
        )

    def run(self, record: dict[str, Any], **training: Any) -> dict[str, Any]:
        """``record``'s run run again (``job``), in this process; its new record."""
        job = self.job(record, **training)
        specs: Sequence[EncoderSpec] = [arm.spec for arm in self.arms]
        states: list[list[dict[str, Any] | None]] = [[None] * max(len(arm.runs), 1) for arm in self.arms]
        runs = self.arms[job.arm_index].runs
        if runs:  # only the encoder this run loads
            states[job.arm_index][job.run_index] = runs[job.run_index].encoder_state()
        return run_classifier_job(
            job, self.data, specs, states, len(self.data.label_names), self.config.hidden
        )
