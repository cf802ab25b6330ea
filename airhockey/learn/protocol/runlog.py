"""A comparison's state on disk: its settings (``compare.json``) and every run's record (``runs.jsonl``).

Each classifier run's record is appended to ``REPORT/runs.jsonl`` as it finishes; running the same
comparison into the same folder again reuses those runs and finishes the rest, and a finished
comparison run again with other ``OPTIONAL_RUNS`` (more k, say) is extended. Both files are read
through checked readers: a damaged one ends in one line naming the file and the field.

Reuse checks what it reuses: ``compare.json`` records the data's fingerprints and each pretext
run's checkpoint SHA-256, and every record of ``runs.jsonl`` those it was trained from
(``FINGERPRINTS``); data regenerated or a pretext run retrained since is refused, with the reason.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import IO, Any

from airhockey.errors import UserError
from airhockey.jsonio import json_safe, write_json
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.results import RESULTS_FILE, Results, read_results
from airhockey.records import read_json_file

RUN_LOG = "runs.jsonl"
"""In the report folder: each run's record, one JSON line each, written as the run finishes."""
SETTINGS_FILE = "compare.json"
"""In the report folder: the comparison's settings, to check that a re-run continues the same one."""
OPTIONAL_RUNS = ("frames_k", "frames_k_budget", "after_hit_effect")
"""``CompareConfig`` fields that only add or remove groups of runs: a comparison re-run with other
values of them reuses the runs it already has (each run's record says its k and hit setting)."""
SUMMARY_ONLY = ("convergence_accuracy",)
"""``CompareConfig`` fields that change only how the runs are summarised, never a run."""
LEGACY_VALUES = {"practitioner": False, "scratch_per_backbone": False}
"""What a ``CompareConfig`` field added later was, in effect, in settings written before it (a
field missing there and not listed here was, in effect, at its default)."""
KEY_FIELDS = {
    "arm": str,
    "labelled_episodes": int,
    "include_after_hit": bool,
    "repeat": int,
    "context_frames": int,
}
"""The fields of a run's record that identify it (with its search candidate, "" for none)."""

FINGERPRINTS = ("data_fingerprint", "pretext_sha256")
"""The fields of a run's record that say what it was trained from: the data's fingerprint and the
checkpoint SHA-256 of the pretext run it loaded (None for scratch)."""

Key = tuple[str, int, bool, int, int, str]
Done = dict[Key, dict[str, Any]]
"""The runs finished so far, by ``run_key``."""


def run_key(record: dict[str, Any]) -> Key:
    """What identifies a run of a comparison: arm, budget, hit setting, repeat, k, search candidate."""
    return (
        record["arm"],
        record["labelled_episodes"],
        record["include_after_hit"],
        record["repeat"],
        record["context_frames"],
        record.get("search", ""),
    )


def comparable(settings: dict[str, Any], source: str | Path = SETTINGS_FILE) -> dict[str, Any]:
    """Settings (``compare.json`` or a benchmark's) without the fields of ``OPTIONAL_RUNS``, and each
    arm reduced to its name, kind, method and pretext runs (folder and step): a run's method config
    and metrics as recorded may gain fields with later versions without it being another run.

    Raises:
        UserError: for settings without the fields read here, naming ``source``.
    """
    field = "config"
    try:
        stored = _with_missing_fields(settings["config"], _defaults())
        config = {k: v for k, v in stored.items() if k not in OPTIONAL_RUNS + SUMMARY_ONLY}
        out = {**settings, "config": config}
        if "arms" in settings:
            field = "arms"
            out["arms"] = [
                {
                    "name": arm["name"],
                    "kind": arm["kind"],
                    "method": arm["method"],
                    "pretext_runs": [
                        (run["path"], run["step"], run.get("sha256")) for run in arm["pretext_runs"]
                    ],
                }
                for arm in settings["arms"]
            ]
    except (KeyError, TypeError, AttributeError):
        raise UserError(f"{source}: field {field!r} is missing or damaged: choose another --out") from None
    return out


def stored_config(stored: dict[str, Any]) -> dict[str, Any]:
    """A ``CompareConfig`` as ``compare.json`` stored it, each field added since at the value it had
    in effect (``LEGACY_VALUES``, else its default): plain data for ``config.from_dict``."""
    return _with_missing_fields(stored, _defaults())


def _defaults() -> dict[str, Any]:
    """A default ``CompareConfig`` as ``compare.json`` writes it, with ``LEGACY_VALUES``."""
    return {**json.loads(json.dumps(json_safe(dataclasses.asdict(CompareConfig())))), **LEGACY_VALUES}


def _with_missing_fields(stored: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """``stored`` with each field it lacks (in nested settings too) at its value in ``defaults``."""
    out = dict(stored)
    for name, value in defaults.items():
        if name not in out:
            out[name] = value
        elif isinstance(value, dict) and isinstance(out[name], dict):
            out[name] = _with_missing_fields(out[name], value)
    return out


def optional_runs(config: CompareConfig) -> dict[str, Any]:
    """The values of ``OPTIONAL_RUNS`` in ``config``, as ``results.json`` records them."""
    return json.loads(json.dumps({name: getattr(config, name) for name in OPTIONAL_RUNS}))


def finished_results(out: str | Path, config: CompareConfig) -> Results | None:
    """``out/results.json`` when it holds a finished comparison with ``config``'s ``OPTIONAL_RUNS``
    (its other settings are checked when a comparison is run there), else None: a report made
    with other k or hit settings, or by a version that did not record them, is to be extended by
    running the comparison again, which reuses its runs.

    Raises:
        UserError: for a results.json that cannot be read (``results.read_results``).
    """
    path = Path(out) / RESULTS_FILE
    if not path.is_file():
        return None
    results = read_results(path)
    return results if results.settings.optional_runs == optional_runs(config) else None


def read_done(out: Path, settings: dict[str, Any], config: CompareConfig) -> Done:
    """The runs already recorded in ``out`` by a comparison with the same settings (but perhaps other
    ``OPTIONAL_RUNS``: a finished comparison is extended), by their key.

    Raises:
        UserError: when ``out`` holds this very comparison finished, or one with other settings,
            or a damaged ``compare.json`` or ``runs.jsonl``.
    """
    if finished_results(out, config) is not None:
        raise UserError(f"{str(out)!r} already holds results.json of this comparison: choose another --out")
    stored = out / SETTINGS_FILE
    if not stored.is_file():
        if (out / RESULTS_FILE).exists():
            raise UserError(f"{str(out)!r} holds results.json but no {SETTINGS_FILE}: choose another --out")
        return {}
    saved = read_json_file(stored)
    if not isinstance(saved, dict):
        raise UserError(f"{stored} is not a comparison's settings (not a JSON object): choose another --out")
    before, now = comparable(saved, stored), comparable(json.loads(json.dumps(json_safe(settings))))
    if before != now:
        raise UserError(f"{str(out)!r} holds a comparison {_difference(before, now)}: choose another --out")
    done = read_run_log(out / RUN_LOG)
    check_fingerprints(done, settings, out / RUN_LOG)
    return done


def _difference(before: dict[str, Any], now: dict[str, Any]) -> str:
    """What differs between two ``comparable`` settings, in words."""
    for field, what in (("data_fingerprint", "data"), ("test_data_fingerprint", "test data")):
        if before.get(field) != now.get(field):
            return f"of other {what} ({what} regenerated since, or fingerprint not recorded)"
    if len(before.get("arms", [])) == len(now.get("arms", [])):
        for old, new in zip(before.get("arms", []), now.get("arms", []), strict=True):
            for a, b in zip(old["pretext_runs"], new["pretext_runs"], strict=False):
                if a != b:
                    return f"whose pretext run {b[0]!r} (arm {new['name']!r}) was retrained since"
    return "with other settings"


def check_fingerprints(done: Done, settings: dict[str, Any], path: Path) -> None:
    """Refuses records of runs trained from other data or another pretext checkpoint than
    ``settings`` (the comparison's, as ``compare.json`` records them) name.

    Raises:
        UserError: naming the file, the run and what differs.
    """
    hashes = {
        arm["name"]: [run.get("sha256") for run in arm["pretext_runs"]] or [None] for arm in settings["arms"]
    }
    for key, record in done.items():
        arm, budget, _, repeat = key[:4]
        which = f"{path}: the run of arm {arm!r}, budget {budget}, draw {repeat + 1}"
        if "data_fingerprint" in record and record["data_fingerprint"] != settings.get("data_fingerprint"):
            raise UserError(f"{which} was trained on other data (regenerated since): choose another --out")
        runs = hashes.get(arm, [])
        index = record.get("pretext_run", 0)
        if "pretext_sha256" in record and (
            not isinstance(index, int)
            or not 0 <= index < len(runs)
            or record["pretext_sha256"] != runs[index]
        ):
            raise UserError(
                f"{which} loaded another pretext checkpoint (retrained since): choose another --out"
            )


def read_run_log(path: Path) -> Done:
    """The records in the run log ``path`` by their key (none for a missing file); a line that is not
    JSON (the one a crash cut short) is skipped, so that its run is run again.

    Raises:
        UserError: for a record without the fields that identify it, naming the file, line and field.
    """
    done: Done = {}
    if not path.is_file():
        return done
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(record, dict):
            raise UserError(f"{path}, line {number}: not a run's record: choose another --out")
        for name, kind in KEY_FIELDS.items():
            value = record.get(name)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise UserError(f"{path}, line {number}: field {name!r} is missing or damaged")
        if not isinstance(record.get("search", ""), str):
            raise UserError(f"{path}, line {number}: field 'search' is damaged")
        done[run_key(record)] = record
    return done


def write_settings(out: Path, settings: dict[str, Any]) -> None:
    """Writes the comparison's settings to ``out/compare.json``."""
    write_json(out / SETTINGS_FILE, settings)


def append_run(log: IO[str], record: dict[str, Any]) -> None:
    """Appends one run's record to the open run log, flushed so that a crash keeps it."""
    log.write(json.dumps(json_safe(record)) + "\n")
    log.flush()


def restore_nan(record: dict[str, Any]) -> dict[str, Any]:
    """A record as read back from JSON, with null accuracies as NaN again (JSON has no NaN)."""

    def fix(value: Any) -> Any:
        if value is None:
            return math.nan
        if isinstance(value, list):
            return [fix(v) for v in value]
        return value

    record = json.loads(json.dumps(json_safe(record)))
    restored = {k: fix(v) if k.startswith(("accuracy", "by_")) else v for k, v in record.items()}
    restored["history"] = [{**h, "val_accuracy": fix(h["val_accuracy"])} for h in record["history"]]
    return restored
