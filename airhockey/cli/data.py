"""``airhockey generate`` and ``airhockey data``: write, inspect, verify and preview datasets.

Defaults are ``GenerateConfig``'s and ``ShapesConfig``'s.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from airhockey.backends import Backend
from airhockey.cli.common import (
    BackendOption,
    EpisodeIndex,
    RayAddressOption,
    RayCpusOption,
    VideoHelp,
    user_errors,
)
from airhockey.generate.config import GenerateConfig, ShapesConfig

data_app = typer.Typer(
    help="Inspect, verify, preview and export generated datasets, or view many episodes on one page; "
    "write the moving-shapes sanity set.",
    no_args_is_help=True,
)
WidthOption = Annotated[int, typer.Option(min=16, help="Frame width in pixels.")]
HeightOption = Annotated[int, typer.Option(min=16, help="Frame height in pixels.")]
ShardSizeOption = Annotated[int, typer.Option(min=1, help="Episodes per shard file.")]


@user_errors
def generate_command(
    out_dir: Annotated[Path, typer.Argument(help="Dataset directory to create or, with --resume, complete.")],
    episodes: Annotated[int, typer.Option(min=1, help="Labelled episodes to write.")],
    workers: Annotated[
        int | None,
        typer.Option(min=1, help="Worker processes (local backend). Default: the available CPU cores."),
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="Generator seed: the same seed, the same dataset.")
    ] = GenerateConfig.seed,
    width: WidthOption = GenerateConfig.width,
    height: HeightOption = GenerateConfig.height,
    camera: Annotated[str, typer.Option(help="Camera: 'top' or 'perspective'.")] = GenerateConfig.camera,
    labels: Annotated[
        str | None,
        typer.Option(
            help="'leftright': classes left/right (buttons 0 and 4), other outcomes discarded; "
            f"'all': class k is button k, misses discarded. Default: {GenerateConfig.labels!r}, or "
            "the task's.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        str | None,
        typer.Option(
            help="'bundled' or 'bundled-all' (the shipped agents, for targets leftright and all), a saved "
            "agent's run folder or model .zip (unpickled: pass only files you trust), or 'scripted' (a "
            "hand-written baseline controller); default: the bundled agent for --labels.",
            show_default=False,
        ),
    ] = GenerateConfig.policy,
    shard_size: ShardSizeOption = GenerateConfig.shard_size,
    task: Annotated[
        str | None,
        typer.Option(
            help="A task preset (airhockey.tasks.TASKS: leftright, buttons5, leftright_hard, buttons5_hard, "
            "leftright_layouts); it sets the labels, policies, nuisances and layouts, and --labels or "
            "--policy may only repeat its values.",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            help="With --task: 'train' or 'test' data (a task with held-out layouts draws them from "
            "disjoint sets)."
        ),
    ] = "train",
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
    from airhockey.errors import UserError
    from airhockey.generate import generate
    from airhockey.tasks import get_task

    frame = {"width": width, "height": height, "camera": camera, "shard_size": shard_size}
    if task is not None:
        config = get_task(task).generate_config(episodes, seed, split, labels=labels, policy=policy, **frame)
    elif split != "train":
        raise UserError("--split chooses the data of a task: give --task too")
    else:
        config = GenerateConfig(
            episodes=episodes, seed=seed, labels=labels or GenerateConfig.labels, policy=policy, **frame
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
    out: Annotated[Path, typer.Option(help=VideoHelp)] = Path("clip.mp4"),
) -> None:
    """Write one episode as a video, its label drawn above the frames."""
    from airhockey.generate import preview_episode

    typer.echo(f"wrote {preview_episode(path, episode, out)}")


@data_app.command("gallery")
@user_errors
def data_gallery(
    path: Annotated[Path, typer.Argument(help="Dataset directory or shard file.")],
    out: Annotated[Path, typer.Option(help="The page to write: an .html file.")] = Path("gallery.html"),
    episodes: Annotated[
        int, typer.Option(min=1, help="At most this many episodes, drawn at random (bounds the page's size).")
    ] = 48,
    seed: Annotated[int, typer.Option(min=0, help="Seed of the draw of episodes.")] = 0,
) -> None:
    """Write one self-contained HTML page of episodes as looping clips with label, button hit and
    strike/hit frames, filterable by label."""
    from airhockey.generate.gallery import write_gallery

    page = write_gallery(path, out, episodes=episodes, seed=seed)
    counts = ", ".join(f"{name} {count}" for name, count in page.counts.items())
    typer.echo(f"wrote {page.out}: {page.shown} of {page.total} episodes ({counts}), {page.size:,} bytes")


@data_app.command("export")
@user_errors
def data_export(
    path: Annotated[Path, typer.Argument(help="Dataset directory of 'airhockey generate'.")],
    out: Annotated[Path, typer.Argument(help="Directory to write (new or empty).")],
    to: Annotated[
        str,
        typer.Option(
            "--to",
            help="'minari' (a Minari datasets root: MINARI_DATASETS_PATH=OUT) or 'hf' (Hugging Face "
            "datasets, save_to_disk). Needs the 'export' extra. No 'lerobot': its library requires an "
            "older torch.",
        ),
    ],
    dataset_id: Annotated[
        str | None,
        typer.Option(
            help="With --to minari: the dataset id, namespace/name-vN. Default: airhockey/<DATA's name>-v0.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Export every episode, replayed from its seed, with frames bit for bit, labels, events,
    actions, rewards, terminations and the frame rate, for Minari or Hugging Face datasets."""
    from airhockey.generate.export import export_dataset

    done = export_dataset(path, to, out, dataset_id)
    if done.format == "minari":
        how = f"MINARI_DATASETS_PATH={done.out} and minari.load_dataset({done.dataset_id!r})"
    else:
        how = f"datasets.load_from_disk({str(done.out)!r})"
    typer.echo(f"wrote {done.out}/: {done.episodes} episodes at {done.fps:g} fps; read it with {how}")


# `data shapes`, not `generate shapes`: `generate OUT_DIR` reads its first word as the directory, so a
# `shapes` subcommand there would either shadow a directory named shapes or turn `generate` into a
# group and break `airhockey generate data --episodes 200`.
@data_app.command("shapes")
@user_errors
def data_shapes(
    out_dir: Annotated[Path, typer.Argument(help="Dataset directory to create (new or empty).")],
    episodes: Annotated[int, typer.Option(min=1, help="Episodes to write.")],
    shapes: Annotated[
        int, typer.Option(min=1, max=2, help="Shapes: 1 (a disk) or 2 (and a square).")
    ] = ShapesConfig.shapes,
    length: Annotated[int, typer.Option(min=2, help="Frames per episode.")] = ShapesConfig.length,
    seed: Annotated[
        int, typer.Option(min=0, help="Seed: the same seed, the same dataset.")
    ] = ShapesConfig.seed,
    width: WidthOption = ShapesConfig.width,
    height: HeightOption = ShapesConfig.height,
    shard_size: ShardSizeOption = ShapesConfig.shard_size,
) -> None:
    """Write a moving-shapes sanity dataset (shapes bouncing in a box) in the shard format of 'generate'."""
    from airhockey.generate.shapes import generate_shapes

    config = ShapesConfig(
        episodes, shapes, length=length, seed=seed, width=width, height=height, shard_size=shard_size
    )
    manifest = generate_shapes(config, out_dir)
    counts = zip(manifest["label_names"], manifest["class_counts"], strict=True)
    classes = ", ".join(f"{name} {count}" for name, count in counts)
    typer.echo(
        f"wrote {out_dir}/: {manifest['episodes']} episodes of {shapes} shape(s) ({classes}), "
        f"{manifest['frames']:,} frames in {len(manifest['shards'])} shards"
    )
