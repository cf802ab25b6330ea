"""Training the ConvLSTM autoencoder on next-frame prediction (seed 000 section 4.4), and judging it.

``train_pretext`` reads clips of ``frames_in + frames_predicted`` consecutive frames, fits the
model with a moving-pixel-weighted MSE and AdamW, validates after every epoch on held-out
episodes, and writes a run folder:

    RUN/config.json    model and training settings, and the command
    RUN/last.pt        the latest state, written after every epoch (``resume=True`` continues it)
    RUN/best.pt        the model with the lowest validation MSE so far (what later stages load)
    RUN/log.csv        one row per validation
    RUN/metrics.json   the best model against the copy-last-frame and mean-frame baselines
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, Sampler

from airhockey.errors import UserError
from airhockey.learn.autoencoder import KIND, AutoencoderConfig, ConvLSTMAutoencoder
from airhockey.learn.checkpoint import BEST, LAST, load_checkpoint, save_checkpoint
from airhockey.learn.metrics import FramePredictionStats, moving_mask


@dataclass(frozen=True)
class PretextConfig:
    """Settings of a pretext training run (the model's sizes are in ``AutoencoderConfig``)."""

    epochs: int | None = 30
    """Most passes over the training clips; None for no limit (then set ``minutes``)."""
    minutes: float | None = None
    """Wall-clock budget of the training loop and its validations (the final validation and checkpoint
    come after); None for no limit."""
    batch_size: int = 16
    """Clips per optimiser step."""
    lr: float = 2e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Largest gradient norm; larger gradients are scaled down to it."""
    moving_weight: float = 2.0
    """Extra weight of moving pixels in the loss (theirs is 1 + moving_weight, the rest 1)."""
    moving_threshold: float = 0.05
    """Change in [0, 1] units that makes a pixel moving, in the loss weights and the metrics."""
    patience: int = 5
    """Stop after this many validations in a row without a lower validation MSE."""
    mean_frame_clips: int = 512
    """Training clips, evenly spread, whose frames average into the mean-frame baseline."""
    clip_stride: int = 4
    """Frames between the starts of successive clips of an episode."""
    split_seed: int = 0
    """Seed of the by-episode train/val/test split (``learn.data.split_episodes``); test is never read."""
    seed: int = 0
    """Seed of the initial weights and of the order of the clips in each epoch."""
    device: str = "cpu"
    """Torch device: 'cpu', 'cuda' or 'cuda:N'."""
    workers: int = 0
    """DataLoader worker processes (0 loads in the training process)."""

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "patience", "mean_frame_clips", "clip_stride"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.minutes is not None and self.minutes <= 0:
            raise ValueError(f"minutes must be positive, got {self.minutes}")
        if self.workers < 0:
            raise ValueError(f"workers must be at least 0, got {self.workers}")


# Settings that may change when a run is resumed; any other change would not continue the same run.
_RESUMABLE_CHANGES = {"epochs", "minutes", "patience", "device", "workers"}
_LOG_FIELDS = (
    "epoch",
    "batches",
    "step",
    "train_loss",
    "val_mse",
    "val_moving_mse",
    "baseline_copy_last_mse",
    "elapsed_s",
)


class _EpochOrder(Sampler[int]):
    """The shuffled clip order of one epoch, a pure function of (seed, epoch), from position ``start``."""

    def __init__(self, n: int, seed: int, epoch: int, start: int) -> None:
        self.order = np.random.default_rng([seed, epoch]).permutation(n)[start:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.order.tolist())

    def __len__(self) -> int:
        return len(self.order)


def clip_loader(
    dataset: Dataset[Tensor],
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
        else _EpochOrder(len(dataset), config.seed, epoch, start_batch * config.batch_size)
    )  # type: ignore[arg-type]
    return DataLoader(
        dataset,
        batch_size=config.batch_size,
        sampler=order,
        num_workers=config.workers,
        pin_memory=device.type == "cuda",
    )


def check_device(device: str) -> torch.device:
    """The torch device named by ``device``, checked to exist here.

    Raises:
        UserError: for a CUDA device on a machine without one, or a name torch does not know.
    """
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r}: use 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"device {device!r} asked for, but torch sees no CUDA GPU here: use --device cpu")
    return dev


def weighted_mse(
    pred: Tensor, target: Tensor, previous: Tensor, moving_weight: float, threshold: float
) -> Tensor:
    """The training loss: squared error with weight ``1 + moving_weight`` on moving pixels, averaged.

    Args:
        pred, target, previous: (..., 3, H, W): predictions, true frames, and the true frames before.
    """
    weight = 1.0 + moving_weight * moving_mask(previous, target, threshold).to(pred.dtype)
    return (weight * (pred - target) ** 2).mean()


def train_step(
    model: ConvLSTMAutoencoder, optimizer: torch.optim.Optimizer, clip: Tensor, config: PretextConfig
) -> float:
    """One optimiser step on a batch of clips (B, L, 3, H, W); returns the loss before the step.

    The model reads the first ``frames_in`` frames and predicts every next frame, feeding its
    predictions back past the context, so each of frames 1..L-1 is a target.
    """
    cfg = model.config
    pred = model(clip[:, : cfg.frames_in], future=cfg.frames_predicted - 1)  # (B, L - 1, 3, H, W)
    loss = weighted_mse(pred, clip[:, 1:], clip[:, :-1], config.moving_weight, config.moving_threshold)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
    optimizer.step()
    return loss.item()


def mean_frame(dataset: Dataset[Tensor], max_clips: int) -> Tensor:
    """The per-pixel mean (3, H, W) of the frames of up to ``max_clips`` clips spread over ``dataset``."""
    n = len(dataset)  # type: ignore[arg-type]
    picks = np.unique(np.linspace(0, n - 1, min(n, max_clips)).round().astype(int))
    total = sum(dataset[int(i)].double().mean(dim=0) for i in picks)
    return (total / len(picks)).float()


@torch.no_grad()
def evaluate(
    loader: DataLoader,
    model_config: AutoencoderConfig,
    moving_threshold: float,
    device: torch.device,
    *,
    model: ConvLSTMAutoencoder | None = None,
    mean: Tensor | None = None,
) -> dict[str, float]:
    """Scores of the model, or of the baselines, on every one-step prediction in the loader's clips.

    In a clip of L frames the model predicts frame t + 1 from true frames 0..t, for t = 0..L-2;
    the copy-last baseline predicts frame t, the mean-frame baseline predicts ``mean``. With
    ``frames_predicted > 1`` the rollout past the first ``frames_in`` frames (predictions fed
    back) is scored as well, against copying the last context frame.

    Args:
        loader: clips (B, L, 3, H, W).
        model_config: gives ``frames_in`` and ``frames_predicted``.
        moving_threshold: see ``metrics.moving_mask``.
        device: where to compute.
        model: the model to score, if any.
        mean: the mean frame (3, H, W), to score the baselines.

    Returns:
        With a model ``val_{mse, psnr, ssim, moving_mse}`` (and ``val_rollout_*``); with a mean
        frame ``baseline_copy_last_*`` and ``baseline_mean_frame_*`` (and
        ``baseline_copy_last_rollout_*``).
    """
    k, rollout = model_config.frames_in, model_config.frames_predicted > 1
    names = (["val"] + ["val_rollout"] * rollout) * (model is not None)
    names += (["baseline_copy_last", "baseline_mean_frame"] + ["baseline_copy_last_rollout"] * rollout) * (
        mean is not None
    )
    stats = {name: FramePredictionStats(moving_threshold) for name in names}
    was_training = model is not None and model.training
    if model is not None:
        model.eval()
    for clip in loader:
        clip = clip.to(device)  # (B, L, 3, H, W)
        previous, target = clip[:, :-1].flatten(0, 1), clip[:, 1:].flatten(0, 1)  # (B (L-1), 3, H, W)
        # The rollout's targets: the frames after the context, and the true frames before them.
        future, before = clip[:, k:].flatten(0, 1), clip[:, k - 1 : -1].flatten(0, 1)
        if model is not None:
            stats["val"].update(model(clip[:, :-1]).flatten(0, 1), target, previous)
            if rollout:
                predicted = model(clip[:, :k], future=model_config.frames_predicted - 1)[:, k - 1 :]
                stats["val_rollout"].update(predicted.flatten(0, 1), future, before)
        if mean is not None:
            stats["baseline_copy_last"].update(previous, target, previous)
            stats["baseline_mean_frame"].update(mean.to(device).expand_as(target), target, previous)
            if rollout:
                last = clip[:, k - 1 : k].expand_as(clip[:, k:]).flatten(0, 1)
                stats["baseline_copy_last_rollout"].update(last, future, before)
    if was_training:
        model.train()
    return {f"{name}_{key}": value for name, s in stats.items() for key, value in s.result().items()}


def _write_json(path: Path, payload: dict[str, Any]) -> None:
    # NaN (no moving pixel) is written as null, which every JSON reader accepts.
    clean = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in payload.items()}
    path.write_text(json.dumps(clean, indent=2) + "\n")


def _check_resume(
    stored: dict[str, Any], config: PretextConfig, model_config: AutoencoderConfig | None
) -> None:
    if model_config is not None and model_config.to_dict() != stored["model_config"]:
        raise UserError("--resume continues a run with its own model settings: leave the model options out")
    changed = {
        k for k, v in dataclasses.asdict(config).items() if stored["train_config"].get(k) != v
    } - _RESUMABLE_CHANGES
    if changed:
        raise UserError(f"--resume needs the run's own settings; these differ: {', '.join(sorted(changed))}")


def _dataset_clips(
    path: str | Path, config: PretextConfig, model_config: AutoencoderConfig, fit_image_size: bool
) -> tuple[Dataset[Tensor], Dataset[Tensor], AutoencoderConfig, dict[str, Any]]:
    """Training and validation clips of a generated dataset, the model config (with the frames'
    size if ``fit_image_size``), and what to record of the data in ``config.json``."""
    from airhockey.generate import open_shards
    from airhockey.learn.data import ClipDataset, split_episodes

    episodes = open_shards(path)
    if fit_image_size:
        frame_size = tuple(int(n) for n in episodes.frames(0, 0, 1).shape[1:3])
        model_config = dataclasses.replace(model_config, image_size=frame_size)
    length = model_config.clip_length
    split = split_episodes(episodes.table()["label"], seed=config.split_seed)
    train_set = ClipDataset(episodes, length, split.train, config.clip_stride)
    val_set = ClipDataset(episodes, length, split.val, config.clip_stride)
    if len(train_set) == 0 or len(val_set) == 0:
        raise UserError(
            f"{str(path)!r} gives {len(train_set)} training and {len(val_set)} validation clips of "
            f"{length} frames: generate more (or longer) episodes"
        )
    info = {
        "path": str(path),
        "fingerprint": episodes.fingerprint,
        "split_seed": config.split_seed,
        **{f"{part}_episodes": getattr(split, part).tolist() for part in ("train", "val", "test")},
    }
    return train_set, val_set, model_config, info


def train_pretext(
    data: str | Path | tuple[Dataset[Tensor], Dataset[Tensor]],
    out: str | Path,
    config: PretextConfig,
    model_config: AutoencoderConfig | None = None,
    *,
    resume: bool = False,
    progress: bool = True,
    command: str = "",
) -> dict[str, Any]:
    """Trains the autoencoder on next-frame prediction and writes the run folder ``out``.

    Args:
        data: a dataset directory or shard file written by ``airhockey generate``, or a pair
            (training clips, validation clips) of datasets of (L, 3, H, W) tensors in [0, 1] with
            L = ``model_config.clip_length``. From a generated dataset, the clips come from the
            train and val episodes of ``split_episodes(labels, seed=config.split_seed)``, the split
            the classifiers use, so that their test episodes stay unseen (the split is recorded in
            ``config.json``), and the model's ``image_size`` is the frames' size.
        out: the run folder; it must not hold a run unless ``resume``.
        config: training settings.
        model_config: model sizes; None takes the defaults, or the run's own when resuming.
        resume: continue the run in ``out`` from its ``last.pt``, exactly where it stopped.
        progress: show a progress bar.
        command: the command line that started the run, recorded in ``config.json``.

    Returns:
        What ``metrics.json`` holds.

    Raises:
        UserError: an existing run without ``resume``, a missing one with it, changed settings on
            resume, clips of the wrong shape, a dataset too small, or an unavailable device.
    """
    from tqdm import tqdm

    out = Path(out)
    device = check_device(config.device)
    if resume:
        if not (out / LAST).is_file():
            raise UserError(
                f"{str(out)!r} holds no run to resume (no {LAST}): leave out --resume to start one"
            )
        ckpt = load_checkpoint(out, KIND, name=LAST)
        _check_resume(ckpt, config, model_config)
        model_config = AutoencoderConfig.from_dict(ckpt["model_config"])
    elif (out / LAST).exists():
        raise UserError(
            f"{str(out)!r} already holds a run: pass --resume to continue it, or choose another --out"
        )
    model_config = model_config or AutoencoderConfig()
    if isinstance(data, tuple):
        (train_set, val_set), data_info = data, {}
    else:
        train_set, val_set, model_config, data_info = _dataset_clips(data, config, model_config, not resume)
    needed = (model_config.clip_length, 3, *model_config.image_size)
    for name, dataset in (("training", train_set), ("validation", val_set)):
        if tuple(dataset[0].shape) != needed:
            raise UserError(
                f"the {name} clips are {tuple(dataset[0].shape)}, the model reads (frames_in + "
                f"frames_predicted, 3, height, width) = {needed}"
            )

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = ConvLSTMAutoencoder(model_config)
    model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    if resume:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        progress_state, mean, baselines = ckpt["progress"], ckpt["mean_frame"], ckpt["baselines"]
    else:
        progress_state = {
            "epoch": 0,
            "batch": 0,
            "step": 0,
            "best_val_mse": math.inf,
            "best_epoch": -1,
            "stale": 0,
        }
        mean = mean_frame(train_set, config.mean_frame_clips)
        out.mkdir(parents=True, exist_ok=True)
        with open(out / "log.csv", "w", newline="") as f:
            csv.writer(f).writerow(_LOG_FIELDS)
    _write_json(
        out / "config.json",
        {
            "model": model_config.to_dict(),
            "training": dataclasses.asdict(config),
            "command": command,
            "data": data_info,
        },
    )

    val_loader = clip_loader(val_set, config, device)
    if not resume:
        baselines = evaluate(val_loader, model_config, config.moving_threshold, device, mean=mean)
    n_batches = math.ceil(len(train_set) / config.batch_size)  # type: ignore[arg-type]
    start = time.monotonic()
    deadline = math.inf if config.minutes is None else start + 60.0 * config.minutes
    stop_reason = "epochs"
    p = progress_state
    while config.epochs is None or p["epoch"] < config.epochs:
        bar = tqdm(
            clip_loader(train_set, config, device, epoch=p["epoch"], start_batch=p["batch"]),
            total=n_batches,
            initial=p["batch"],
            desc=f"epoch {p['epoch'] + 1}" + (f"/{config.epochs}" if config.epochs else ""),
            disable=not progress,
            leave=False,
        )
        loss_sum, loss_n, out_of_time = 0.0, 0, False
        for clip in bar:
            loss = train_step(model, optimizer, clip.to(device, non_blocking=True), config)
            p["batch"] += 1
            p["step"] += 1
            loss_sum, loss_n = loss_sum + loss, loss_n + 1
            bar.set_postfix(loss=f"{loss_sum / loss_n:.5f}")
            if time.monotonic() >= deadline:
                out_of_time = True
                break
        bar.close()
        val = evaluate(val_loader, model_config, config.moving_threshold, device, model=model)
        finished_epoch = p["batch"] >= n_batches
        row = {
            "epoch": p["epoch"] + 1,
            "batches": p["batch"],
            "step": p["step"],
            "train_loss": loss_sum / max(loss_n, 1),
            "elapsed_s": round(time.monotonic() - start, 1),
            **{k: v for k, v in {**val, **baselines}.items() if k in _LOG_FIELDS},
        }
        if finished_epoch:
            p["epoch"], p["batch"] = p["epoch"] + 1, 0
        improved = val["val_mse"] < p["best_val_mse"]
        if improved:
            p["best_val_mse"], p["best_epoch"], p["stale"] = val["val_mse"], row["epoch"], 0
        else:
            p["stale"] += 1
        payload = {
            "kind": KIND,
            "model_config": model_config.to_dict(),
            "train_config": dataclasses.asdict(config),
            "model": model.state_dict(),
            "mean_frame": mean,
            "validation": val,
            "baselines": baselines,
        }
        if improved:
            save_checkpoint(out / BEST, payload)
        save_checkpoint(out / LAST, {**payload, "optimizer": optimizer.state_dict(), "progress": dict(p)})
        with open(out / "log.csv", "a", newline="") as f:
            csv.DictWriter(f, _LOG_FIELDS).writerow(row)
        if progress:
            tqdm.write(
                f"epoch {row['epoch']}: train loss {row['train_loss']:.5f}, val mse {val['val_mse']:.6f} "
                f"(copy-last {baselines['baseline_copy_last_mse']:.6f}), moving {val['val_moving_mse']:.4f} "
                f"(copy-last {baselines['baseline_copy_last_moving_mse']:.4f})"
            )
        if out_of_time:
            stop_reason = "time"
            break
        if p["stale"] >= config.patience:
            stop_reason = "early_stopping"
            break

    metrics = {
        **load_checkpoint(out, KIND)["validation"],
        **baselines,
        "val_clips": len(val_set),  # type: ignore[arg-type]
        "best_epoch": p["best_epoch"],
        "epochs_done": p["epoch"],
        "steps": p["step"],
        "stopped_by": stop_reason,
        "train_seconds_this_session": round(time.monotonic() - start, 1),
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    metrics["val_mse_vs_copy_last"] = 1.0 - metrics["val_mse"] / metrics["baseline_copy_last_mse"]
    _write_json(out / "metrics.json", metrics)
    return metrics


def _to_uint8(frames: Tensor) -> NDArray[np.uint8]:
    """(T, 3, H, W) in [0, 1] -> (T, H, W, 3) uint8."""
    return (frames.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).cpu().numpy()


@torch.no_grad()
def predict_episode(model: ConvLSTMAutoencoder, frames: Tensor, steps: int) -> tuple[Tensor, Tensor]:
    """One-step and ``steps``-step predictions of every frame of an episode.

    Args:
        model: a trained autoencoder.
        frames: (T, 3, H, W) in [0, 1], a whole episode.
        steps: how far ahead the rollout predicts (1 gives the one-step predictions again).

    Returns:
        ``one_step`` and ``k_step``, each (T, 3, H, W) clipped to [0, 1]: ``one_step[t]`` predicts
        frame t from true frames 0..t-1, ``k_step[t]`` from true frames 0..t-steps with the
        predictions in between fed back. Frames with too little history are NaN.
    """
    if steps < 1:
        raise ValueError(f"steps must be at least 1, got {steps}")
    model.eval()
    one_step = torch.full_like(frames, math.nan)
    k_step = torch.full_like(frames, math.nan)
    state = None
    for t in range(frames.shape[0] - 1):
        pred, state = model.advance(frames[None, t : t + 1], state)  # (1, 1, 3, H, W)
        one_step[t + 1] = pred[0, 0]
        if t + steps < frames.shape[0]:
            ahead = model.rollout(pred, state, steps - 1)
            k_step[t + steps] = (ahead if steps > 1 else pred)[0, -1]
    return one_step.clamp(0, 1), k_step.clamp(0, 1)


def prediction_video(
    model: ConvLSTMAutoencoder, frames: NDArray[np.uint8], steps: int, out: str | Path, fps: float
) -> Path:
    """Writes an episode as three panels side by side: truth, one-step prediction, ``steps``-step rollout.

    Args:
        model: a trained autoencoder.
        frames: (T, H, W, 3) uint8, a whole episode.
        steps: how far ahead the third panel predicts.
        out: ``.mp4`` or ``.gif`` path.
        fps: frames per second of the video.

    Returns:
        The path written. Panels without a prediction yet (the first frames) are black.
    """
    from airhockey.video import check_video_path, write_video

    out = check_video_path(out)
    device = next(model.parameters()).device
    x = torch.from_numpy(np.ascontiguousarray(frames)).to(device).permute(0, 3, 1, 2).float() / 255.0
    one_step, k_step = predict_episode(model, x, steps)
    panels = [frames, _to_uint8(one_step.nan_to_num(0.0)), _to_uint8(k_step.nan_to_num(0.0))]
    gap = np.full((*frames.shape[:2], 2, 3), 255, dtype=np.uint8)  # (T, H, 2, 3) white separator
    video: Sequence[NDArray[np.uint8]] = list(
        np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=2)
    )
    return write_video(video, out, fps=fps)


def predict_dataset_episode(
    run: str | Path, data: str | Path, episode: int, out: str | Path, steps: int, device: str = "cpu"
) -> Path:
    """``prediction_video`` for the model of a pretext run on one episode of a generated dataset.

    Args:
        run: a pretext run folder (its ``best.pt``) or checkpoint file.
        data: a dataset directory or shard file.
        episode: the episode's index in the dataset.
        out: ``.mp4`` or ``.gif`` path.
        steps: how far ahead the rollout panel predicts.
        device: torch device to run the model on.
    """
    from airhockey.generate import open_shards
    from airhockey.generate.rollout import make_env
    from airhockey.learn.autoencoder import load_autoencoder

    model = load_autoencoder(run, check_device(device))
    with open_shards(data) as episodes:
        if not 0 <= episode < len(episodes):
            raise UserError(f"episode must be in 0-{len(episodes) - 1}, got {episode}")
        record = episodes[episode]
        frames, env_kwargs = record["frames"], record["env_kwargs"]
    if frames.shape[1:3] != model.config.image_size:
        raise UserError(
            f"the episode's frames are {frames.shape[1:3]}, the model's {model.config.image_size}"
        )
    env = make_env({k: v for k, v in env_kwargs.items() if k != "render_mode"})
    fps = env.unwrapped.metadata["render_fps"]
    env.close()
    return prediction_video(model, frames, steps, out, fps)
