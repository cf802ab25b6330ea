"""Speed of ``airhockey generate`` against the raw render rate of the env's own model.

Prints one table: the raw render rate of one process (``mujoco.Renderer.update_scene`` + ``render``
at the frame size, with ``LP_NUM_THREADS=0`` as ``import airhockey`` sets it headless), the
end-to-end labelled frames/s of ``generate`` with 1 and 2 workers (wall clock from the call to the
finished manifest: worker start-up, policy, physics, rendering, compression and writing all count)
and their ratio to raw rate x workers (target >= 0.7 with 2 workers), the summed raw render rate of
two processes rendering at once (what two cores of this machine give together), and the clips/s of a
shuffled clip DataLoader with 2 workers over the result.

A second reference is measured beside the raw render: the raw physics + render rate, a frame's
``mujoco.mj_step(model, data, nstep=frame_skip)`` (a control step of the env's physics) followed by
the raw render. Every stored frame needs both, so the ratio to it is the part of the gap that is
not physics: the env's Python, the policy, recording, compression and writing.

This machine's speed drifts by tens of percent from one minute to the next, so each generate run
is paired with the raw rate measured just before and just after it: its ratio is to the mean of
those two, and the whole sequence (raw, 1 worker, raw, 2 workers, raw) is repeated ``--repeats``
times; the table gives the median and the range over the repeats, and, as the least favourable
reading, each median rate against the highest raw rate seen in the whole run. The CPU columns (CPU
time of this process and its workers per frame, and the raw render's CPU time per frame over it)
are what other load disturbs least.

    python benchmarks/generate_speed.py [--episodes 1000] [--repeats 3] [--size 64] [--policy auto]

``--only ray`` prints a second table instead: generation on the local backend (as many workers as
CPU cores) against the Ray backend on a Ray instance of as many CPUs on this machine, run in turn
``--repeats`` times (the ratio is per pair), with the Ray instance started once beforehand, as a
cluster is; the overhead of a Ray task that does nothing but return a shard's bytes, the driver's
write rate alone (storing received shards and rewriting the manifest, with no generation), and
how many nodes like this one the driver can feed from those rates (``docs/scale.md``).

    python benchmarks/generate_speed.py --only ray --episodes 2000 --repeats 3
"""

from __future__ import annotations

# isort: off
import airhockey  # first: selects the headless GL backend before MuJoCo loads

# isort: on
import argparse
import dataclasses
import multiprocessing
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
from common import print_table, rate

from airhockey.errors import UserError
from airhockey.generate import GenerateConfig, generate, policy_identity

RAW_FRAMES = 2000
"""Frames per raw render measurement (best of 3 timings)."""


def choose_policy(spec: str) -> str:
    """``auto``: the bundled agent where it is installed, else the scripted controller."""
    if spec != "auto":
        return spec
    try:
        policy_identity("bundled")
    except UserError:
        return "scripted"
    return "bundled"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--episodes", type=int, default=1000, help="labelled episodes per generate run")
    parser.add_argument("--repeats", type=int, default=3, help="times the raw/generate sequence is run")
    parser.add_argument("--size", type=int, default=64, help="frame width and height in pixels")
    parser.add_argument("--policy", default="auto", help="'auto', 'bundled', 'scripted' or a path")
    parser.add_argument("--clip", type=int, default=10, help="frames per clip for the DataLoader")
    parser.add_argument("--only", choices=["ray"], help="'ray': only the Ray backend's table")
    args = parser.parse_args()
    policy = choose_policy(args.policy)
    gl = {name: os.environ.get(name) for name in ("MUJOCO_GL", "LP_NUM_THREADS")}
    print(f"policy: {policy}; {gl}")
    if args.only == "ray":
        ray_table(
            GenerateConfig(args.episodes, width=args.size, height=args.size, policy=policy), args.repeats
        )
        return

    raw_render = raw_renderer(args.size)
    raw_step_render = raw_renderer(args.size, physics=True)
    raw_cpus: list[float] = []
    step_raws: list[float] = []

    def measure_raw() -> float:
        start = cpu_seconds()
        frames_per_s = rate(raw_render, RAW_FRAMES)
        raw_cpus.append((cpu_seconds() - start) / (3 * RAW_FRAMES))  # rate() times it 3 times
        step_raws.append(rate(raw_step_render, RAW_FRAMES))
        return frames_per_s

    config = GenerateConfig(args.episodes, width=args.size, height=args.size, policy=policy)
    raws = [measure_raw()]
    runs: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    together = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for workers in (1, 2):
                out = Path(tmp) / f"w{workers}-{repeat}"
                start, start_cpu = time.perf_counter(), cpu_seconds()
                manifest = generate(config, out, workers=workers, progress=False)
                frames_per_s = manifest["frames"] / (time.perf_counter() - start)
                cpu_per_frame = (cpu_seconds() - start_cpu) / manifest["frames"]
                raws.append(measure_raw())
                runs[workers].append(
                    {
                        "rate": frames_per_s,
                        "ratio": frames_per_s / (workers * (raws[-2] + raws[-1]) / 2),
                        "step_ratio": frames_per_s / (workers * (step_raws[-2] + step_raws[-1]) / 2),
                        "cpu": cpu_per_frame,
                        "discarded": sum(manifest["discards"].values()) / manifest["attempts"],
                    }
                )
            together.append(raw_render_together(2, args.size) / (2 * raws[-1]))
        clips = clip_rate(Path(tmp) / "w1-0", args.clip)
    best_raw, raw_cpu = max(raws), min(raw_cpus)

    def spread(values: list[float], fmt: str = "{:.2f}") -> str:
        low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
        return f"{mid} ({low}-{high})"

    step_vs_render = [step / render for step, render in zip(step_raws, raws, strict=True)]
    rows: list[list[object]] = [
        ["raw render, 1 process", spread(raws, "{:,.1f}"), "1.00", "", "", 1e6 * raw_cpu, "1.00", ""],
        [
            "raw physics + render, 1 process",
            spread(step_raws, "{:,.1f}"),
            spread(step_vs_render),
            "",
            "1.00",
            "",
            "",
            "",
        ],
        ["raw render, 2 processes at once (sum)", "", spread(together), "", "", "", "", ""],
    ]
    for workers, results in runs.items():
        rates = [r["rate"] for r in results]
        cpu = statistics.median(r["cpu"] for r in results)
        discarded = statistics.median(r["discarded"] for r in results)
        rows.append(
            [
                f"generate, {workers} worker(s), {discarded:.0%} of attempts discarded",
                spread(rates, "{:,.1f}"),
                spread([r["ratio"] for r in results]),
                f"{statistics.median(rates) / (workers * best_raw):.2f}",
                spread([r["step_ratio"] for r in results]),
                1e6 * cpu,
                f"{raw_cpu / cpu:.2f}",
                ">= 0.7" if workers == 2 else "",
            ]
        )
    rows.append(["clip DataLoader, 2 workers (clips/s)", f"{clips:,.1f}", "", "", "", "", "", ""])
    print(f"raw render runs (frames/s, in order): {', '.join(f'{r:,.1f}' for r in raws)}")
    print_table(
        f"generate speed, {args.size}x{args.size} frames, {args.episodes} episodes per run, "
        f"{args.repeats} repeats, policy {policy}; median (range)",
        [
            "measure",
            "frames/s",
            "ratio to adjacent raw x workers",
            "ratio to best raw x workers",
            "ratio to adjacent raw physics + render x workers",
            "CPU us/frame",
            "CPU ratio",
            "target",
        ],
        rows,
    )


def ray_table(config: GenerateConfig, repeats: int) -> None:
    """Prints the Ray backend's table and the projection (see the module's docstring)."""
    from airhockey.backends import Backend, available_cpus, connect_ray

    start = time.perf_counter()
    ray = connect_ray(None)
    cpus = ray.cluster_resources()["CPU"]
    print(f"Ray instance started in {time.perf_counter() - start:.1f} s, {cpus:.0f} CPUs")
    workers = available_cpus()
    runs: dict[str, list[float]] = {"local": [], "ray": []}
    ratios = []
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(repeats):
            manifests = {}
            for name, where in (("local", {"workers": workers}), ("ray", {"backend": Backend("ray")})):
                out = Path(tmp) / f"{name}-{repeat}"
                start = time.perf_counter()
                manifests[name] = generate(config, out, progress=False, **where)
                runs[name].append(manifests[name]["frames"] / (time.perf_counter() - start))
            ratios.append(runs["ray"][-1] / runs["local"][-1])
            if manifests["ray"] != manifests["local"]:
                raise RuntimeError("the Ray backend wrote other shards than the local backend")
        shards = manifests["ray"]["shards"]
        frames_per_shard = statistics.median(s["frames"] for s in shards)
        shard_bytes = int(statistics.median(s["bytes"] for s in shards))
        overhead_ms, round_trip_ms = ray_task_overhead(ray, shard_bytes)
        store = store_ms(Path(tmp) / f"ray-{repeats - 1}", Path(tmp))
        rewrite = {n: manifest_ms(config, Path(tmp) / "ray-0", Path(tmp), n) for n in (len(shards), 2000)}

    def spread(values: list[float], fmt: str) -> str:
        low, mid, high = (fmt.format(v) for v in (min(values), statistics.median(values), max(values)))
        return f"{mid} ({low}-{high})"

    ray_rate = statistics.median(runs["ray"])
    rows: list[list[object]] = [
        [f"generate, local backend, {workers} workers", spread(runs["local"], "{:,.1f}"), "1.00", "", ""],
        [
            f"generate, Ray backend, {workers} CPUs, a task per shard",
            spread(runs["ray"], "{:,.1f}"),
            spread(ratios, "{:.2f}"),
            f"{1000 * frames_per_shard / ray_rate * workers:,.1f} (a whole task)",
            ">= 0.9",
        ],
        [f"Ray task that only returns {shard_bytes:,} bytes, {workers} at once", "", "", overhead_ms, ""],
        ["  the same, one at a time (round trip)", "", "", round_trip_ms, ""],
        ["driver alone: store a received shard (check, write, fsync, rename)", "", "", store, ""],
    ]
    rows += [
        [f"driver alone: rewrite the manifest, {listed:,} shards listed (ms per rewrite)", "", "", ms, ""]
        for listed, ms in rewrite.items()
    ]
    print_table(
        f"generate on Ray, {config.width}x{config.height} frames, {config.episodes} episodes per run, "
        f"{config.shard_size} per shard ({frames_per_shard:,.0f} frames, {shard_bytes:,} bytes), "
        f"{repeats} repeats, policy {config.policy}; median (range)",
        ["measure", "frames/s", "ratio to local (paired)", "ms", "target"],
        [[f"{c:.2f}" if isinstance(c, float) else c for c in row] for row in rows],
    )
    for listed, ms in rewrite.items():
        # Each second the driver stores every shard that arrives and rewrites the manifest once.
        shards_per_s = (1000 - ms) / (store + overhead_ms)
        driver = shards_per_s * frames_per_shard
        print(
            f"projection, {listed:,} shards listed: the driver stores {shards_per_s:,.0f} shards/s "
            f"((1000 - {ms:.1f}) / ({store:.2f} + {overhead_ms:.2f}) ms) = {driver:,.0f} frames/s; "
            f"this machine plays {ray_rate:,.0f} frames/s on Ray ({ray_rate / workers:,.0f} per CPU): "
            f"the driver feeds {driver / ray_rate:.0f} such nodes, {driver / (ray_rate / workers):.0f} CPUs"
        )


def _shard_sized(size: int) -> bytes:
    """A Ray task that does nothing but return ``size`` bytes, as a shard task returns its file."""
    return bytes(size)


def ray_task_overhead(ray: Any, size: int, tasks: int = 200) -> tuple[float, float]:
    """Milliseconds per task of tasks that only return ``size`` bytes: through ``run_tasks`` on all
    CPUs (wall time / tasks: the cost of a task to the driver and Ray), and one at a time (the round
    trip); medians of 3 timings each, after a warm-up."""
    from airhockey.backends import Backend, run_tasks

    def batch() -> float:
        start = time.perf_counter()
        for _ in run_tasks(_shard_sized, [size] * tasks, backend=Backend("ray")):
            pass
        return 1000 * (time.perf_counter() - start) / tasks

    remote = ray.remote(_shard_sized)

    def one_by_one() -> float:
        start = time.perf_counter()
        for _ in range(tasks // 4):
            ray.get(remote.remote(size))
        return 1000 * (time.perf_counter() - start) / (tasks // 4)

    batch(), one_by_one()
    return statistics.median(batch() for _ in range(3)), statistics.median(one_by_one() for _ in range(3))


def store_ms(shard_dir: Path, tmp: Path) -> float:
    """Milliseconds per shard of ``store_shard`` (the driver's write of a received shard: SHA-256
    check, write, fsync, rename) on the shards of ``shard_dir`` held in memory; median of 3 passes."""
    from airhockey.generate.executor import store_shard
    from airhockey.generate.manifest import read_manifest, shard_entries

    entries = shard_entries(read_manifest(shard_dir))
    data = [(shard_dir / e.file).read_bytes() for e in entries]
    timings = []
    for _ in range(3):
        with tempfile.TemporaryDirectory(dir=tmp) as dest:
            start = time.perf_counter()
            for entry, blob in zip(entries, data, strict=True):
                store_shard(Path(dest), entry, blob)
            timings.append(1000 * (time.perf_counter() - start) / len(entries))
    return statistics.median(timings)


def manifest_ms(config: GenerateConfig, shard_dir: Path, tmp: Path, listed: int, times: int = 10) -> float:
    """Milliseconds per rewrite of a manifest listing ``listed`` shards (``build_manifest`` and
    ``write_manifest``, as the driver does), entries beyond the real ones made up from them; median."""
    from airhockey.generate.jobs import shard_filename
    from airhockey.generate.manifest import build_manifest, read_manifest, shard_entries, write_manifest

    manifest = read_manifest(shard_dir)
    real = shard_entries(manifest)
    entries = [
        dataclasses.replace(real[k % len(real)], index=k, file=shard_filename(k)) for k in range(listed)
    ]
    timings = []
    with tempfile.TemporaryDirectory(dir=tmp) as dest:
        for _ in range(times):
            start = time.perf_counter()
            write_manifest(Path(dest), build_manifest(config, manifest["policy"], entries))
            timings.append(1000 * (time.perf_counter() - start))
    return statistics.median(timings)


def raw_renderer(size: int, seed: int = 0, physics: bool = False) -> Callable[[], None]:
    """The raw render: one frame of the env's model at ``size``, with MuJoCo's own Renderer.

    With ``physics``, each frame first advances the model by one control step
    (``mj_step(nstep=frame_skip)``) under a bar command that sweeps back and forth.
    """
    env = gym.make(airhockey.ENV_ID, width=size, height=size)
    env.reset(seed=seed)
    model, data = env.unwrapped.model, env.unwrapped.data
    renderer = mujoco.Renderer(model, size, size)
    frame_skip = env.unwrapped.frame_skip
    commands = np.random.default_rng(seed).uniform(-1.5, 1.5, (64, model.nu))
    frame = 0

    def render() -> None:
        nonlocal frame
        if physics:
            data.ctrl[:] = commands[(frame // 8) % len(commands)]
            mujoco.mj_step(model, data, nstep=frame_skip)
            frame += 1
        renderer.update_scene(data, camera="top")
        renderer.render()

    return render


def _raw_render_worker(size: int, frames: int, barrier: Any, rates: Any, slot: int) -> None:
    render = raw_renderer(size, seed=slot)
    for _ in range(200):  # warm-up
        render()
    barrier.wait()
    start = time.perf_counter()
    for _ in range(frames):
        render()
    rates[slot] = frames / (time.perf_counter() - start)


def raw_render_together(processes: int, size: int, frames: int = 6000) -> float:
    """Sum of the raw render rates of ``processes`` processes rendering at the same time: what
    the cores give together (on a virtual machine, often less than ``processes`` x one alone)."""
    ctx = multiprocessing.get_context("spawn")
    barrier, rates = ctx.Barrier(processes), ctx.Array("d", processes)
    procs = [
        ctx.Process(target=_raw_render_worker, args=(size, frames, barrier, rates, k))
        for k in range(processes)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    return float(sum(rates))


def cpu_seconds() -> float:
    """CPU time (user + system) of this process and of its finished child processes."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return sum(u.ru_utime + u.ru_stime for u in usage)


def clip_rate(path: Path, clip_length: int) -> float:
    """Clips/s of a shuffled DataLoader (batch 32, 2 workers) over one pass, after its first batch."""
    from torch.utils.data import DataLoader

    from airhockey.learn.data import ClipDataset

    loader = iter(DataLoader(ClipDataset(path, clip_length), batch_size=32, shuffle=True, num_workers=2))
    next(loader)
    start, clips = time.perf_counter(), 0
    for batch in loader:
        clips += len(batch)
    return clips / (time.perf_counter() - start)


if __name__ == "__main__":
    main()
