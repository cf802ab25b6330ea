"""Running a generation: shard jobs in worker processes, progress, manifest, resume, locking.

With W workers, this process runs shard jobs itself beside W - 1 processes started with the
``spawn`` method (EGL contexts do not survive ``fork``); it loads the policy once and hands it to
each of them (a saved agent as its numpy ``MLPActor``, so that they never import torch). Only this
process writes the manifest, as shards finish (at most once a second), so an interrupted run
leaves finished shards (listed or not yet listed) and at most one ``.partial`` file per worker,
which ``resume`` deletes and redoes.

With the ``ray`` backend, each shard is a Ray task (``airhockey.backends``) that plays the shard
into a temporary directory of its worker and returns the finished file's bytes; this process alone
writes into the output directory (the same write-then-rename, the same manifest), so the workers
need no shared filesystem, and the dataset and resume behave as with local workers.
"""

from __future__ import annotations

import fcntl
import functools
import hashlib
import multiprocessing
import queue
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

from tqdm import tqdm

from airhockey.agents.actor import MLPActor
from airhockey.backends import LOCAL, Backend, available_cpus, connect_ray, die_with_parent, run_tasks
from airhockey.errors import UserError
from airhockey.generate.config import GenerateConfig, check_settings
from airhockey.generate.hdf5 import atomic_write_bytes, open_shard, sha256_file, shard_attrs
from airhockey.generate.jobs import ShardEntry, ShardJob, plan_shards, run_shard
from airhockey.generate.manifest import (
    MANIFEST,
    build_manifest,
    package_versions,
    read_manifest,
    shard_entries,
    write_manifest,
)
from airhockey.generate.policy import load_policy, policy_identity
from airhockey.generate.records import FORMAT_VERSION
from airhockey.generate.rollout import Policy
from airhockey.generate.scripted import ScriptedPolicy
from airhockey.writing import open_lock

LOCK = ".lock"
MANIFEST_INTERVAL_S = 1.0
"""While shards finish, the manifest is rewritten at most this often (and once at the end): a
rewrite lists every shard, 92 ms at 2,000 shards against 6 ms to store one (docs/scale.md), so
rewriting it after every shard would make large datasets slow to write; a shard finished but not yet
listed when a run is killed is checked and kept by ``resume``."""


def generate(
    config: GenerateConfig,
    out_dir: str | Path,
    *,
    workers: int | None = None,
    resume: bool = False,
    progress: bool = True,
    backend: Backend = LOCAL,
) -> dict[str, Any]:
    """Generates a labelled episode dataset into ``out_dir``: shards and a manifest.

    Args:
        config: what to generate.
        out_dir: the dataset directory; it must be new or empty unless ``resume``.
        workers: with the local backend, processes that play shards, this one included
            (default: the available CPU cores); 1 runs everything in this process.
        resume: complete an interrupted run with the same ``config``: keep its finished
            shards, redo the rest.
        progress: show a progress bar on stderr.
        backend: where shards are played: local processes, or Ray tasks (one per shard,
            ``backend.cpus_per_task`` CPUs each); the files are the same.

    Returns:
        The final manifest.

    Raises:
        UserError: on a non-empty ``out_dir`` without ``resume``, a ``resume`` with other
            settings, another run writing to ``out_dir``, a policy that cannot be loaded, or a
            setting found bad before anything was written (``check_settings``); with Ray,
            ``workers`` given, Ray not installed or its cluster unreachable.
    """
    out_dir = Path(out_dir)
    if backend.kind == "ray":
        if workers is not None:
            raise UserError(
                "workers sets the local backend's processes: on Ray every free CPU of the cluster "
                "plays shards (set the CPUs per shard with --ray-cpus-per-task)"
            )
        connect_ray(backend.ray_address)  # before anything is written: fails fast
    workers = available_cpus() if workers is None else workers
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    check_settings(config, out_dir)
    identity = policy_identity(config.policy, config.policy_mix)
    jobs = plan_shards(config, identity)
    with _locked(out_dir):
        done = _finished_shards(out_dir, config, identity, jobs, resume)
        versions = package_versions(read_manifest(out_dir) if resume and done else None, out_dir)
        write_manifest(out_dir, build_manifest(config, identity, done.values(), versions))
        pending = [job for job in jobs if job.index not in done]
        with _Progress(config.episodes, sum(e.episodes for e in done.values()), progress) as bar:
            if backend.kind == "ray":
                finished = _run_jobs_on_ray(pending, out_dir, backend, bar.shard)
            else:
                finished = _run_jobs(pending, out_dir, min(workers, len(pending)), bar.attempt)
            listed_at = time.monotonic()
            for entry in finished:
                done[entry.index] = entry
                if time.monotonic() - listed_at >= MANIFEST_INTERVAL_S:
                    write_manifest(out_dir, build_manifest(config, identity, done.values(), versions))
                    listed_at = time.monotonic()
        manifest = build_manifest(config, identity, done.values(), versions)
        write_manifest(out_dir, manifest)
    return manifest


@contextmanager
def _locked(out_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on ``out_dir`` (released by the kernel, even after ``kill -9``).

    A run that fails before its first shard is finished leaves nothing that blocks a corrected
    retry: its empty manifest goes, and so do the lock and the directory if this run made it.
    """
    created = not out_dir.exists()
    out_dir.mkdir(parents=True, exist_ok=True)
    with open_lock(out_dir / LOCK) as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"{out_dir}: another generate is writing to this directory") from None
        try:
            yield
        except BaseException:
            _remove_unwritten_run(out_dir, created)
            raise


def _remove_unwritten_run(out_dir: Path, created: bool) -> None:
    """After a failed run: if no shard exists, removes the manifest (it lists none) and, where
    this run made ``out_dir``, the lock and the directory. Anything else, and any shard, is kept."""
    if any(out_dir.glob("shard-*.h5")):
        return
    try:
        manifest = read_manifest(out_dir)
    except UserError:  # not one this package wrote: not ours to remove
        return
    if manifest is not None and not manifest["shards"]:
        (out_dir / MANIFEST).unlink()
    if created and {p.name for p in out_dir.iterdir()} <= {LOCK}:
        (out_dir / LOCK).unlink(missing_ok=True)
        out_dir.rmdir()


def _finished_shards(
    out_dir: Path, config: GenerateConfig, identity: dict[str, str], jobs: list[ShardJob], resume: bool
) -> dict[int, ShardEntry]:
    """The shards a resumed run keeps, by index; deletes partial and damaged ones."""
    manifest = read_manifest(out_dir)
    if not resume:
        if any(p.name != LOCK for p in out_dir.iterdir()):  # hidden entries count too
            raise UserError(
                f"{out_dir} is not empty: pass --resume to complete the dataset in it, "
                "or choose a new directory"
            )
        return {}
    if manifest is None:
        if any(out_dir.glob("shard-*.h5")):
            raise UserError(f"{out_dir} holds shards but no manifest.json: it is not a resumable run")
        return {}
    differ = [k for k, v in config.to_dict().items() if manifest["config"].get(k) != v]
    if manifest["policy"] != identity:
        differ.append("policy identity (the policy's files changed)")
    if manifest["format_version"] != FORMAT_VERSION:  # shards of two formats would make one dataset
        differ.append(f"format version {manifest['format_version']}, this package writes {FORMAT_VERSION}")
    if differ:
        raise UserError(
            f"{out_dir} was generated with other settings (differing: {', '.join(differ)}): "
            "resume with the same arguments, or choose a new directory"
        )
    for partial in out_dir.glob(".*.partial"):
        partial.unlink()
    listed = {entry.index: entry for entry in shard_entries(manifest)}
    done = {}
    for job in jobs:
        path = out_dir / job.filename
        if not path.exists():
            continue
        entry = listed.get(job.index) or _entry_from_file(path, job)
        if entry is not None and sha256_file(path) == entry.sha256:
            done[job.index] = entry
        else:
            path.unlink()
    return done


def _entry_from_file(path: Path, job: ShardJob) -> ShardEntry | None:
    """The manifest entry of a finished shard that the manifest does not list yet, or None if damaged."""
    try:
        with open_shard(path) as f:
            attrs = shard_attrs(f)
    except UserError:
        return None
    if attrs.get("config") != job.config.to_dict() or attrs.get("shard_index") != job.index:
        return None
    return ShardEntry(
        path.name,
        job.index,
        attrs["episodes"],
        attrs["frames"],
        attrs["class_counts"],
        attrs["attempts"],
        attrs["discards"],
        path.stat().st_size,
        sha256_file(path),
    )


def _run_jobs(
    jobs: list[ShardJob], out_dir: Path, workers: int, on_attempt: Callable[[bool], None]
) -> Iterator[ShardEntry]:
    """Runs shard jobs and yields their entries as they finish.

    With one worker, here. With ``workers`` W > 1, here and in W - 1 spawned processes: this
    process already has its imports and the policy, so it plays its first shard while the others
    start up (about a second each), and it takes the next job whenever it is free. Each process
    keeps one job queued, so that none waits while this one plays a shard.
    """
    if not jobs:
        return
    policy = load_policy(jobs[0].config.policy)
    if workers <= 1:
        for job in jobs:
            yield run_shard(job, policy, out_dir, on_attempt)
        return
    context = multiprocessing.get_context("spawn")
    events = context.Queue()
    pending = deque(jobs)

    def relay(kept: bool) -> None:
        on_attempt(kept)
        _drain(events, on_attempt)

    with (
        _one_torch_thread(),
        ProcessPoolExecutor(
            workers - 1,
            mp_context=context,
            initializer=_init_worker,
            initargs=(_portable(policy, jobs[0].config.policy), events),
        ) as pool,
    ):
        futures: set[Future[ShardEntry]] = set()
        try:
            while pending or futures:
                while len(pending) > 1 and len(futures) < 2 * (workers - 1):  # one left for here
                    futures.add(pool.submit(_run_in_worker, pending.popleft(), out_dir))
                if pending:
                    yield run_shard(pending.popleft(), policy, out_dir, relay)
                else:
                    wait(futures, timeout=0.2, return_when=FIRST_COMPLETED)
                _drain(events, on_attempt)
                finished = {future for future in futures if future.done()}
                futures -= finished
                for future in finished:
                    yield future.result()
        finally:
            for future in futures:
                future.cancel()
    _drain(events, on_attempt)


def _one_torch_thread() -> AbstractContextManager[None]:
    """While this process plays shards beside workers, a torch policy uses one thread here (a
    torch policy is played through ``airhockey.agents.policy``, already imported if one is)."""
    agent_policy = sys.modules.get("airhockey.agents.policy")
    return nullcontext() if agent_policy is None else agent_policy.one_torch_thread()


_worker: dict[str, Any] = {}
"""Per worker process: the policy and the queue of progress events."""


def _portable(policy: Policy, spec: str) -> Policy | str:
    """What a worker gets: plain-array policies as they are, others by name (each worker loads it)."""
    return policy if isinstance(policy, (MLPActor, ScriptedPolicy)) else spec


def _init_worker(policy: Policy | str, events: multiprocessing.Queue) -> None:
    die_with_parent()
    _worker["policy"] = load_policy(policy) if isinstance(policy, str) else policy
    _worker["events"] = events
    if "torch" in sys.modules:
        # One thread per worker: parallelism comes from the workers, not from inside each.
        sys.modules["torch"].set_num_threads(1)


def _run_in_worker(job: ShardJob, out_dir: Path) -> ShardEntry:
    policy: Policy = _worker["policy"]
    return run_shard(job, policy, out_dir, _worker["events"].put)


def _drain(events: multiprocessing.Queue, on_attempt: Callable[[bool], None]) -> None:
    while True:
        try:
            on_attempt(events.get_nowait())
        except queue.Empty:
            return


def _run_jobs_on_ray(
    jobs: list[ShardJob], out_dir: Path, backend: Backend, on_shard: Callable[[ShardEntry], None]
) -> Iterator[ShardEntry]:
    """Plays shard jobs as Ray tasks and writes each returned shard into ``out_dir`` here, with the
    same write-then-rename as a local worker, so that only this process writes there."""
    if not jobs:
        return
    spec = jobs[0].config.policy
    shared = (_portable(load_policy(spec), spec),)
    for _, (entry, data) in run_tasks(_play_shard_to_bytes, jobs, backend=backend, shared=shared):
        store_shard(out_dir, entry, data)
        on_shard(entry)
        yield entry


def store_shard(out_dir: Path, entry: ShardEntry, data: bytes) -> None:
    """Writes a shard received from a worker into ``out_dir`` (write-then-rename), checking its bytes.

    Raises:
        RuntimeError: when ``data`` is not the file whose SHA-256 the worker reported.
    """
    if hashlib.sha256(data).hexdigest() != entry.sha256:
        raise RuntimeError(f"{entry.file}: the bytes received are not those its worker wrote")
    atomic_write_bytes(out_dir / entry.file, data)


def _play_shard_to_bytes(job: ShardJob, policy: Policy | str) -> tuple[ShardEntry, bytes]:
    """A Ray task: plays one shard into a temporary directory of the worker; its entry and bytes."""
    if isinstance(policy, str):
        policy = _policy_named(policy)
    with tempfile.TemporaryDirectory(prefix="airhockey-shard-") as tmp:
        entry = run_shard(job, policy, Path(tmp))
        return entry, (Path(tmp) / entry.file).read_bytes()


@functools.lru_cache(maxsize=1)
def _policy_named(spec: str) -> Policy:
    """Per Ray worker process: a policy that is not plain arrays, loaded once from its files."""
    return load_policy(spec)


class _Progress:
    """A tqdm bar over labelled episodes, showing episodes/s, ETA and the discard rate."""

    def __init__(self, total: int, initial: int, enabled: bool) -> None:
        self.total, self.initial, self.enabled = total, initial, enabled
        self.attempts = self.discarded = 0

    def __enter__(self) -> _Progress:
        self.bar = tqdm(
            total=self.total, initial=self.initial, unit="ep", desc="generate", disable=not self.enabled
        )
        return self

    def attempt(self, kept: bool) -> None:
        """Counts one finished attempt."""
        self.attempts += 1
        if kept:
            self.bar.update(1)
        else:
            self.discarded += 1
        self.bar.set_postfix_str(f"discarded {self.discarded / self.attempts:.0%}", refresh=False)

    def shard(self, entry: ShardEntry) -> None:
        """Counts the attempts of a finished shard at once (Ray tasks report whole shards)."""
        self.attempts += entry.attempts
        self.discarded += sum(entry.discards.values())
        self.bar.set_postfix_str(f"discarded {self.discarded / self.attempts:.0%}", refresh=False)
        self.bar.update(entry.episodes)

    def __exit__(self, *exc: object) -> None:
        self.bar.close()
