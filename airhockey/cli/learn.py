"""``airhockey learn``: pretext methods, pretext training, prediction videos, one classifier.

Every default is read from the config dataclasses of ``airhockey.learn.config`` (which does not
import torch); the comparison commands are in ``cli.study``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated, Any

import typer

from airhockey.cli.common import (
    DeviceOption,
    EpisodeIndex,
    MethodSetOption,
    ThreadsOption,
    VideoHelp,
    command_line,
    set_threads,
    user_errors,
)
from airhockey.errors import UserError
from airhockey.learn.config import FREEZE_EPOCHS, ClassifyConfig, CompareConfig, PretextConfig
from airhockey.learn.methods import DEFAULT_METHOD

learn_app = typer.Typer(
    help="Self-supervised pretext training and direction classifiers.", no_args_is_help=True
)
DataArgument = Annotated[Path, typer.Argument(help="Dataset directory written by 'airhockey generate'.")]
PrecisionOption = Annotated[
    str,
    typer.Option(
        help="Numeric precision: fp32 (reproducible on CPU), bf16 (a CPU with bfloat16 instructions, "
        "or a GPU), tf32 or fp16 (CUDA only). Losses and scores stay float32."
    ),
]


def build_method(name: str, settings: list[str] | None, data: Path | None = None) -> Any:
    """The registered method ``name`` with ``settings`` (``key=value``) applied over its defaults;
    with ``data``, checked at that dataset's frame size (so that settings which only fit the data's
    frames, such as a deeper stem on larger frames, are judged against them)."""
    from airhockey.learn.config import apply_settings
    from airhockey.learn.methods import get_method

    method = get_method(name)
    given = list(settings or [])
    config = method.config_class()
    size = None if data is None else _frame_size(data)
    if size is not None and (hasattr(config, "encoder") or hasattr(config, "image_size")):
        key = "encoder.image_size" if hasattr(config, "encoder") else "image_size"
        given = [f"{key}={size[0]},{size[1]}", *given]
    return method(apply_settings(config, given))


def _frame_size(data: Path) -> tuple[int, int] | None:
    """The frame size (height, width) of a dataset, or None where it cannot be read (the trainer
    then says why, after the settings were checked at the config's own size)."""
    from airhockey.generate import open_shards

    try:
        height, width = open_shards(data).frames(0, 0, 1).shape[1:3]
    except UserError:
        return None
    return int(height), int(width)


@learn_app.command("methods")
@user_errors
def learn_methods(
    name: Annotated[
        str | None, typer.Argument(help="A method whose settings (and their defaults) to list.")
    ] = None,
) -> None:
    """List the registered pretext methods, or one method's settings with their defaults."""
    from airhockey.learn.config import field_names
    from airhockey.learn.methods import get_method, method_names

    if name is None:
        for key in method_names():
            method = get_method(key)
            typer.echo(f"{key:<20} {method.summary} ({method.source})")
        return
    method = get_method(name)
    config = method.config_class()
    typer.echo(
        f"{name}: {method.summary} ({method.source}); best checkpoint by "
        f"{'lowest' if method.selection_mode == 'min' else 'highest'} {method.selection_metric}"
    )
    for key in field_names(method.config_class):
        value: Any = config
        for part in key.split("."):
            value = getattr(value, part)
        typer.echo(f"  --set {key}={value}")


@learn_app.command("pretext")
@user_errors
def learn_pretext(
    data: DataArgument,
    out: Annotated[Path, typer.Option(help="Run folder to create, or with --resume to continue.")],
    method: Annotated[
        str | None,
        typer.Option(
            help=f"Pretext method: a name from 'airhockey learn methods'. Default: {DEFAULT_METHOD}.",
            show_default=False,
        ),
    ] = None,
    settings: MethodSetOption = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimiser steps in all: the reproducible budget.")
    ] = PretextConfig.steps,
    flops: Annotated[
        float | None,
        typer.Option(
            help="Pretext FLOPs in all, e.g. 2e12: equal compute for methods of unlike cost. Converted "
            "once into steps (a step's FLOPs on the first batch); with --steps the smaller budget wins."
        ),
    ] = PretextConfig.flops,
    minutes: Annotated[
        float | None,
        typer.Option(help="Wall-clock budget of this session's training and validations."),
    ] = PretextConfig.minutes,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Most epochs in all. Default: {PretextConfig.epochs}; unlimited with --steps, --flops "
            "or --minutes.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the initial weights and the sample order.")] = (
        PretextConfig.seed
    ),
    device: DeviceOption = PretextConfig.device,
    precision: PrecisionOption = PretextConfig.precision,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out where it stopped, with its own settings.")
    ] = False,
    threads: ThreadsOption = None,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = PretextConfig.workers,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Samples per optimiser step.")
    ] = PretextConfig.batch_size,
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = PretextConfig.lr,
    patience: Annotated[
        int, typer.Option(min=1, help="Stop after this many validations without improvement.")
    ] = PretextConfig.patience,
    split_seed: Annotated[int, typer.Option(min=0, help="Seed of the by-episode train/val/test split.")] = (
        PretextConfig.split_seed
    ),
    frozen_encoder: Annotated[
        bool,
        typer.Option(
            help="Keep the encoder at its random weights and train the method's head alone: "
            "how much of the task needs no learnt features (a triviality check)."
        ),
    ] = PretextConfig.frozen_encoder,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train a pretext method; write checkpoints, log.csv, metrics.json and config.json.

    With --resume the method and its settings come from the run; leave --method and --set out.
    """
    from airhockey.learn.methods import get_method
    from airhockey.learn.pretext.run import read_config
    from airhockey.learn.pretext.trainer import STOP_REASONS, train_pretext

    config = PretextConfig(
        steps=steps,
        flops=flops,
        epochs=epochs or (None if (minutes or steps or flops) else PretextConfig.epochs),
        minutes=minutes,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        split_seed=split_seed,
        seed=seed,
        device=device,
        workers=workers,
        frozen_encoder=frozen_encoder,
        precision=precision,
    )
    given = method is not None or bool(settings)
    chosen = build_method(method or DEFAULT_METHOD, settings, data) if given or not resume else None
    set_threads(threads)
    m = train_pretext(data, out, chosen, config, resume=resume, progress=progress, command=command_line())
    run_config = read_config(out)
    assert run_config is not None, "train_pretext writes config.json"
    described = get_method(m["method"]).from_dict(run_config.method_config).describe(m)
    typer.echo(f"{m['method']}: stopped after {m['steps']} steps, {STOP_REASONS[m['stopped_by']]}")
    typer.echo(f"best epoch {m['best_epoch']} (step {m['best_step']}): {described}")
    typer.echo(f"wrote {out}/ (best.pt, last.pt, log.csv, metrics.json, config.json)")


@learn_app.command("predict")
@user_errors
def learn_predict(
    run: Annotated[Path, typer.Argument(help="Pretext run folder or checkpoint file (a predictive method).")],
    data: Annotated[Path, typer.Option(help="Dataset directory or shard file.")],
    episode: EpisodeIndex = 0,
    out: Annotated[Path, typer.Option(help=VideoHelp)] = Path("pred.mp4"),
    steps: Annotated[int, typer.Option(min=1, help="How far ahead the rollout panel predicts.")] = 4,
    device: Annotated[str, typer.Option(help="Torch device: 'cpu' or 'cuda'.")] = "cpu",
) -> None:
    """Write an episode as three titled panels: truth, one-step prediction, --steps frames ahead."""
    from airhockey.learn.pretext.prediction import predict_dataset_episode

    path = predict_dataset_episode(run, data, episode, out, steps, device)
    typer.echo(f"wrote {path} (truth | one step ahead | {steps} steps ahead, predictions fed back)")


FrameStrideOption = Annotated[
    int, typer.Option(min=1, max=10**4, help="Train on every N-th frame of each episode.")
]
TestFrameStrideOption = Annotated[
    int, typer.Option(min=1, max=10**4, help="Score every N-th frame of each test episode (1: all).")
]


@learn_app.command("classify")
@user_errors
def learn_classify(
    data: DataArgument,
    out: Annotated[Path, typer.Option(help="Run folder to create.")],
    pretext: Annotated[
        Path | None,
        typer.Option(
            help="Pretext run: its encoder's weights (unless --scratch), architecture and data split."
        ),
    ] = None,
    scratch: Annotated[
        bool, typer.Option("--scratch", help="Random initial weights: the supervised arm.")
    ] = False,
    labelled_episodes: Annotated[
        int | None,
        typer.Option(min=1, help="Training episodes with labels, drawn class-balanced. Default: all."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the labelled draw, weights and frame order.")] = (
        ClassifyConfig.seed
    ),
    device: DeviceOption = ClassifyConfig.device,
    precision: PrecisionOption = ClassifyConfig.precision,
    epochs: Annotated[
        int, typer.Option(min=1, help="Epochs in all, frozen ones included.")
    ] = ClassifyConfig.epochs,
    freeze_epochs: Annotated[
        int | None,
        typer.Option(
            min=0,
            help=f"First epochs with the encoder frozen (only the head trains). Default: {FREEZE_EPOCHS}, "
            "at most --epochs minus 1.",
            show_default=False,
        ),
    ] = ClassifyConfig.freeze_epochs,
    lr: Annotated[float, typer.Option(help="AdamW learning rate of the head.")] = ClassifyConfig.lr,
    encoder_lr: Annotated[
        float, typer.Option(help="AdamW learning rate of the encoder once unfrozen.")
    ] = ClassifyConfig.encoder_lr,
    frame_stride: FrameStrideOption = ClassifyConfig.frame_stride,
    test_frame_stride: TestFrameStrideOption = ClassifyConfig.test_frame_stride,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Frames per optimiser step.")
    ] = ClassifyConfig.batch_size,
    min_epoch_frames: Annotated[
        int,
        typer.Option(
            min=1, help="Frames an epoch draws at least, passing over few labelled frames repeatedly."
        ),
    ] = ClassifyConfig.min_epoch_frames,
    include_after_hit: Annotated[
        bool,
        typer.Option(help="Also train and score on frames with a lit button (they give the label away)."),
    ] = ClassifyConfig.include_after_hit,
    hidden: Annotated[int, typer.Option(min=1, help="Units of the classifier's hidden layer.")] = (
        CompareConfig.hidden
    ),
    val_max_frames: Annotated[
        int | None,
        typer.Option(
            min=1, help="Validate each epoch on at most this many frames, evenly spaced. Default: all."
        ),
    ] = ClassifyConfig.val_max_frames,
    split_seed: Annotated[
        int, typer.Option(min=0, help="Seed of the train/val/test split, without --pretext.")
    ] = PretextConfig.split_seed,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train one direction classifier (encoder -> hidden layer -> softmax) and test it on held-out episodes.

    With --pretext RUN the encoder starts from the run's weights, frozen for --freeze-epochs, then
    fine-tuned at --encoder-lr; with --scratch the same model and schedule start from random weights
    (with --pretext too, only the run's encoder architecture and split are taken).
    """
    from airhockey.learn.downstream.classify import classify_on_dataset

    options = locals()
    config = ClassifyConfig(
        **{f.name: options[f.name] for f in dataclasses.fields(ClassifyConfig) if f.name in options}
    )
    set_threads(threads)
    m = classify_on_dataset(
        data,
        out,
        config,
        pretext=pretext,
        scratch=scratch,
        labelled_episodes=labelled_episodes,
        hidden=hidden,
        split_seed=split_seed,
        progress=progress,
        command=command_line(),
    )
    frames = "all frames" if include_after_hit else "frames before the hit"
    typer.echo(
        f"{m['labelled_episodes']} labelled episodes ({m['train_frames']} frames): test accuracy "
        f"{m['accuracy']:.1%} on {m['test_frames']} {frames} of the test episodes; on frames with a lit "
        f"button {m['accuracy_after_hit']:.1%}"
    )
    typer.echo(f"wrote {out}/ (model.pt, log.csv, metrics.json, config.json)")
