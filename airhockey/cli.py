"""The ``airhockey`` command line: one sub-app per pipeline stage, each command a thin wrapper.

Heavy imports (MuJoCo, torch, stable-baselines3, h5py) happen inside the commands, so that
``airhockey --help`` is instant.
"""

from __future__ import annotations

import functools
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

import airhockey
from airhockey.backends import Backend
from airhockey.errors import UserError
from airhockey.learn.config import SCRATCH, ClassifyConfig, CompareConfig, PretextConfig

app = typer.Typer(
    help="Air hockey in MuJoCo: environment, agent, labelled video datasets, representation learning.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
env_app = typer.Typer(help="The AirHockey-v0 environment.", no_args_is_help=True)
app.add_typer(env_app, name="env")
agent_app = typer.Typer(help="Train, evaluate and record the PPO agent.", no_args_is_help=True)
app.add_typer(agent_app, name="agent")
data_app = typer.Typer(
    help="Inspect, verify and preview generated datasets; write the moving-shapes sanity set.",
    no_args_is_help=True,
)
app.add_typer(data_app, name="data")
learn_app = typer.Typer(
    help="Self-supervised pretext training and direction classifiers.", no_args_is_help=True
)
app.add_typer(learn_app, name="learn")

F = TypeVar("F", bound=Callable[..., Any])
EpisodeIndex = Annotated[int, typer.Option(min=0, help="Index of the episode in the dataset.")]


def user_errors(fn: F) -> F:
    """The CLI's error boundary: a user's mistake ends in one line ``error: <what>: <why>`` on stderr, exit 2.

    Mistakes are UserError and ValueError (bad options, damaged files: the library names the file
    or option) and OSError (a path the user gave that is missing, a directory, under a file, on a
    full disk or not writable: named by the error's own file name).
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (UserError, ValueError, OSError) as err:
            typer.echo(f"error: {_one_line(err)}", err=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _one_line(err: BaseException) -> str:
    """An error's message on one line; an OSError's as ``<file>: <reason>``."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        target = f" -> {err.filename2}" if err.filename2 is not None else ""
        return f"{err.filename}{target}: {err.strerror}"
    return " ".join(str(err).split()) or type(err).__name__


# --------------------------------------------------------------------------------------- env
@env_app.command("info")
@user_errors
def env_info() -> None:
    """Print the environment's id, spaces, timing and keyword arguments with their defaults."""
    import gymnasium as gym

    from airhockey.envs import AirHockeyEnv

    spec = gym.spec(airhockey.ENV_ID)
    env = gym.make(airhockey.ENV_ID)
    unwrapped = env.unwrapped
    cameras = [unwrapped.model.camera(i).name for i in range(unwrapped.model.ncam)]
    lines = [
        f"id:                 {spec.id}",
        f"entry point:        {spec.entry_point}",
        f"max episode steps:  {spec.max_episode_steps}",
        f"control step (dt):  {unwrapped.dt:.3f} s ({unwrapped.frame_skip} physics steps)",
        f"render modes:       {AirHockeyEnv.metadata['render_modes']}",
        f"cameras:            {cameras}",
        f"action space:       {env.action_space}",
        f"observation space:  {env.observation_space}",
        "keyword arguments:",
    ]
    for name, param in inspect.signature(AirHockeyEnv.__init__).parameters.items():
        if param.kind is inspect.Parameter.KEYWORD_ONLY:
            lines.append(f"  {name:<24}= {param.default!r}")
    env.close()
    typer.echo("\n".join(lines))


@env_app.command("preview")
@user_errors
def env_preview(
    out: Annotated[Path, typer.Option(help="Video file to write: .mp4 or .gif.")] = Path("preview.mp4"),
    policy: Annotated[
        str,
        typer.Option(
            help="'random', 'bundled' or 'bundled-all' (the shipped agents) or the path of a saved agent."
        ),
    ] = "random",
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play, one after another.")] = 3,
    seed: Annotated[int, typer.Option(help="Reset seed of the first episode; the next ones follow.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 256,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 256,
    camera: Annotated[str, typer.Option(help="Camera: 'top' or 'perspective'.")] = "top",
    targets: Annotated[str, typer.Option(help="Target buttons: 'leftright' or 'all'.")] = "leftright",
) -> None:
    """Play a few episodes and write them as one video."""
    from airhockey.envs.rollout import play_episodes, random_policy
    from airhockey.video import check_video_path, write_video

    check_video_path(out)
    env_kwargs = {"width": width, "height": height, "camera_name": camera, "target_buttons": targets}
    if policy == "random":
        from gymnasium.spaces import Box

        act = random_policy(Box(-1.0, 1.0, (2,)), seed)
    else:
        from airhockey.agents import load_policy

        loaded = load_policy(policy)
        act = lambda obs: loaded.predict(obs, deterministic=True)[0]  # noqa: E731
    summaries = play_episodes(act, episodes, seed, render=True, env_kwargs=env_kwargs)
    frames = [frame for s in summaries for frame in s.frames]
    import gymnasium as gym

    fps = gym.make(airhockey.ENV_ID).unwrapped.metadata["render_fps"]
    write_video(frames, out, fps=fps)
    for s in summaries:
        typer.echo(f"seed {s.seed}: target {s.target}, hit {s.hit_button}, {s.length} steps")
    typer.echo(f"wrote {out} ({len(frames)} frames)")


# --------------------------------------------------------------------------------------- agent
# (agent commands: train, eval, record)
PolicyOption = Annotated[
    str | None,
    typer.Option(
        help="'bundled' or 'bundled-all' (the shipped agents, for targets leftright and all), a run "
        "folder or a model .zip; default: the bundled agent for --targets. "
        "Loading unpickles the files, which can run code: pass only files you trust.",
        show_default=False,
    ),
]
TargetsOption = Annotated[str, typer.Option(help="Target buttons: 'leftright' or 'all'.")]


@agent_app.command("train")
@user_errors
def agent_train(
    out: Annotated[Path, typer.Option(help="Run folder to create, or with --resume to continue.")],
    timesteps: Annotated[int, typer.Option(min=1, help="Environment steps, all sessions.")] = 1_000_000,
    workers: Annotated[
        int, typer.Option(min=1, help="Processes stepping the envs, this one included (see docs/agent.md).")
    ] = 1,
    seed: Annotated[int, typer.Option(min=0, help="Seed of network, sampling and training envs.")] = 0,
    targets: TargetsOption = "leftright",
    resume: Annotated[bool, typer.Option(help="Continue the run in --out from its last checkpoint.")] = False,
    device: Annotated[str, typer.Option(help="Torch device; 'cpu' runs are reproducible.")] = "cpu",
    eval_every: Annotated[
        int, typer.Option(min=0, help="Steps between evaluations and checkpoints; 0: at start and end only.")
    ] = 20_480,
    eval_episodes: Annotated[int, typer.Option(min=1, help="Episodes per evaluation.")] = 100,
    hp: Annotated[
        list[str] | None,
        typer.Option(help="Override a hyperparameter of agents/hyperparams/ppo.yml: NAME=VALUE; repeatable."),
    ] = None,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
) -> None:
    """Train PPO into a run folder: config, command, eval CSV, curve, checkpoints, model and stats."""
    from airhockey.agents import TrainConfig, load_hyperparams, train

    config = TrainConfig(
        out=out,
        timesteps=timesteps,
        workers=workers,
        seed=seed,
        target_buttons=targets,
        device=device,
        eval_every=eval_every,
        eval_episodes=eval_episodes,
        resume=resume,
        progress_bar=progress,
        hyperparams=load_hyperparams().with_overrides(hp or []),
    )
    summary = train(config)
    last = summary.rows[-1]
    typer.echo(
        f"trained {summary.timesteps:,} steps in {summary.wall_seconds / 60:.1f} min "
        f"({summary.steps_per_second:,.0f} steps/s); validation success {last.success_rate:.1%} "
        f"[{last.success_low:.1%}, {last.success_high:.1%}]"
    )
    best = summary.best
    typer.echo(
        f"best validation success {best['success_rate']:.1%} at {int(best['timesteps']):,} steps "
        f"({best['wall_seconds'] / 60:.1f} min): {out}/best/ (load it with --policy {out}/best)"
    )
    typer.echo(
        f"wrote {out}/ (model.zip, model_vecnormalize.pkl, model_actor.npz, best/, eval.csv, curve.png)"
    )


@agent_app.command("eval")
@user_errors
def agent_eval(
    policy: PolicyOption = None,
    episodes: Annotated[int, typer.Option(min=1, help="Episodes, one seed each.")] = 100,
    seed: Annotated[
        int, typer.Option(min=0, help="First reset seed; 1,000,000 up are never used in training.")
    ] = 1_000_000,
    targets: TargetsOption = "leftright",
) -> None:
    """Print the success rate (95% interval), the target x hit-button table and the mean length."""
    from airhockey.agents import evaluate, load_policy
    from airhockey.agents.files import bundled_for

    loaded = load_policy(policy or bundled_for(targets))
    result = evaluate(loaded, episodes, seed, targets)
    typer.echo(f"policy:          {loaded.name} (sha256 {loaded.sha256})")
    typer.echo(f"targets:         {targets}")
    typer.echo(result.report())


@agent_app.command("record")
@user_errors
def agent_record(
    policy: PolicyOption = None,
    out: Annotated[Path, typer.Option(help="Video file to write: .mp4 or .gif.")] = Path("agent.mp4"),
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to play, one after another.")] = 3,
    seed: Annotated[int, typer.Option(help="Reset seed of the first episode; the next ones follow.")] = 0,
    targets: TargetsOption = "leftright",
) -> None:
    """Play a few episodes with an agent and write them as one video (256x256, top camera)."""
    from airhockey.agents.files import bundled_for

    env_preview(out=out, policy=policy or bundled_for(targets), episodes=episodes, seed=seed, targets=targets)


# --------------------------------------------------------------------------------------- backends
BackendOption = Annotated[
    str,
    typer.Option(
        help="Where the jobs run: 'local' (processes on this machine) or 'ray' (Ray tasks on this machine "
        "or a cluster; needs the package's 'ray' extra, see docs/scale.md)."
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        help="With --backend ray: the cluster to join, 'auto' (the one 'ray start' began here) or "
        "HOST:PORT of its head; default: start a Ray instance on this machine.",
        show_default=False,
    ),
]
RayCpusOption = Annotated[float, typer.Option(min=0, help="With --backend ray: CPUs each task reserves.")]


# --------------------------------------------------------------------------------------- generate / data
# (generate command and data commands: verify, inspect, preview)
@app.command("generate")
@user_errors
def generate_command(
    out_dir: Annotated[Path, typer.Argument(help="Dataset directory to create or, with --resume, complete.")],
    episodes: Annotated[int, typer.Option(min=1, help="Labelled episodes to write.")],
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (local backend). Default: the available CPU cores."),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Generator seed: the same seed, the same dataset.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 64,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 64,
    camera: Annotated[str, typer.Option(help="Camera: 'top' or 'perspective'.")] = "top",
    labels: Annotated[
        str,
        typer.Option(
            help="'leftright': classes left/right (buttons 0 and 4), other outcomes discarded; "
            "'all': class k is button k, misses discarded."
        ),
    ] = "leftright",
    policy: Annotated[
        str | None,
        typer.Option(
            help="'bundled' or 'bundled-all' (the shipped agents, for targets leftright and all), a saved "
            "agent's run folder or model .zip (unpickled: pass only files you trust), or 'scripted' (a "
            "hand-written baseline controller); default: the bundled agent for --labels.",
            show_default=False,
        ),
    ] = None,
    shard_size: Annotated[int, typer.Option(min=1, help="Episodes per shard file.")] = 50,
    resume: Annotated[
        bool, typer.Option(help="Complete an interrupted run in OUT_DIR; give the same arguments.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar.")] = True,
    backend: BackendOption = Backend.kind,
    ray_address: RayAddressOption = Backend.ray_address,
    ray_cpus_per_task: RayCpusOption = Backend.cpus_per_task,
) -> None:
    """Play a policy and write its episodes, rendered and labelled by the button hit, as HDF5 shards.

    With --backend ray each shard is a Ray task; only this process writes into OUT_DIR.
    """
    from airhockey.generate import GenerateConfig, generate

    config = GenerateConfig(
        episodes=episodes,
        seed=seed,
        width=width,
        height=height,
        camera=camera,
        labels=labels,
        policy=policy,
        shard_size=shard_size,
    )
    where = Backend(backend, ray_address, cpus_per_task=ray_cpus_per_task)
    manifest = generate(config, out_dir, workers=workers, resume=resume, progress=progress, backend=where)
    counts = zip(manifest["label_names"], manifest["class_counts"], strict=True)
    classes = ", ".join(f"{name} {count}" for name, count in counts)
    discarded = sum(manifest["discards"].values())
    typer.echo(
        f"wrote {out_dir}/: {manifest['episodes']} episodes ({classes}), {manifest['frames']:,} frames "
        f"in {len(manifest['shards'])} shards; discarded {discarded} of {manifest['attempts']} attempts"
    )


@data_app.command("verify")
@user_errors
def data_verify(path: Annotated[Path, typer.Argument(help="Dataset directory.")]) -> None:
    """Recompute checksums, check schema and counts, and check each label against the button states."""
    from airhockey.generate import verify_dataset

    result = verify_dataset(path)
    for problem in result.problems:
        typer.echo(f"error: {problem}", err=True)
    if not result.ok:
        raise typer.Exit(1)
    typer.echo(f"ok: {path}: {result.shards} shards, {result.episodes} episodes verified")


@data_app.command("inspect")
@user_errors
def data_inspect(path: Annotated[Path, typer.Argument(help="Dataset directory.")]) -> None:
    """Print a summary: counts per class, lengths, discards, policy, frame size, size on disk."""
    from airhockey.generate import describe_dataset

    typer.echo(describe_dataset(path))


@data_app.command("preview")
@user_errors
def data_preview(
    path: Annotated[Path, typer.Argument(help="Dataset directory or shard file.")],
    episode: EpisodeIndex = 0,
    out: Annotated[Path, typer.Option(help="Video file to write: .mp4 or .gif.")] = Path("clip.mp4"),
) -> None:
    """Write one episode as a video, its label drawn above the frames."""
    from airhockey.generate import preview_episode

    typer.echo(f"wrote {preview_episode(path, episode, out)}")


# `data shapes`, not `generate shapes`: `generate OUT_DIR` reads its first word as the directory, so a
# `shapes` subcommand there would either shadow a directory named shapes or turn `generate` into a
# group and break `airhockey generate data --episodes 200`.
@data_app.command("shapes")
@user_errors
def data_shapes(
    out_dir: Annotated[Path, typer.Argument(help="Dataset directory to create (new or empty).")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to write.")],
    shapes: Annotated[int, typer.Option(min=1, max=2, help="Shapes: 1 (a disk) or 2 (and a square).")] = 1,
    length: Annotated[int | None, typer.Option(min=2, help="Frames per episode. Default: 40.")] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed: the same seed, the same dataset.")] = 0,
    width: Annotated[int, typer.Option(min=16, help="Frame width in pixels.")] = 64,
    height: Annotated[int, typer.Option(min=16, help="Frame height in pixels.")] = 64,
    shard_size: Annotated[int, typer.Option(min=1, help="Episodes per shard file.")] = 50,
) -> None:
    """Write a moving-shapes sanity dataset (shapes bouncing in a box) in the shard format of 'generate'."""
    from airhockey.generate.shapes import ShapesConfig, generate_shapes

    settings = {"length": length} if length is not None else {}
    config = ShapesConfig(
        episodes, shapes, seed=seed, width=width, height=height, shard_size=shard_size, **settings
    )
    manifest = generate_shapes(config, out_dir)
    counts = zip(manifest["label_names"], manifest["class_counts"], strict=True)
    classes = ", ".join(f"{name} {count}" for name, count in counts)
    typer.echo(
        f"wrote {out_dir}/: {manifest['episodes']} episodes of {shapes} shape(s) ({classes}), "
        f"{manifest['frames']:,} frames in {len(manifest['shards'])} shards"
    )


# --------------------------------------------------------------------------------------- learn
# (learn commands: methods, pretext, predict, classify, compare; and pipeline). Every default is
# read from the config dataclasses of airhockey.learn.config (which does not import torch).
MethodOption = Annotated[str, typer.Option(help="Pretext method: a name from 'airhockey learn methods'.")]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help="A setting of the method: KEY=VALUE, nested ones as encoder.KEY=VALUE; repeatable. "
        "'airhockey learn methods NAME' lists them.",
        show_default=False,
    ),
]


def _command_line() -> str:
    return " ".join(["airhockey", *sys.argv[1:]])


def _method(name: str, settings: list[str] | None) -> Any:
    """The registered method ``name`` with ``settings`` applied over its defaults."""
    from airhockey.learn.config import apply_settings
    from airhockey.learn.methods import get_method

    method = get_method(name)
    return method(apply_settings(method.config_class(), settings or []))


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
    data: Annotated[Path, typer.Argument(help="Dataset directory written by 'airhockey generate'.")],
    out: Annotated[Path, typer.Option(help="Run folder to create, or with --resume to continue.")],
    method: MethodOption = "next_frame",
    settings: SetOption = None,
    steps: Annotated[
        int | None, typer.Option(min=1, help="Optimiser steps in all: the reproducible budget.")
    ] = PretextConfig.steps,
    minutes: Annotated[
        float | None,
        typer.Option(min=0.0, help="Wall-clock budget of this session's training and validations."),
    ] = PretextConfig.minutes,
    epochs: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Most epochs in all. Default: {PretextConfig.epochs}; unlimited with --steps or --minutes.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the initial weights and the sample order.")] = (
        PretextConfig.seed
    ),
    device: Annotated[str, typer.Option(help="Torch device: 'cpu' (reproducible) or 'cuda'.")] = (
        PretextConfig.device
    ),
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out where it stopped, with its own settings.")
    ] = False,
    threads: ThreadsOption = None,
    workers: Annotated[int, typer.Option(min=0, help="DataLoader worker processes.")] = PretextConfig.workers,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Samples per optimiser step.")
    ] = PretextConfig.batch_size,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW learning rate.")] = PretextConfig.lr,
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
    from airhockey.learn.pretext.trainer import STOP_REASONS, train_pretext

    config = PretextConfig(
        steps=steps,
        epochs=epochs or (None if (minutes or steps) else PretextConfig.epochs),
        minutes=minutes,
        batch_size=batch_size,
        lr=lr,
        patience=patience,
        split_seed=split_seed,
        seed=seed,
        device=device,
        workers=workers,
        frozen_encoder=frozen_encoder,
    )
    chosen = None if resume and method == "next_frame" and not settings else _method(method, settings)
    _set_threads(threads)
    m = train_pretext(data, out, chosen, config, resume=resume, progress=progress, command=_command_line())
    from airhockey.learn.methods import get_method

    described = get_method(m["method"]).from_dict(_run_config(out)).describe(m)
    typer.echo(f"{m['method']}: stopped after {m['steps']} steps, {STOP_REASONS[m['stopped_by']]}")
    typer.echo(f"best epoch {m['best_epoch']} (step {m['best_step']}): {described}")
    typer.echo(f"wrote {out}/ (best.pt, last.pt, log.csv, metrics.json, config.json)")


def _run_config(out: Path) -> dict[str, Any]:
    import json

    return json.loads((out / "config.json").read_text())["method_config"]


@learn_app.command("predict")
@user_errors
def learn_predict(
    run: Annotated[Path, typer.Argument(help="Pretext run folder or checkpoint file (a predictive method).")],
    data: Annotated[Path, typer.Option(help="Dataset directory or shard file.")],
    episode: EpisodeIndex = 0,
    out: Annotated[Path, typer.Option(help="Video file to write: .mp4 or .gif.")] = Path("pred.mp4"),
    steps: Annotated[int, typer.Option(min=1, help="How far ahead the rollout panel predicts.")] = 4,
    device: Annotated[str, typer.Option(help="Torch device: 'cpu' or 'cuda'.")] = "cpu",
) -> None:
    """Write an episode as three titled panels: truth, one-step prediction, --steps frames ahead."""
    from airhockey.learn.pretext.prediction import predict_dataset_episode

    path = predict_dataset_episode(run, data, episode, out, steps, device)
    typer.echo(f"wrote {path} (truth | one step ahead | {steps} steps ahead, predictions fed back)")


# Options shared by the classifier commands (classify, compare); defaults are ClassifyConfig's.
EpochsOption = Annotated[int, typer.Option(min=1, help="Epochs in all, frozen ones included.")]
FreezeEpochsOption = Annotated[
    int, typer.Option(min=0, help="First epochs with the encoder frozen (only the head trains).")
]
LrOption = Annotated[float, typer.Option(min=0.0, help="AdamW learning rate of the head.")]
EncoderLrOption = Annotated[
    float, typer.Option(min=0.0, help="AdamW learning rate of the encoder once unfrozen.")
]
FrameStrideOption = Annotated[
    int, typer.Option(min=1, help="Train on every N-th frame of each episode (testing reads all).")
]
BatchSizeOption = Annotated[int, typer.Option(min=1, help="Frames per optimiser step.")]
MinEpochFramesOption = Annotated[
    int,
    typer.Option(min=1, help="Frames an epoch draws at least, passing over few labelled frames repeatedly."),
]
AfterHitOption = Annotated[
    bool,
    typer.Option(help="Also train and score on frames with a lit button (they give the label away)."),
]
ThreadsOption = Annotated[
    int | None,
    typer.Option(
        min=1,
        help="Torch CPU threads. Default: 1; more help only on cores nothing else uses "
        "(on 2 shared cores, 2 threads ran 6-10x slower than 1: benchmarks/torch_threads.py).",
    ),
]
DeviceOption = Annotated[str, typer.Option(help="Torch device: 'cpu' (reproducible) or 'cuda'.")]


def _set_threads(threads: int | None) -> None:
    """Sets torch's CPU threads: ``threads``, or by default 1, the one count that cannot collapse.

    Each torch operation waits for all its threads; when another process holds a core, the
    waits dominate. Measured by benchmarks/torch_threads.py on 2 shared cores: a training step
    with 2 threads took 6.5-9.8 times as long as with 1, whatever the extra load.
    """
    import torch

    torch.set_num_threads(threads or 1)


def _echo_comparison(results: dict[str, Any]) -> None:
    from airhockey.learn.protocol.report import conclusions

    typer.echo("\n".join(conclusions(results)))


def _classify_config(options: dict[str, Any]) -> Any:
    """The ``ClassifyConfig`` of a command's options (its ``locals()``): each field from its namesake."""
    import dataclasses

    return ClassifyConfig(
        **{f.name: options[f.name] for f in dataclasses.fields(ClassifyConfig) if f.name in options}
    )


@learn_app.command("classify")
@user_errors
def learn_classify(
    data: Annotated[Path, typer.Argument(help="Dataset directory written by 'airhockey generate'.")],
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
    epochs: EpochsOption = ClassifyConfig.epochs,
    freeze_epochs: FreezeEpochsOption = ClassifyConfig.freeze_epochs,
    lr: LrOption = ClassifyConfig.lr,
    encoder_lr: EncoderLrOption = ClassifyConfig.encoder_lr,
    frame_stride: FrameStrideOption = ClassifyConfig.frame_stride,
    batch_size: BatchSizeOption = ClassifyConfig.batch_size,
    min_epoch_frames: MinEpochFramesOption = ClassifyConfig.min_epoch_frames,
    include_after_hit: AfterHitOption = ClassifyConfig.include_after_hit,
    hidden: Annotated[int, typer.Option(min=1, help="Units of the classifier's hidden layer.")] = (
        CompareConfig.hidden
    ),
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

    config = _classify_config(locals())
    _set_threads(threads)
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
        command=_command_line(),
    )
    frames = "all frames" if include_after_hit else "frames before the hit"
    typer.echo(
        f"{m['labelled_episodes']} labelled episodes ({m['train_frames']} frames): test accuracy "
        f"{m['accuracy']:.1%} on {m['test_frames']} {frames} of the test episodes; on frames with a lit "
        f"button {m['accuracy_after_hit']:.1%}"
    )
    typer.echo(f"wrote {out}/ (model.pt, log.csv, metrics.json, config.json)")


@learn_app.command("compare")
@user_errors
def learn_compare(
    data: Annotated[Path, typer.Argument(help="Dataset directory written by 'airhockey generate'.")],
    out: Annotated[
        Path, typer.Option(help="Report folder to create (or one to finish, or to extend with other k).")
    ],
    arm: Annotated[
        list[str] | None,
        typer.Option(
            help="An arm: 'scratch' or a pretext run folder whose encoder the classifiers load; repeatable.",
            show_default=False,
        ),
    ] = None,
    reference: Annotated[
        str, typer.Option(help="The arm the others are paired against: 'scratch' or a run folder's name.")
    ] = SCRATCH,
    budgets: Annotated[
        str, typer.Option(help="Labelled training episodes per run, comma-separated; 'all' for every one.")
    ] = ",".join("all" if b is None else str(b) for b in CompareConfig.budgets),
    repeats: Annotated[
        int, typer.Option(min=2, help="Runs per budget and arm, each on another subset with another seed.")
    ] = CompareConfig.repeats,
    seed: Annotated[int, typer.Option(min=0, help="Root seed of the subsets and runs.")] = CompareConfig.seed,
    device: DeviceOption = ClassifyConfig.device,
    epochs: EpochsOption = ClassifyConfig.epochs,
    freeze_epochs: FreezeEpochsOption = ClassifyConfig.freeze_epochs,
    lr: LrOption = ClassifyConfig.lr,
    encoder_lr: EncoderLrOption = ClassifyConfig.encoder_lr,
    frame_stride: FrameStrideOption = ClassifyConfig.frame_stride,
    batch_size: BatchSizeOption = ClassifyConfig.batch_size,
    min_epoch_frames: MinEpochFramesOption = ClassifyConfig.min_epoch_frames,
    include_after_hit: AfterHitOption = ClassifyConfig.include_after_hit,
    hidden: Annotated[int, typer.Option(min=1, help="Units of the classifier's hidden layer.")] = (
        CompareConfig.hidden
    ),
    scratch_schedule: Annotated[
        str,
        typer.Option(
            help="'same': the scratch arm runs the exact schedule (random encoder frozen, then at "
            "--encoder-lr); 'unfrozen': its encoder trains from the start at --lr."
        ),
    ] = CompareConfig.scratch_schedule,
    after_hit_effect: Annotated[
        bool, typer.Option(help="Run the largest budget again with the other --include-after-hit setting.")
    ] = CompareConfig.after_hit_effect,
    validation: Annotated[
        str,
        typer.Option(
            help="Episodes that pick each run's best epoch: 'budget' (a quarter of the run's own labelled "
            "episodes; none below 8) or 'split' (the split's validation episodes, not counted in budgets)."
        ),
    ] = CompareConfig.validation,
    frames_k: Annotated[
        str,
        typer.Option(
            help="Context frames k to run the --frames-k-budget with too, comma-separated (e.g. 2,4,8)."
        ),
    ] = ",".join(str(k) for k in CompareConfig.frames_k),
    frames_k_budget: Annotated[
        int | None,
        typer.Option(min=1, help="The budget of the k > 1 runs, one of --budgets (default: the largest)."),
    ] = CompareConfig.frames_k_budget,
    search_lrs: Annotated[
        str,
        typer.Option(
            help="A hyperparameter search for every arm: head learning rates (comma-separated), each with "
            "the encoder unfrozen or frozen-then-unfrozen; '' for none."
        ),
    ] = ",".join(f"{lr:g}" for lr in CompareConfig.search_lrs),
    search_budget: Annotated[
        int, typer.Option(min=1, help="Labelled episodes of the search's runs.")
    ] = CompareConfig.search_budget,
    search_draws: Annotated[int, typer.Option(min=1, help="Draws the search runs each candidate on.")] = (
        CompareConfig.search_draws
    ),
    oracle: Annotated[
        bool,
        typer.Option(help="Also train the ceiling: the same head, and boosted trees, on the true state."),
    ] = CompareConfig.oracle,
    probes: Annotated[
        bool, typer.Option(help="Also probe each arm's frozen encoder for the true positions and velocity.")
    ] = CompareConfig.probes,
    test_data: Annotated[
        Path | None,
        typer.Option(help="A separately generated dataset to test on (its seeds disjoint from DATA's)."),
    ] = None,
    backend: BackendOption = Backend.kind,
    ray_address: RayAddressOption = Backend.ray_address,
    ray_cpus_per_task: RayCpusOption = Backend.cpus_per_task,
    workers: Annotated[
        int, typer.Option(min=1, help="With --backend local: processes running classifiers (1: this one).")
    ] = 1,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Compare direction classifiers whose encoders start from pretext runs, or from scratch, over label
    budgets and repeats.

    Writes OUT/results.json, accuracy_vs_budget.png, accuracy_by_position.png, learning_curves.png,
    report.md and runs.jsonl; run it again into the same OUT to finish an interrupted comparison, or
    with other --frames-k / --frames-k-budget / --after-hit-effect to extend a finished one (its runs
    are reused).
    """
    from airhockey.learn.config import parse_budgets, parse_counts, parse_rates
    from airhockey.learn.protocol.compare import compare_on_dataset

    if not arm:
        raise UserError("give at least one --arm: a pretext run folder (and 'scratch', added by default)")
    training = _classify_config(locals())  # its seed: each repeat's replaces it
    config = CompareConfig(
        budgets=parse_budgets(budgets),
        repeats=repeats,
        training=training,
        hidden=hidden,
        scratch_schedule=scratch_schedule,
        after_hit_effect=after_hit_effect,
        validation=validation,
        frames_k=parse_counts(frames_k, "--frames-k"),
        frames_k_budget=frames_k_budget,
        search_lrs=parse_rates(search_lrs),
        search_budget=search_budget,
        search_draws=search_draws,
        oracle=oracle,
        probes=probes,
        seed=seed,
    )
    _set_threads(threads)
    results = compare_on_dataset(
        data,
        arm,
        out,
        config,
        reference=reference,
        test_data=test_data,
        backend=Backend(
            backend,
            ray_address,
            cpus_per_task=ray_cpus_per_task,
            gpus_per_task=1.0 if backend == "ray" and device.startswith("cuda") else 0.0,
        ),
        workers=workers,
        progress=progress,
        command=_command_line(),
    )
    _echo_comparison(results)
    typer.echo(f"wrote {out}/ (results.json, report.md and three plots) in {results['seconds'] / 60:.1f} min")


@learn_app.command("benchmark")
@user_errors
def learn_benchmark(
    out: Annotated[
        Path, typer.Argument(help="Folder for the data, the pretext runs, the comparison, the leaderboard.")
    ],
    methods: Annotated[
        str, typer.Option(help="'all' (every registered method) or names separated by commas.")
    ] = "all",
    labels: Annotated[
        str,
        typer.Option(help="'leftright', 'all' (five buttons) or 'both' (into OUT/leftright and OUT/all)."),
    ] = "leftright",
    quick: Annotated[
        bool, typer.Option("--quick", help="A tiny run that checks the machinery in minutes: not results.")
    ] = False,
    full: Annotated[
        bool,
        typer.Option(
            "--full", help="The protocol's full settings (3 pretext seeds, 10 draws...): for a GPU."
        ),
    ] = False,
    steps: Annotated[
        int | None,
        typer.Option(min=1, help="Override: optimiser steps of every pretext run.", show_default=False),
    ] = None,
    seeds: Annotated[
        str | None,
        typer.Option(help="Override: pretext seeds per method, comma-separated.", show_default=False),
    ] = None,
    budgets: Annotated[
        str | None, typer.Option(help="Override: label budgets, e.g. 1,4,16,all.", show_default=False)
    ] = None,
    repeats: Annotated[
        int | None, typer.Option(min=2, help="Override: draws per budget and arm.", show_default=False)
    ] = None,
    frames_k: Annotated[
        str | None, typer.Option(help="Override: extra context frames k, e.g. 4.", show_default=False)
    ] = None,
    frames_k_budget: Annotated[
        int | None,
        typer.Option(
            min=1, help="Override: the budget of the k > 1 runs (one of the budgets).", show_default=False
        ),
    ] = None,
    scratch_schedule: Annotated[
        str | None,
        typer.Option(help="Override: the scratch arm's schedule, 'same' or 'unfrozen'.", show_default=False),
    ] = None,
    device: DeviceOption = "cpu",
    backend: BackendOption = Backend.kind,
    ray_address: RayAddressOption = Backend.ray_address,
    ray_cpus_per_task: RayCpusOption = Backend.cpus_per_task,
    workers: Annotated[
        int, typer.Option(min=1, help="With --backend local: processes for pretext and classifier runs.")
    ] = 1,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Every pretext method (or --methods) through the comparison protocol: OUT/leaderboard.md.

    Generates (or reuses) the training and test data, trains each method's pretext runs for the
    same number of steps, compares them with scratch and the oracle, and writes the leaderboard.
    Run it again to finish an interrupted benchmark. Settings: airhockey.learn.protocol.benchmark.CPU,
    FULL with --full, QUICK with --quick.
    """
    import dataclasses

    from airhockey.learn.protocol.benchmark import CPU, FULL, QUICK, parse_methods, run_benchmark

    if quick and full:
        raise UserError("choose one of --quick and --full")
    if labels not in ("leftright", "all", "both"):
        raise UserError(f"--labels must be 'leftright', 'all' or 'both', got {labels!r}")
    from airhockey.learn.config import parse_budgets, parse_counts

    base = QUICK if quick else FULL if full else CPU
    compare = dataclasses.replace(
        base.compare, training=dataclasses.replace(base.compare.training, device=device)
    )
    overrides = {
        "budgets": None if budgets is None else parse_budgets(budgets),
        "repeats": repeats,
        "frames_k": None if frames_k is None else parse_counts(frames_k, "--frames-k"),
        "frames_k_budget": frames_k_budget,
        "scratch_schedule": scratch_schedule,
    }
    compare = dataclasses.replace(compare, **{k: v for k, v in overrides.items() if v is not None})
    base = dataclasses.replace(
        base,
        methods=parse_methods(methods),
        pretext=dataclasses.replace(base.pretext, device=device, steps=steps or base.pretext.steps),
        pretext_seeds=base.pretext_seeds if seeds is None else parse_counts(seeds, "--seeds", minimum=0),
        compare=compare,
    )
    where = Backend(
        backend,
        ray_address,
        cpus_per_task=ray_cpus_per_task,
        gpus_per_task=1.0 if backend == "ray" and device.startswith("cuda") else 0.0,
    )
    if quick:
        typer.echo("--quick: a smoke test of the machinery; its numbers are not results")
    _set_threads(threads)
    for label_set in ("leftright", "all") if labels == "both" else (labels,):
        board = run_benchmark(
            out / label_set if labels == "both" else out,
            base.with_labels(label_set),
            smoke_test=quick,
            backend=where,
            workers=workers,
            progress=progress,
            command=_command_line(),
            say=typer.echo,
        )
        for row in board["rows"]:
            cells = ", ".join(f"{k}: {100 * v['accuracy_mean']:.1f}%" for k, v in row["accuracy"].items())
            typer.echo(f"{label_set} {row['arm']}: {cells}")


@app.command("pipeline")
@user_errors
def pipeline_command(
    out: Annotated[Path, typer.Argument(help="Folder for the data, the pretext run and the report.")],
    quick: Annotated[
        bool, typer.Option("--quick", help="A small run that shows every output in minutes on 2 CPU cores.")
    ] = False,
    policy: Annotated[
        str,
        typer.Option(
            help="Policy that plays the episodes: 'bundled', a saved agent's run folder or model .zip "
            "(unpickled: pass only files you trust), or 'scripted'."
        ),
    ] = "bundled",
    method: Annotated[
        str | None,
        typer.Option(help="Pretext method: a name from 'airhockey learn methods'. Default: next_frame."),
    ] = None,
    settings: SetOption = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed of the data, the pretext run and the comparison.")
    ] = 0,
    device: DeviceOption = "cpu",
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Processes generating the data. Default: the available CPU cores."),
    ] = None,
    threads: ThreadsOption = None,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Generate a dataset, train a pretext method on it, and compare its classifier with scratch: the study.

    Run it again with the same arguments to finish an interrupted run. The settings are
    airhockey.learn.protocol.pipeline.FULL, or QUICK with --quick.
    """
    import dataclasses

    from airhockey.learn.protocol.pipeline import FULL, QUICK, MethodChoice, run_pipeline

    config = (QUICK if quick else FULL).with_overrides(policy=policy, seed=seed, device=device)
    if method or settings:
        config = dataclasses.replace(
            config, method=MethodChoice(method or config.method.name, tuple(settings or ()))
        )
    config.method.build()  # a bad method or setting fails here, before any file is written
    if quick:
        typer.echo("--quick: a smoke test of the machinery; its numbers are not results")
    _set_threads(threads)
    results = run_pipeline(
        out,
        config,
        smoke_test=quick,
        workers=workers,
        progress=progress,
        command=_command_line(),
        say=typer.echo,
    )
    _echo_comparison(results)
    typer.echo(f"wrote {out}/report/report.md")


def main() -> None:  # pragma: no cover - console entry point
    app(prog_name="airhockey")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
