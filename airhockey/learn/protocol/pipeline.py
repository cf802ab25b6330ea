"""The whole experiment with one call: generate a dataset -> train the pretext model -> compare the arms.

``run_pipeline(out, QUICK)`` (``airhockey pipeline OUT --quick``) and ``run_pipeline(out, FULL)``
write three stage folders and a record of the run:

    OUT/data/           the generated dataset (``airhockey generate``)
    OUT/pretext/        the pretext run (``airhockey learn pretext``)
    OUT/report/         the comparison (``airhockey learn compare``): results.json, plots, report.md
    OUT/pipeline.json   the settings of every stage, the command, and each stage's seconds

A stage whose output is already complete is reused, and an interrupted dataset or pretext run is
resumed, so running the same command again finishes an interrupted pipeline.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig
from airhockey.jsonio import write_json
from airhockey.learn.config import (
    ClassifyConfig,
    CompareConfig,
    PretextConfig,
    check_budgets_possible,
    to_dict,
)
from airhockey.learn.methods import DEFAULT_METHOD
from airhockey.learn.protocol.results import Results
from airhockey.records import read_record


@dataclass(frozen=True)
class MethodChoice:
    """A pretext method by registry name, with ``--set``-style settings over its defaults."""

    name: str = DEFAULT_METHOD
    """The registry name (``airhockey learn methods``)."""
    settings: tuple[str, ...] = ()
    """``key=value`` settings of the method's config (``learn.config.apply_settings``)."""

    def build(self) -> Any:
        """The ``PretextMethod`` instance (imports the method, and torch)."""
        from airhockey.learn.config import apply_settings
        from airhockey.learn.methods import get_method

        method = get_method(self.name)
        return method(apply_settings(method.config_class(), self.settings))


@dataclass(frozen=True)
class PipelineConfig:
    """The settings of the three stages."""

    data: GenerateConfig
    """What to generate."""
    pretext: PretextConfig
    """How to train the pretext model."""
    method: MethodChoice
    """The pretext method and its settings (the frame size is taken from the data)."""
    compare: CompareConfig
    """The comparison's protocol and schedule."""

    def with_overrides(
        self, *, policy: str | None = None, seed: int | None = None, device: str | None = None
    ):
        """A copy with another data policy, seed (data, pretext and comparison) or torch device."""
        data, pretext, compare = self.data, self.pretext, self.compare
        if policy is not None:
            data = dataclasses.replace(data, policy=policy)
        if seed is not None:
            data = dataclasses.replace(data, seed=seed)
            pretext = dataclasses.replace(pretext, seed=seed)
            compare = dataclasses.replace(compare, seed=seed)
        if device is not None:
            pretext = dataclasses.replace(pretext, device=device)
            compare = dataclasses.replace(
                compare, training=dataclasses.replace(compare.training, device=device)
            )
        return PipelineConfig(data, pretext, self.method, compare)

    def to_dict(self) -> dict[str, Any]:
        """The settings as plain data, for ``pipeline.json``."""
        return {
            "data": self.data.to_dict(),
            "pretext": to_dict(self.pretext),
            "method": to_dict(self.method),
            "compare": to_dict(self.compare),
        }


FULL = PipelineConfig(
    data=GenerateConfig(episodes=300),
    pretext=PretextConfig(epochs=None, minutes=8.0),
    method=MethodChoice(),
    compare=CompareConfig(training=ClassifyConfig(frame_stride=2)),
)
"""The run ``docs/results.md`` reports: 300 episodes of 64x64 frames, 8 minutes of pretext training,
budgets 4, 16, 64 and all 240 training episodes, 3 repeats."""

QUICK = PipelineConfig(
    data=GenerateConfig(episodes=60, width=32, height=32),
    pretext=PretextConfig(epochs=None, minutes=5.0),
    method=MethodChoice(),
    compare=CompareConfig(
        budgets=(4, 16, None),
        training=ClassifyConfig(epochs=6, freeze_epochs=2, min_epoch_frames=512, frame_stride=2),
    ),
)
"""Every output in minutes on two CPU cores: 60 episodes of 32x32 frames, 5 minutes of pretext
training, budgets 4, 16 and all 48 training episodes, 3 repeats, short schedules. Its numbers show
that the pipeline works, not what pretraining does."""


@dataclass(frozen=True)
class PipelineRecord:
    """``pipeline.json``: the settings, the command and each stage's wall seconds."""

    config: dict[str, Any]
    """The ``PipelineConfig`` as plain data."""
    command: str
    """The command line."""
    seconds: dict[str, float]
    """Wall seconds by stage finished."""


def check_pipeline(out: str | Path, config: PipelineConfig) -> None:
    """Everything a pipeline can check before it writes anything, so that a refused command leaves
    nothing behind (and its corrected form is not refused as "other settings"): that ``out`` can
    be written, the policy can be found and the env renders, the method and its settings fit the
    data's frame size, the devices exist, and the budgets fit the training episodes the data will have.

    Raises:
        UserError: one line naming the setting or path.
    """
    from airhockey.generate.config import check_settings
    from airhockey.generate.policy import policy_identity
    from airhockey.generate.records import LABEL_NAMES
    from airhockey.learn.device import check_device
    from airhockey.paths import check_output_dir

    out = check_output_dir(out, "pipeline folder")
    size = (config.data.height, config.data.width)
    try:
        config.method.build().with_image_size(size)
    except ValueError as err:
        raise UserError(
            f"method {config.method.name} cannot read {size[1]}x{size[0]} frames: {err}"
        ) from None
    check_device(config.pretext.device, config.pretext.precision)
    check_device(config.compare.training.device, config.compare.training.precision)
    check_budgets_possible(config.compare, config.data.episodes, len(LABEL_NAMES[config.data.labels]))
    policy_identity(config.data.policy or "")
    check_settings(config.data, out / "data")


def run_pipeline(
    out: str | Path,
    config: PipelineConfig,
    *,
    smoke_test: bool = False,
    workers: int | None = None,
    progress: bool = True,
    command: str = "",
    say: Callable[[str], None] = print,
) -> Results:
    """Generates the data, trains the pretext model and runs the comparison, into ``out``.

    Args:
        out: the pipeline folder (created, or reused to finish an interrupted run).
        config: the stages' settings, e.g. ``QUICK`` or ``FULL``.
        smoke_test: mark the report as a check of the machinery (``QUICK``): its numbers are not results.
        workers: processes generating the data (default: the available CPU cores).
        progress: show progress bars.
        command: the command line, recorded with each stage.
        say: where one line per stage goes.

    Returns:
        What ``OUT/report/results.json`` holds.

    Raises:
        UserError: anything ``check_pipeline`` refuses (before anything is written), ``out``
            holding a pipeline run with other settings, or an error of any stage.
    """
    from airhockey.generate import generate
    from airhockey.learn.pretext.run import read_metrics
    from airhockey.learn.pretext.trainer import STOP_REASONS, train_pretext
    from airhockey.learn.protocol.compare import compare_on_dataset
    from airhockey.learn.protocol.runlog import finished_results

    check_pipeline(out, config)
    out = Path(out)
    data, pretext, report = out / "data", out / "pretext", out / "report"
    record_path = out / "pipeline.json"
    settings = json.loads(json.dumps(config.to_dict()))  # tuples as JSON gives them back: lists
    stored = read_record(PipelineRecord, record_path, "pipeline record") if record_path.is_file() else None
    if stored is not None and stored.config != settings:
        raise UserError(f"{str(out)!r} holds a pipeline run with other settings: choose another OUT")
    out.mkdir(parents=True, exist_ok=True)
    seconds: dict[str, float] = {}
    record = {"config": config.to_dict(), "command": command, "seconds": seconds}
    write_json(record_path, record)

    start = time.monotonic()
    manifest = generate(config.data, data, workers=workers, resume=data.exists(), progress=progress)
    seconds["generate"] = round(time.monotonic() - start, 1)
    say(f"data: {manifest['episodes']} episodes in {data}/ ({seconds['generate']:.0f} s)")

    start = time.monotonic()
    metrics = read_metrics(pretext)
    if metrics is not None:
        say(f"pretext: reusing the finished run in {pretext}/")
    else:
        resume = (pretext / "last.pt").is_file()
        metrics = train_pretext(
            data,
            pretext,
            None if resume else config.method.build(),
            config.pretext,
            resume=resume,
            progress=progress,
            command=command,
        )
        say(f"pretext: stopped after {metrics['steps']} steps: {STOP_REASONS[metrics['stopped_by']]}")
    seconds["pretext"] = round(time.monotonic() - start, 1)
    say(f"pretext: {metrics['method']} in {pretext}/ ({seconds['pretext']:.0f} s)")

    start = time.monotonic()
    finished = finished_results(report, config.compare)
    if finished is not None:
        results = finished
        say(f"compare: reusing the finished report in {report}/")
    else:
        results = compare_on_dataset(
            data,
            ["scratch", pretext],
            report,
            config.compare,
            smoke_test=smoke_test,
            progress=progress,
            command=command,
        )
    seconds["compare"] = round(time.monotonic() - start, 1)
    say(f"compare: {report}/report.md ({seconds['compare']:.0f} s)")

    write_json(record_path, record)
    return results
