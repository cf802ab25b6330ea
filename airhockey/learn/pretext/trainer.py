"""One training loop for every pretext method (``learn.methods``), and the run folder it writes.

``train_pretext(data, out, method, config)`` draws the method's training and validation samples
from the train and val episodes of a dataset's split, fits the method's model to its loss with
AdamW, validates after every epoch (and when a budget runs out mid-epoch), and writes:

    RUN/config.json    the method, its config, the encoder's config, the trainer's settings, the
                       data (path, fingerprint, split) and the command
    RUN/last.pt        the latest state, written after every validation (``resume=True`` continues it)
    RUN/best.pt        the model of the best validation so far by the method's selection metric
    RUN/log.csv        one row per validation
    RUN/metrics.json   the best validation's metrics, the baselines, and how the run ended
    RUN/tb/            TensorBoard event files (with the ``tensorboard`` extra): ``train/loss`` and
                       ``train/lr`` per step; ``validation/*`` and ``baselines/*`` per validation,
                       and for predictive methods ``predictions`` (truth above one-step predictions)

A validation's log row is committed with its checkpoint: ``last.pt`` holds every row so far, and
``log.csv``, appended after it, is rewritten from it on resume, so that a crash between the two
loses no row. A resumed run is checked against what it continues: its own method and settings
(``RESUMABLE`` aside) and the same data (fingerprint and split). A loss or selection metric that
is no longer a number stops training at once (``guards.check_finite``); the run then has no
``metrics.json``.

The budget is a number of optimiser steps (``steps``: reproducible, what comparisons use), of
FLOPs (``flops``: converted once, as the run starts or resumes, into the steps it buys,
``pretext.flops.budget_steps``), epochs, or wall-clock minutes, whichever ends first; ``patience``
stops a run that no longer improves. ``learn.run.PretextRun`` opens a finished run for the later stages.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler
from tqdm import tqdm

from airhockey.errors import UserError
from airhockey.generate.shards import open_shards
from airhockey.jsonio import write_json
from airhockey.learn.config import PretextConfig
from airhockey.learn.data import split_episodes
from airhockey.learn.device import Precision, check_device
from airhockey.learn.methods import get_method
from airhockey.learn.methods.base import PretextMethod, to_device
from airhockey.learn.nn.encoder import VideoEncoder
from airhockey.learn.pretext.checkpoint import BEST, KIND_PRETEXT, LAST, load_checkpoint, save_checkpoint
from airhockey.learn.pretext.flops import budget_steps, loader_step_flops
from airhockey.learn.pretext.guards import (
    check_finite,
    check_out_folder,
    check_resume,
    check_resume_data,
    episodes_fingerprint,
    training_lock,
)
from airhockey.learn.pretext.previews import prediction_image
from airhockey.tblog import TB_DIR, TBLog, open_log
from airhockey.writing import atomic_file, open_append

LOG_FIELDS = ("epoch", "batches", "step", "train_loss", "elapsed_s")
"""The trainer's own columns of ``log.csv``; the method's selection and log metrics follow."""
STOP_REASONS = {
    "epochs": "the epoch budget ran out",
    "steps": "the step budget ran out",
    "flops": "the FLOPs budget ran out",
    "time": "the time budget ran out",
    "early_stopping": "no better validation for `patience` validations in a row (early stopping)",
}
"""Why a run stopped (``metrics.json`` ``stopped_by``), in words for the console."""
RUN_FILES = (LAST, BEST, "log.csv", "metrics.json", "config.json")
"""The files of a run folder: any of them marks the folder as holding a run."""
"""What a resumed run's data must share with the data it was trained on."""


class _EpochOrder(Sampler[int]):
    """The shuffled sample order of one epoch, a pure function of (seed, epoch), from position ``start``."""

    def __init__(self, n: int, seed: int, epoch: int, start: int) -> None:
        self.order = np.random.default_rng([seed, epoch]).permutation(n)[start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def sample_loader(
    dataset: Dataset,
    config: PretextConfig,
    device: torch.device,
    epoch: int | None = None,
    start_batch: int = 0,
) -> DataLoader:
    """The DataLoader of a training epoch (shuffled by ``(seed, epoch)``, from ``start_batch`` on) or,
    with ``epoch=None``, of validation (in order)."""
    order = (
        None
        if epoch is None
        else _EpochOrder(len(dataset), config.seed, epoch, start_batch * config.batch_size)  # type: ignore[arg-type]
    )
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )


def _log_fields(method: PretextMethod[Any]) -> tuple[str, ...]:
    return LOG_FIELDS + tuple(dict.fromkeys((method.selection_metric, *method.log_metrics)))


def _better(method: PretextMethod[Any], value: float, best: float | None) -> bool:
    if math.isnan(value):
        return False
    if best is None:
        return True
    return value < best if method.selection_mode == "min" else value > best


def dataset_samples(
    path: str | Path, method: PretextMethod[Any], config: PretextConfig
) -> tuple[Dataset, Dataset, PretextMethod[Any], dict[str, Any]]:
    """The method's training and validation samples from a generated dataset, the method set to the
    frames' size, and what ``config.json`` records of the data (path, fingerprint, split).

    Raises:
        UserError: a missing or unreadable dataset, or one too small for the method's samples.
    """
    episodes = open_shards(path)
    frame_size = tuple(int(n) for n in episodes.frames(0, 0, 1).shape[1:3])
    try:
        method = method.with_image_size(frame_size)  # type: ignore[arg-type]
    except ValueError as err:
        raise UserError(
            f"method {method.name!r} cannot read the {frame_size} frames of {str(path)!r}: {err}"
        ) from None
    split = split_episodes(episodes.table()["label"], seed=config.split_seed)
    train_set = method.samples(episodes, split.train, config.seed, training=True)
    val_set = method.samples(episodes, split.val, config.seed, training=False)
    if len(train_set) == 0 or len(val_set) == 0:  # type: ignore[arg-type]
        raise UserError(
            f"{str(path)!r} gives {len(train_set)} training and {len(val_set)} validation samples for "  # type: ignore[arg-type]
            f"method {method.name!r}: generate more (or longer) episodes"
        )
    info = {
        "path": str(path),
        "fingerprint": episodes_fingerprint(episodes),
        "split_seed": config.split_seed,
        **{f"{part}_episodes": getattr(split, part).tolist() for part in ("train", "val", "test")},
    }
    return train_set, val_set, method, info


def freeze_encoders(model: torch.nn.Module) -> None:
    """Stops gradients to every ``VideoEncoder`` inside ``model`` (its ``encoder`` and any other,
    such as Skip-Clip's target encoder)."""
    for module in model.modules():
        if isinstance(module, VideoEncoder):
            module.requires_grad_(False)


def _open_run(
    out: Path,
    method: PretextMethod[Any] | None,
    config: PretextConfig,
    resume: bool,
    data: str | Path | None,
) -> tuple[PretextMethod[Any], dict[str, Any] | None]:
    """The method to train and, when resuming, the run's ``last.pt`` (None for a new run)."""
    check_out_folder(out, data)
    checkpoint = None
    held = [name for name in RUN_FILES if (out / name).exists()]
    if resume:
        if not (out / LAST).is_file():
            what = f"a run without {LAST} ({', '.join(held)})" if held else "no run"
            raise UserError(
                f"{str(out)!r} holds {what} to resume: start a new run in another --out"
                + ("" if held else ", or leave out --resume")
            )
        checkpoint = load_checkpoint(out, KIND_PRETEXT, name=LAST)
        check_resume(checkpoint, config, method)
        method = get_method(checkpoint["method"]).from_dict(checkpoint["method_config"])
    elif held:
        hint = "pass --resume to continue it, or" if LAST in held else f"it has no {LAST} to resume;"
        raise UserError(f"{str(out)!r} already holds a run ({', '.join(held)}): {hint} choose another --out")
    if method is None:
        raise UserError("give a method to train (--method NAME)")
    return method, checkpoint


def _training_samples(
    data: str | Path | tuple[Dataset, Dataset],
    method: PretextMethod[Any],
    config: PretextConfig,
    resume: bool,
) -> tuple[Dataset, Dataset, PretextMethod[Any], dict[str, Any]]:
    """``dataset_samples`` of a generated dataset, or the given pair of sample sets; the method set
    to the frames' size (a resumed run keeps its own), and what ``config.json`` records of the data."""
    if isinstance(data, tuple):
        (train_set, val_set), data_info = data, {}
    else:
        train_set, val_set, fitted, data_info = dataset_samples(data, method, config)
        if not resume:
            method = fitted
    first = train_set[0]
    if isinstance(first, torch.Tensor) and first.dim() >= 3 and tuple(first.shape[-2:]) != method.image_size:
        raise UserError(
            f"the samples' frames are {tuple(first.shape[-2:])}, the method's image_size {method.image_size}"
        )
    return train_set, val_set, method, data_info


class _Training:
    """The state of one training session: the method's model and its optimiser on the device, the
    run folder, and where the run stands (``progress``, stored in ``last.pt``)."""

    def __init__(
        self,
        method: PretextMethod[Any],
        config: PretextConfig,
        device: torch.device,
        out: Path,
        data_info: dict[str, Any],
    ) -> None:
        self.method, self.config, self.device, self.out = method, config, device, out
        self.data_info = data_info
        """What ``config.json`` records of the data, also stored in ``last.pt`` to check a resume."""
        self.rows: list[dict[str, Any]] = []
        """The rows of ``log.csv`` so far, stored in ``last.pt`` with the state they describe."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            self.model = method.build_model()
        self.model.to(device).train()
        if config.frozen_encoder:
            freeze_encoders(self.model)
        self.trained = [q for q in self.model.parameters() if q.requires_grad]
        if not self.trained:
            raise UserError(
                f"method {method.name!r} has nothing to train besides its encoder: leave out --frozen-encoder"
            )
        self.optimizer = torch.optim.AdamW(self.trained, lr=config.lr, weight_decay=config.weight_decay)
        self.precision = Precision(config.precision, device)
        """Autocast around the model's forward passes, and the loss scaling of fp16."""
        self.fields = _log_fields(method)
        """The columns of ``log.csv``."""
        self.tb = TBLog(None)
        """The TensorBoard log, opened with ``log.csv`` (``start_log``)."""
        self.progress: dict[str, Any] = {
            "epoch": 0,  # epochs completed
            "batch": 0,  # batches done of the current epoch
            "step": 0,  # optimiser steps
            "best": None,  # the best validation's selection metric
            "best_epoch": -1,
            "stale": 0,  # validations in a row without improvement
        }
        self.flops_per_step, self.step_budget, self.budget = 0, config.steps, "steps"
        """A step's FLOPs, the most optimiser steps and the budget that sets them (``set_budget``)."""

    def set_budget(self, train_set: Dataset) -> None:
        """Counts a training step's FLOPs on the first training batch; given a FLOPs budget, the
        steps it buys become the step budget where fewer than ``steps`` (UserError below one step)."""
        loader = sample_loader(train_set, self.config, self.device, epoch=0)
        self.flops_per_step = loader_step_flops(self.method, self.model, loader, self.device)
        if self.config.flops is not None:
            what = f"{self.method.name} at batch size {self.config.batch_size}"
            steps = budget_steps(self.config.flops, self.flops_per_step, what)
            if self.step_budget is None or steps < self.step_budget:
                self.step_budget, self.budget = steps, "flops"

    def resume(self, checkpoint: dict[str, Any]) -> None:
        """Continues from ``last.pt``: the model, the optimiser, the progress and the log, whose
        ``log.csv`` is rewritten to the rows of that state (a row the crash lost is restored, a
        later one dropped)."""
        self.model.load_state_dict(checkpoint["model"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if "scaler" in checkpoint:
            self.precision.scaler.load_state_dict(checkpoint["scaler"])
        self.progress = checkpoint["progress"]
        rows = checkpoint.get("log")
        if rows is None:  # a checkpoint from before the log was stored in it: the rows up to it
            with open(self.out / "log.csv", newline="") as f:
                rows = [r for r in csv.DictReader(f) if int(r["step"]) <= self.progress["step"]]
        self.rows = list(rows)
        self.start_log()

    def start_log(self) -> None:
        """Creates the run folder and writes ``log.csv``: the header and the rows so far."""
        self.out.mkdir(parents=True, exist_ok=True)
        with atomic_file(self.out / "log.csv", "w") as f:
            writer = csv.DictWriter(f, self.fields)
            writer.writeheader()
            writer.writerows(self.rows)
        self.tb = open_log(self.out / TB_DIR)

    def write_config(self, command: str) -> None:
        """Writes ``config.json``: the method, its config, the encoder's, the trainer's settings,
        the command and the data."""
        write_json(
            self.out / "config.json",
            {
                "method": self.method.name,
                "method_config": self.method.config_dict(),
                "encoder": self.method.encoder_config(),
                "training": dataclasses.asdict(self.config),
                "command": command,
                "data": self.data_info,
            },
        )

    def train_epoch(
        self, train_set: Dataset, n_batches: int, deadline: float, progress: bool
    ) -> tuple[float, str | None]:
        """Trains on the rest of the current epoch, or until a budget runs out.

        Returns:
            The mean training loss of the batches trained, and the budget that ran out mid-epoch
            (``"steps"``, ``"flops"`` or ``"time"``) or None.
        """
        config, p, budget = self.config, self.progress, self.step_budget
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(p["epoch"])
        total = n_batches
        if budget is not None:  # the bar ends where the step budget does
            total = min(n_batches, p["batch"] + budget - p["step"])
        bar = tqdm(
            sample_loader(train_set, config, self.device, epoch=p["epoch"], start_batch=p["batch"]),
            total=total,
            initial=p["batch"],
            desc=f"epoch {p['epoch'] + 1}" + (f"/{config.epochs}" if config.epochs else ""),
            disable=not progress,
            leave=False,
        )
        loss_sum, loss_n, budget_out = 0.0, 0, None
        for batch in bar:
            loss = self.method.loss(self.model, to_device(batch, self.device))
            check_finite(
                loss.item(),
                "training loss",
                f"step {p['step'] + 1} (epoch {p['epoch'] + 1})",
                f"lower --lr (now {config.lr:g})",
            )
            self.precision.step(loss, self.optimizer, (self.trained, config.grad_clip))
            p["batch"] += 1
            p["step"] += 1
            loss_sum, loss_n = loss_sum + loss.item(), loss_n + 1
            self.tb.scalar("train/loss", loss.item(), p["step"])
            self.tb.scalar("train/lr", self.optimizer.param_groups[0]["lr"], p["step"])
            bar.set_postfix(loss=f"{loss_sum / loss_n:.5f}")
            if budget is not None and p["step"] >= budget:
                budget_out = self.budget
            elif time.monotonic() >= deadline:
                budget_out = "time"
            if budget_out:
                break
        bar.total = bar.n  # the steps actually done, when a budget ended the epoch early
        bar.close()
        return loss_sum / max(loss_n, 1), budget_out

    def validate(self, val_loader: DataLoader) -> dict[str, float]:
        """The method's validation metrics of the model, in eval mode."""
        self.model.eval()
        with torch.no_grad(), self.precision.autocast_calls(self.model):
            val = self.method.evaluate(self.model, val_loader, self.device)
            image = None
            if self.tb.enabled:
                image = prediction_image(self.method, self.model, val_loader.dataset[0], self.device)
            if image is not None:
                self.tb.image("predictions", image, self.progress["step"])
        self.model.train()
        return val

    def save_validation(
        self,
        val: dict[str, float],
        baselines: dict[str, float],
        train_loss: float,
        n_batches: int,
        elapsed_s: float,
    ) -> dict[str, Any]:
        """Records a validation: moves on to the next epoch at an epoch's end, keeps the best
        model, writes ``best.pt`` (when better), ``last.pt`` and a row of ``log.csv``; the row."""
        method, p = self.method, self.progress
        row = {
            "epoch": p["epoch"] + 1,
            "batches": p["batch"],
            "step": p["step"],
            "train_loss": train_loss,
            "elapsed_s": elapsed_s,
            **{k: v for k, v in {**val, **baselines}.items() if k in self.fields},
        }
        if p["batch"] >= n_batches:
            p["epoch"], p["batch"] = p["epoch"] + 1, 0
        improved = _better(method, val[method.selection_metric], p["best"])
        if improved:
            p["best"], p["best_epoch"], p["stale"] = val[method.selection_metric], row["epoch"], 0
        else:
            p["stale"] += 1
        payload = {
            "kind": KIND_PRETEXT,
            "method": method.name,
            "method_config": method.config_dict(),
            "encoder_config": method.encoder_config(),
            "train_config": dataclasses.asdict(self.config),
            "model": self.model.state_dict(),
            "encoder": self.model.encoder.state_dict(),
            "validation": val,
            "baselines": baselines,
            "step": p["step"],
        }
        self.rows.append(row)
        if improved:
            save_checkpoint(self.out / BEST, payload)
        last = {"optimizer": self.optimizer.state_dict(), "progress": dict(p), "log": self.rows}
        if self.precision.scaler.is_enabled():
            last["scaler"] = self.precision.scaler.state_dict()
        save_checkpoint(self.out / LAST, {**payload, **last, "data": self.data_info})
        with open_append(self.out / "log.csv") as f:
            csv.DictWriter(f, self.fields).writerow(row)
        self.tb.scalars(val, p["step"], "validation/")
        self.tb.scalars(baselines, p["step"], "baselines/")
        self.tb.flush()
        return row

    def report(self, row: dict[str, Any]) -> None:
        """A console line of a validation."""
        shown = ", ".join(
            f"{k} {row[k]:.6g}" for k in self.fields[len(LOG_FIELDS) :] if isinstance(row.get(k), float)
        )
        tqdm.write(f"epoch {row['epoch']} (step {row['step']}): train loss {row['train_loss']:.5f}, {shown}")

    def finish(
        self,
        baselines: dict[str, float],
        val_samples: int,
        stop_reason: str,
        seconds: float,
    ) -> dict[str, Any]:
        """Writes ``metrics.json``: the best validation's metrics, the baselines, and how the run
        ended (``stop_reason``, after ``seconds`` of this session); returns what it holds.

        ``best_epoch`` is the epoch (1-based) whose validation was best, ``epochs_done`` the epochs
        begun, a last one that a budget ended part-way counted (so ``best_epoch <= epochs_done``),
        ``steps`` the optimiser steps done and ``best_step`` those of the best validation.
        ``flops_per_step`` is one training step's FLOPs on the first training batch
        (``pretext.flops``) and ``pretext_flops`` those of all ``steps``; with a FLOPs budget,
        ``flops_budget_steps`` is the steps it bought.
        """
        method, p = self.method, self.progress
        best = load_checkpoint(self.out, KIND_PRETEXT)
        metrics = {
            "method": method.name,
            **best["validation"],
            **baselines,
            "val_samples": val_samples,
            "best_epoch": p["best_epoch"],
            "best_step": best["step"],
            "epochs_done": p["epoch"] + (1 if p["batch"] else 0),
            "steps": p["step"],
            "stopped_by": stop_reason,
            "train_seconds_this_session": seconds,
            "device": str(self.device),
            "threads": torch.get_num_threads(),
            "parameters": sum(x.numel() for x in self.model.parameters()),
        }
        metrics["flops_per_step"] = float(self.flops_per_step)
        metrics["pretext_flops"] = float(self.flops_per_step) * p["step"]
        if self.config.flops is not None:
            metrics["flops_budget_steps"] = budget_steps(self.config.flops, self.flops_per_step, method.name)
        metrics.update(method.derived_metrics(metrics))
        write_json(self.out / "metrics.json", metrics)
        self.tb.close()
        return metrics


def train_pretext(
    data: str | Path | tuple[Dataset, Dataset],
    out: str | Path,
    method: PretextMethod[Any] | None,
    config: PretextConfig,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Trains a pretext method and writes the run folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``, or a pair
            (training samples, validation samples) of datasets in the method's sample format. From a
            generated dataset, the samples come from the train and val episodes of
            ``split_episodes(labels, seed=config.split_seed)``, the split the classifiers use, so
            that their test episodes stay unseen; the method is set to the frames' size.
        out: the run folder; it must not hold a run unless ``resume``.
        method: the method with its config; None when resuming (the run's own is used).
        config: the trainer's settings.
        resume: continue the run in ``out`` from its ``last.pt``, exactly where it stopped.
        progress: show a progress bar and a line per validation.
        command: the command line that started the run, recorded in ``config.json``.

    Returns:
        What ``metrics.json`` holds.

    Raises:
        UserError: an existing run without ``resume``, a missing one with it, changed settings or
            other data on resume, ``out`` in the dataset's folder, no method to start a run with, a
            dataset too small, an unavailable device, a FLOPs budget below one step, or a loss or
            selection metric that is no longer a number (a diverged run: the message names the step
            and the learning rate).
    """
    out = Path(out)
    device = check_device(config.device, config.precision)
    with training_lock(out, None if isinstance(data, tuple) else data):
        return _train_locked(data, out, method, config, device, resume, progress, command)


def _train_locked(
    data: str | Path | tuple[Dataset, Dataset],
    out: Path,
    method: PretextMethod[Any] | None,
    config: PretextConfig,
    device: torch.device,
    resume: bool,
    progress: bool,
    command: str,
) -> dict[str, Any]:
    """``train_pretext`` with the run folder locked."""
    method, checkpoint = _open_run(out, method, config, resume, None if isinstance(data, tuple) else data)
    train_set, val_set, method, data_info = _training_samples(data, method, config, resume)
    if checkpoint is not None:
        check_resume_data(checkpoint, data_info, out)
    training = _Training(method, config, device, out, data_info)
    training.set_budget(train_set)  # refuses a FLOPs budget below one step before anything is written
    if checkpoint is not None:
        training.resume(checkpoint)
    else:
        training.start_log()
    training.write_config(command)
    val_loader = sample_loader(val_set, config, device)
    if checkpoint is not None:
        baselines = checkpoint["baselines"]
    else:
        with torch.no_grad():
            baselines = method.baselines(train_set, val_loader, device)

    p = training.progress
    n_batches = math.ceil(len(train_set) / config.batch_size)  # type: ignore[arg-type]
    start = time.monotonic()
    deadline = math.inf if config.minutes is None else start + 60.0 * config.minutes
    stop_reason = "epochs"
    while config.epochs is None or p["epoch"] < config.epochs:
        if training.step_budget is not None and p["step"] >= training.step_budget:
            stop_reason = training.budget
            break
        with training.precision.autocast_calls(training.model):
            train_loss, budget_out = training.train_epoch(train_set, n_batches, deadline, progress)
        val = training.validate(val_loader)
        check_finite(
            val[method.selection_metric],
            f"validation {method.selection_metric}",
            f"step {p['step']} (epoch {p['epoch'] + 1})",
            f"lower --lr (now {config.lr:g})",
        )
        elapsed_s = round(time.monotonic() - start, 1)
        row = training.save_validation(val, baselines, train_loss, n_batches, elapsed_s)
        if progress:
            training.report(row)
        if budget_out:
            stop_reason = budget_out
            break
        if p["stale"] >= config.patience:
            stop_reason = "early_stopping"
            break

    seconds = round(time.monotonic() - start, 1)
    return training.finish(baselines, len(val_set), stop_reason, seconds)  # type: ignore[arg-type]
