"""Training and testing one direction classifier (one arm of the comparison, Han et al. 2021,
section 4.4).

The schedule: for the first ``freeze_epochs`` epochs only the head trains (the encoder is frozen
while the head calibrates), then the encoder trains too, at its own, lower learning rate. A
pretrained arm starts from a pretext run's encoder, the scratch arm from random weights; all run
the same model and the same schedule. ``classify_on_dataset`` trains one arm and writes a
run folder:

    RUN/config.json    model and training settings, data (path, fingerprint, split, labelled
                       episodes), the pretext run and its checkpoint's SHA-256, the command
    RUN/model.pt       the classifier of the best validation epoch (``load_classifier(RUN)``), or of
                       the last epoch with ``select_best=False``
    RUN/log.csv        one row per epoch: phase, training loss, validation accuracy, seconds
    RUN/metrics.json   test accuracy, overall and by position in the episode
    RUN/tb/            TensorBoard event files of the epochs (``log_history``), with the
                       ``tensorboard`` extra

Frames in which a button is already lit (``frame_index >= hit_frame``) give the label away; they
are left out of training, validation and the headline test accuracy unless ``include_after_hit``.
Test episodes come from the split the pretext run used and are never read by either training.
"""

from __future__ import annotations

import csv
import dataclasses
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from tqdm import tqdm

from airhockey.errors import UserError
from airhockey.jsonio import write_json
from airhockey.learn.config import ClassifyConfig, EncoderConfig
from airhockey.learn.data import frames_to_tensor
from airhockey.learn.device import Precision, check_device
from airhockey.learn.downstream.classifier import (
    MODEL_FILE,
    ClassifierConfig,
    DirectionClassifier,
    EncoderSpec,
    build_classifier,
)
from airhockey.learn.downstream.labelled import ClassifierData, FrameSet, assert_disjoint
from airhockey.learn.downstream.scoring import score_predictions
from airhockey.learn.pretext.checkpoint import KIND_CLASSIFIER, save_checkpoint
from airhockey.learn.pretext.guards import check_finite, check_out_folder, data_fingerprint, file_sha256
from airhockey.learn.pretext.run import PretextRun
from airhockey.tblog import TB_DIR, open_log
from airhockey.writing import atomic_file

RUN_FILES = ("config.json", MODEL_FILE, "log.csv", "metrics.json")
"""The files of a classify run folder: any of them marks the folder as holding a run."""
HISTORY_FIELDS = (
    "epoch",
    "steps",
    "encoder_frozen",
    "train_loss",
    "train_accuracy",
    "val_accuracy",
    "elapsed_s",
)


def _batches(
    frames: FrameSet, idx: NDArray[np.int64], device: torch.device, k: int = 1
) -> tuple[torch.Tensor, torch.Tensor]:
    """The frames ``idx`` as a batch, (B, 3, H, W) for k = 1 or the k frames ending at each,
    (B, k, 3, H, W), and their labels (B,)."""
    pixels = frames.source[frames.pos[idx]] if k == 1 else frames.window(idx, k)
    x = frames_to_tensor(pixels).to(device, non_blocking=True)
    return x, torch.from_numpy(frames.label[idx]).to(device, non_blocking=True)


@torch.inference_mode()
def features_in_batches(
    fn: torch.nn.Module, frames: FrameSet, k: int = 1, batch_size: int = 256
) -> torch.Tensor:
    """``fn`` (a ``VideoEncoder`` or a ``DirectionClassifier``) applied, in eval mode, to all the
    frames (or k-frame windows) in batches; the outputs (N, ...), written into one tensor.

    With k > 1 the encoder reads each batch's windows through ``encode_windows``: a frame that
    several windows hold (consecutive frames share k - 1) goes through the per-frame stem once.
    """
    encoder = fn.encoder if isinstance(fn, DirectionClassifier) else fn
    device = next(fn.parameters()).device
    was_training = fn.training
    fn.eval()
    out = torch.empty(0)
    for i in range(0, len(frames), batch_size):
        idx = np.arange(i, min(i + batch_size, len(frames)))
        if k == 1:
            batch = fn(_batches(frames, idx, device)[0])
        else:
            positions, windows = np.unique(frames.window_positions(idx, k), return_inverse=True)
            pixels = frames_to_tensor(frames.source[positions]).to(device, non_blocking=True)
            windows_t = torch.from_numpy(windows.reshape(len(idx), k)).to(device)
            features = encoder.encode_windows(pixels, windows_t)
            batch = fn.head(features) if encoder is not fn else features
        if i == 0:
            out = torch.empty((len(frames), *batch.shape[1:]), dtype=batch.dtype, device=batch.device)
        out[i : i + len(idx)] = batch
    fn.train(was_training)
    return out


def predict(model: DirectionClassifier, frames: FrameSet, k: int = 1) -> NDArray[np.int64]:
    """The predicted class (N,) of every frame, the classifier reading the k frames ending at it."""
    if len(frames) == 0:
        return np.zeros(0, np.int64)
    return features_in_batches(model, frames, k).argmax(-1).cpu().numpy()


def fixed_subsample(frames: FrameSet, most: int | None) -> FrameSet:
    """At most ``most`` of ``frames``, evenly spaced over them in their order (episode after
    episode), the same whatever the seed; all of them for None or when they are no more."""
    if most is None or len(frames) <= most:
        return frames
    return frames.select(np.isin(np.arange(len(frames)), np.linspace(0, len(frames) - 1, most).round()))


@torch.inference_mode()
def _head_predict(model: DirectionClassifier, features: torch.Tensor) -> NDArray[np.int64]:
    """The predicted class (N,) from precomputed encoder features (N, C, h, w), head in eval mode."""
    was_training = model.head.training
    model.head.eval()
    predicted = model.head(features).argmax(-1).cpu().numpy()
    model.head.train(was_training)
    return predicted


def epoch_order(n: int, frames: int, rng: np.random.Generator) -> NDArray[np.int64]:
    """Indices of one epoch: shuffled passes over ``n`` items until at least ``frames`` are drawn."""
    passes = -(-max(frames, n) // n)
    return np.concatenate([rng.permutation(n) for _ in range(passes)])[: max(frames, n)]


def _optimizer(model: DirectionClassifier, config: ClassifyConfig) -> torch.optim.AdamW:
    """AdamW over the head (group 0) and the encoder (group 1), each at its own learning rate."""
    return torch.optim.AdamW(
        [
            {"params": model.head.parameters(), "lr": config.lr},
            {"params": model.encoder.parameters(), "lr": config.encoder_lr},
        ],
        weight_decay=config.weight_decay,
    )


def _train_epoch(
    model: DirectionClassifier,
    optimizer: torch.optim.Optimizer,
    train: FrameSet,
    order: NDArray[np.int64],
    config: ClassifyConfig,
    features: torch.Tensor | None,
    warm_up: bool,
    where: tuple[int, int],
    precision: Precision,
) -> tuple[int, float, float]:
    """One epoch over the training frames in ``order``, in batches.

    Args:
        features: the frozen encoder's features of the training frames (N, C, h, w): only the
            head trains, on them; None to train the whole model on the frames.
        warm_up: raise the encoder's learning rate linearly from 0 over the epoch's steps (the
            first epoch that trains the encoder).
        where: the epoch (1-based) and the optimiser steps before it, for the message of a
            diverged loss.
        precision: takes each optimiser step (fp16's loss scaling); forward passes run in its
            ``autocast_calls``, which the caller enters.

    Returns:
        The optimiser steps taken, the summed cross-entropy and the correct predictions.

    Raises:
        UserError: at the first loss that is not a number (``guards.check_finite``).
    """
    device = next(model.parameters()).device
    encoder_group = optimizer.param_groups[1]
    steps_per_epoch = -(-max(config.min_epoch_frames, len(train)) // config.batch_size)
    loss_sum = correct = 0.0
    steps = 0
    for step, i in enumerate(range(0, len(order), config.batch_size)):
        idx = order[i : i + config.batch_size]
        if warm_up:
            encoder_group["lr"] = config.encoder_lr * (step + 1) / steps_per_epoch
        if features is not None:
            y = torch.from_numpy(train.label[idx]).to(device)
            logits = model.head(features[torch.from_numpy(idx).to(device)])  # (B, num_classes)
        else:
            x, y = _batches(train, idx, device, config.context_frames)
            logits = model(x)  # (B, num_classes)
        loss = torch.nn.functional.cross_entropy(logits, y)
        setting = f"lower --lr (now {config.lr:g})"
        if features is None:
            setting += f" or --encoder-lr (now {config.encoder_lr:g})"
        check_finite(
            loss.item(),
            "classifier's training loss",
            f"step {where[1] + steps + 1} (epoch {where[0]})",
            setting,
        )
        precision.step(loss, optimizer)
        steps += 1
        loss_sum += loss.item() * len(y)
        correct += (logits.argmax(-1) == y).sum().item()
    return steps, loss_sum, correct


class _Validation:
    """The accuracy of a classifier on the validation frames after an epoch."""

    def __init__(self, model: DirectionClassifier, val: FrameSet, k: int) -> None:
        self.model, self.val, self.k = model, val, k
        self.frozen_features: torch.Tensor | None = None
        """The frozen encoder's features of the validation frames (N_val, C, h, w), once computed:
        they are the same every frozen epoch."""

    def accuracy(self, frozen: bool) -> float:
        """The accuracy (NaN without validation frames), from the cached features while the
        encoder is ``frozen``."""
        if not len(self.val):
            return math.nan
        if not frozen:
            return float(np.mean(predict(self.model, self.val, self.k) == self.val.label))
        if self.frozen_features is None:
            self.frozen_features = features_in_batches(self.model.encoder, self.val, self.k)
        return float(np.mean(_head_predict(self.model, self.frozen_features) == self.val.label))


def train_classifier(
    model: DirectionClassifier,
    train: FrameSet,
    val: FrameSet,
    config: ClassifyConfig,
    *,
    progress: bool = True,
    desc: str = "",
) -> list[dict[str, Any]]:
    """Trains ``model`` in place with the freeze-then-unfreeze schedule and cross-entropy.

    Args:
        model: a classifier from ``build_classifier``.
        train: the frames to learn from (already chosen: budget, stride, hit frames).
        val: frames of held-out episodes, scored after every epoch; with ``config.select_best``
            the epoch that scores best on them is the one kept.
        config: the schedule; ``seed`` fixes the frame order and dropout.
        progress: show a progress bar.
        desc: the progress bar's label.

    Returns:
        One row per epoch: ``epoch``, ``steps`` (optimiser steps so far), ``encoder_frozen``,
        ``train_loss``, ``train_accuracy`` (on
        the frames the epoch drew, in training mode), ``val_accuracy``, ``elapsed_s`` (training
        seconds so far, validation not counted). With ``config.select_best`` the model ends with
        the weights of the first epoch of highest ``val_accuracy`` (``best_epoch(history)``).

    Raises:
        UserError: no training frames, an unavailable device, or a diverged training (a loss
            that is not a number: the message names the step, the epoch and the learning rates).
    """
    if len(train) == 0:
        raise UserError("no training frames: choose more labelled episodes")
    device = check_device(config.device, config.precision)
    precision = Precision(config.precision, device)
    model.to(device).train()
    optimizer = _optimizer(model, config)
    rng = np.random.default_rng(np.random.SeedSequence(config.seed))
    history: list[dict[str, Any]] = []
    start = time.perf_counter()
    # The encoder's features of the training frames as training starts: they fit the head's
    # standardisation, and a frozen encoder gives these same features every epoch.
    with precision.autocast_calls(model):
        features = features_in_batches(model.encoder, train, config.context_frames)  # (N, C, h, w)
    if model.scaler is not None:
        model.scaler.fit(features.flatten(1))
    elapsed = time.perf_counter() - start
    validation = _Validation(model, fixed_subsample(val, config.val_max_frames), config.context_frames)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    steps = 0
    bar = tqdm(total=config.epochs, desc=desc, disable=not progress, leave=False)
    forked = torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else [])
    with forked, precision.autocast_calls(model):
        torch.manual_seed(config.seed)  # dropout
        for epoch in range(config.epochs):
            frozen = epoch < config.freeze_epochs
            # Frozen weights get no gradient, so AdamW leaves them (and their decay) alone.
            model.set_encoder_trainable(not frozen)
            start = time.perf_counter()
            order = epoch_order(len(train), config.min_epoch_frames, rng)
            warm_up = epoch == config.freeze_epochs
            epoch_steps, loss_sum, correct = _train_epoch(
                model,
                optimizer,
                train,
                order,
                config,
                features if frozen else None,
                warm_up,
                (epoch + 1, steps),
                precision,
            )
            steps += epoch_steps
            elapsed += time.perf_counter() - start
            val_accuracy = validation.accuracy(frozen)
            history.append(
                {
                    "epoch": epoch + 1,
                    "steps": steps,
                    "encoder_frozen": frozen,
                    "train_loss": loss_sum / len(order),
                    "train_accuracy": correct / len(order),
                    "val_accuracy": val_accuracy,
                    "elapsed_s": round(elapsed, 3),
                }
            )
            if (
                config.select_best
                and not math.isnan(val_accuracy)
                and (best is None or val_accuracy > best[0])
            ):
                best = (val_accuracy, {k: v.detach().clone() for k, v in model.state_dict().items()})
            bar.set_postfix(loss=f"{loss_sum / len(order):.3f}", val=f"{val_accuracy:.3f}")
            bar.update()
    bar.close()
    if best is not None:
        model.load_state_dict(best[1])
    model.set_encoder_trainable(True)
    return history


def log_history(
    folder: Path, history: list[dict[str, Any]], lr: float, encoder_lr: float, test: float | None
) -> None:
    """Writes a trained classifier's epochs as TensorBoard event files into ``folder`` (nothing,
    after a one-line note, without the ``tensorboard`` extra), at its optimiser steps.

    Tags: ``train/loss``, ``train/accuracy``, ``val/accuracy`` and ``lr/head``, ``lr/encoder`` (0 while
    the encoder is frozen; the rate each epoch ends at) per epoch; ``test/accuracy`` at the last step
    (none for a run that was not tested, ``test`` None).
    """
    with open_log(folder) as tb:
        for row in history:
            step = row["steps"]
            tb.scalar("train/loss", row["train_loss"], step)
            tb.scalar("train/accuracy", row["train_accuracy"], step)
            tb.scalar("val/accuracy", row["val_accuracy"], step)
            tb.scalar("lr/head", lr, step)
            tb.scalar("lr/encoder", 0.0 if row["encoder_frozen"] else encoder_lr, step)
        if test is not None:
            tb.scalar("test/accuracy", test, history[-1]["steps"])


def best_epoch(history: list[dict[str, Any]]) -> int:
    """The first epoch (1-based) of highest validation accuracy: the weights ``select_best`` keeps
    (the last epoch when no epoch was validated)."""
    scores = [-math.inf if math.isnan(row["val_accuracy"]) else row["val_accuracy"] for row in history]
    if max(scores) == -math.inf:
        return history[-1]["epoch"]
    return history[int(np.argmax(scores))]["epoch"]


def score_classifier(
    model: DirectionClassifier, test: FrameSet, include_after_hit: bool, k: int = 1
) -> dict[str, Any]:
    """Scores a classifier on every frame of the test episodes.

    Returns:
        ``score_predictions``'s fields.
    """
    return score_predictions(predict(model, test, k) == test.label, test, include_after_hit)


def run_arm(
    data: ClassifierData,
    labelled: NDArray[np.int64],
    config: ClassifyConfig,
    model_config: ClassifierConfig,
    encoder_state: dict[str, torch.Tensor] | None,
    *,
    val_episodes: NDArray[np.int64] | None = None,
    progress: bool = True,
    desc: str = "",
    test: bool = True,
) -> tuple[DirectionClassifier, dict[str, Any]]:
    """Builds, trains and tests one classifier on labelled training episodes.

    Args:
        data: the dataset in memory, with its split.
        labelled: dataset-wide indices of the labelled episodes it trains on.
        config: the schedule.
        model_config: the model's sizes and encoder (a frame-stack CNN reads ``context_frames``).
        encoder_state: a pretext run's encoder weights, or None for a random encoder.
        val_episodes: the episodes that pick the best epoch: None for the split's validation
            episodes, a subset of a label budget (``labelled_and_validation``) to count them
            against it, or an empty array for none.
        progress: show a progress bar.
        desc: the progress bar's label.
        test: score the trained model on the test episodes; False for a run that only its
            validation is read of (a hyperparameter search's), whose record then has no scores.

    Returns:
        The trained model, and its record: ``labelled_episodes`` (trained on and validated on),
        ``episodes``, ``val_episodes``, ``train_frames``, ``seed``, ``history`` (see
        ``train_classifier``), ``train_seconds``, ``best_epoch`` (the epoch whose weights were
        tested) and, with ``test``, the ``score_classifier`` fields.
    """
    val_ids = data.split.val if val_episodes is None else val_episodes
    assert_disjoint(data.split.test, labelled, val_ids)
    train = data.frames.of_episodes(labelled).usable(config.include_after_hit, config.frame_stride)
    val = data.frames.of_episodes(val_ids).usable(config.include_after_hit)
    encoder = model_config.encoder.for_frames(config.context_frames)  # a frame-stack CNN's k
    model = build_classifier(dataclasses.replace(model_config, encoder=encoder), config.seed, encoder_state)
    history = train_classifier(model, train, val, config, progress=progress, desc=desc)
    scores = {}
    if test:
        test_frames = data.frames.of_episodes(data.split.test).usable(True, config.test_frame_stride)
        with Precision(config.precision, check_device(config.device)).autocast_calls(model):
            scores = score_classifier(model, test_frames, config.include_after_hit, config.context_frames)
    own_val = val_episodes is not None
    record = {
        "labelled_episodes": len(labelled) + (len(val_ids) if own_val else 0),
        "episodes": labelled.tolist(),
        "val_episodes": val_ids.tolist(),
        "train_frames": len(train),
        "seed": config.seed,
        "history": history,
        "train_seconds": history[-1]["elapsed_s"],
        "best_epoch": best_epoch(history) if config.select_best else len(history),
        **scores,
    }
    return model, record


def classify_on_dataset(
    data: str | Path,
    out: str | Path,
    config: ClassifyConfig,
    *,
    pretext: str | Path | PretextRun | None = None,
    scratch: bool = False,
    labelled_episodes: int | None = None,
    hidden: int = ClassifierConfig.hidden,
    split_seed: int = 0,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Trains one classifier on a generated dataset and writes the run folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``.
        out: the run folder to create.
        config: training settings.
        pretext: a pretext run (folder, checkpoint or opened): its encoder's weights (unless
            ``scratch``), architecture and split.
        scratch: start from random weights (the supervised arm); with ``pretext``, its encoder's
            architecture and split are still used, without it the shared encoder at its default
            sizes.
        labelled_episodes: training episodes with labels, drawn class-balanced with ``config.seed``
            (None: all).
        hidden: units of the classifier's hidden layer.
        split_seed: the split's seed when there is no ``pretext`` run.
        progress: show a progress bar.
        command: the command line, recorded in ``config.json``.

    Returns:
        What ``metrics.json`` holds.

    Raises:
        UserError: an existing run in ``out`` (any of ``RUN_FILES``), ``out`` in the dataset's
            folder, neither ``pretext`` nor ``scratch``, a budget out of range, a diverged training
            (``train_classifier``: nothing is written), or any error of ``ClassifierData.load``.
    """
    out = Path(out)
    if pretext is None and not scratch:
        raise UserError("give --pretext RUN (a pretrained arm) or --scratch (the supervised arm)")
    check_out_folder(out, data)
    held = [name for name in RUN_FILES if (out / name).exists()]
    if held:
        raise UserError(f"{str(out)!r} already holds a classifier ({', '.join(held)}): choose another --out")
    check_device(config.device, config.precision)
    run = pretext if isinstance(pretext, PretextRun) or pretext is None else PretextRun.open(pretext)
    prepared = ClassifierData.load(data, [run] if run else [], split_seed)
    if run is not None:
        spec = EncoderSpec(run.method.name, run.method.config_dict())
    else:
        spec = EncoderSpec.shared(EncoderConfig(image_size=prepared.image_size))
    model_config = ClassifierConfig(spec, len(prepared.label_names), hidden, head_norm=config.head_norm)
    labelled = prepared.labelled(
        labelled_episodes, np.random.default_rng(np.random.SeedSequence(config.seed))
    )
    state = None if scratch or run is None else run.encoder_state()
    model, record = run_arm(prepared, labelled, config, model_config, state, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    write_json(
        out / "config.json",
        {
            "model": model_config.to_dict(),
            "training": dataclasses.asdict(config),
            "arm": "scratch" if scratch else "pretrained",
            "pretext": None if run is None else str(run.folder),
            "pretext_sha256": None if run is None else file_sha256(run.path),
            "command": command,
            "data": {
                "path": str(data),
                "fingerprint": data_fingerprint(data),
                "label_names": prepared.label_names,
                "labelled_episodes": labelled.tolist(),
                **{f"{p}_episodes": getattr(prepared.split, p).tolist() for p in ("train", "val", "test")},
            },
        },
    )
    save_checkpoint(
        out / MODEL_FILE,
        {"kind": KIND_CLASSIFIER, "model_config": model_config.to_dict(), "model": model.state_dict()},
    )
    with atomic_file(out / "log.csv", "w") as f:
        writer = csv.DictWriter(f, HISTORY_FIELDS)
        writer.writeheader()
        writer.writerows(record["history"])
    metrics = {k: v for k, v in record.items() if k not in ("history", "episodes")}
    metrics["final_val_accuracy"] = record["history"][-1]["val_accuracy"]
    write_json(out / "metrics.json", metrics)
    log_history(out / TB_DIR, record["history"], config.lr, config.encoder_lr, metrics["accuracy"])
    return metrics
