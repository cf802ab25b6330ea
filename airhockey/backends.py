"""Running independent tasks on this machine or on a Ray cluster, results gathered by this process.

A task is a picklable top-level function applied to one picklable item (and to arguments shared by
all tasks); tasks depend neither on each other nor on where they run, and return their whole effect
as a picklable value, so that this process alone writes results. ``run_tasks`` runs them:

- ``local``: in this process (one worker) or in a pool of processes started with ``spawn`` (EGL
  contexts and CUDA do not survive ``fork``);
- ``ray``: each task a Ray Core task reserving ``cpus_per_task`` CPUs and ``gpus_per_task`` GPUs,
  on the Ray instance this process is connected to, else on the cluster at ``ray_address``, else
  on a Ray instance started here. Ray reruns a task whose worker process or node dies (up to
  ``RAY_RETRIES`` times), so a task must be safe to run twice: a pure function of its arguments.

Ray is an optional dependency (the ``ray`` extra), imported only when the ``ray`` backend is used.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import closing
from dataclasses import dataclass
from types import ModuleType
from typing import Annotated, Any, TypeVar

from airhockey.errors import UserError
from airhockey.ranges import Range, check_fields

T = TypeVar("T")
R = TypeVar("R")

BACKENDS = ("local", "ray")
RAY_RETRIES = 3
"""Times Ray reruns a task whose worker process or node died (an exception the task raises is
not retried: it would raise again)."""
RAY_INSTALL = 'pip install -e ".[ray]"'
"""How to install Ray, for error messages (from a checkout; ``pip install "airhockey[ray]"`` works too)."""
CONNECT_TIMEOUT_S = 10.0
"""How long to wait for a cluster's address to accept a connection (Ray itself retries for minutes)."""


@dataclass(frozen=True)
class Backend:
    """Where independent tasks run; it changes how fast, never what, they compute."""

    kind: str = "local"
    """``local`` (processes on this machine) or ``ray`` (Ray Core tasks)."""
    ray_address: str | None = None
    """With ``ray``: the cluster to join, ``auto`` (the one ``ray start`` began on this machine, or
    ``RAY_ADDRESS``) or ``HOST:PORT`` of its head; None starts a Ray instance on this machine."""
    cpus_per_task: Annotated[float, Range(0, 1024)] = 1.0
    """With ``ray``: CPUs each task reserves, 0-1,024."""
    gpus_per_task: Annotated[float, Range(0, 64)] = 0.0
    """With ``ray``: GPUs each task reserves, 0-64 (a fraction shares one GPU between tasks)."""

    def __post_init__(self) -> None:
        check_fields(self)
        if self.kind not in BACKENDS:
            raise UserError(f"backend must be one of {', '.join(BACKENDS)}, got {self.kind!r}")
        if self.kind != "ray" and self.ray_address is not None:
            raise UserError("a Ray address needs the ray backend: pass --backend ray")
        if self.cpus_per_task + self.gpus_per_task == 0:
            raise UserError(
                f"a task must reserve some CPUs or GPUs, got cpus {self.cpus_per_task}, "
                f"gpus {self.gpus_per_task}"
            )


LOCAL = Backend()
"""The default: processes on this machine."""


def available_cpus() -> int:
    """CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def connect_ray(address: str | None = None) -> ModuleType:
    """Ray, connected: to the instance this process already joined, else to ``address``, else to a
    new Ray instance on this machine (all available CPUs, no dashboard).

    Args:
        address: ``auto``, ``HOST:PORT`` of a cluster's head, a ``ray://`` client address, or None.

    Returns:
        The ``ray`` module.

    Raises:
        UserError: when Ray is not installed, or nothing answers at ``address``.
    """
    try:
        import ray
    except ImportError:
        raise UserError(f"the ray backend needs Ray, which is not installed: {RAY_INSTALL}") from None
    if ray.is_initialized():
        return ray
    if address is None:
        # "local": a new instance even where ``ray start`` left one running here (that one is "auto")
        ray.init("local", num_cpus=available_cpus(), include_dashboard=False, logging_level=logging.WARNING)
        return ray
    _check_reachable(address)
    try:
        ray.init(address=address, logging_level=logging.WARNING)
    except ConnectionError as err:
        raise UserError(
            f"cannot join the Ray cluster at --ray-address {address} ({str(err).splitlines()[0]}); "
            "start one with 'ray start --head', or pass the head's HOST:PORT"
        ) from None
    return ray


def check_backend(backend: Backend) -> None:
    """Checks, before anything is written, that ``backend`` can run tasks: for ``ray``, that Ray is
    installed and that ``ray_address`` is well formed and, as ``HOST:PORT``, answers within
    ``CONNECT_TIMEOUT_S`` (Ray itself is started or joined only when the tasks run).

    Raises:
        UserError: one line saying what is missing or wrong, and what to do.
    """
    if backend.kind != "ray":
        return
    try:
        import ray  # noqa: F401
    except ImportError:
        raise UserError(f"the ray backend needs Ray, which is not installed: {RAY_INSTALL}") from None
    if backend.ray_address is not None:
        _check_reachable(backend.ray_address)


def parse_ray_address(address: str) -> tuple[str, int] | None:
    """``HOST:PORT`` (or ``ray://HOST:PORT``) as ``(host, port)``; None for ``auto``.

    Raises:
        UserError: for anything else, e.g. a port that is not a number in 1-65535.
    """
    if address == "auto":
        return None
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    host = host.strip("[]")  # an IPv6 address is written [::1]:6379
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise UserError(
            f"--ray-address must be 'auto' or HOST:PORT with PORT in 1-65535 "
            f"(e.g. 10.0.0.5:6379), got {address!r}"
        )
    return host, int(port)


def _check_reachable(address: str) -> None:
    """Fails within ``CONNECT_TIMEOUT_S`` where ``HOST:PORT`` is malformed, does not resolve,
    refuses connections or answers as no gRPC server does (``_answers_http2``): ``ray.init`` would
    retry for minutes, or for ever. The name is resolved in a
    daemon thread, since ``getaddrinfo`` takes no timeout of its own."""
    parsed = parse_ray_address(address)
    if parsed is None:
        return  # ``auto``: Ray resolves it, and fails at once when it finds no cluster
    host, port = parsed
    deadline = time.monotonic() + CONNECT_TIMEOUT_S
    resolved: list[Any] = []
    failed: list[OSError] = []

    def resolve() -> None:
        try:
            resolved.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as err:
            failed.append(err)

    thread = threading.Thread(target=resolve, daemon=True)
    thread.start()
    thread.join(CONNECT_TIMEOUT_S)
    problem = None
    if failed or not resolved:
        problem = failed[0].strerror or str(failed[0]) if failed else "the name did not resolve in time"
    else:
        family, kind, proto, _, target = resolved[0]
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(max(0.1, deadline - time.monotonic()))
                sock.connect(target)
                if not _answers_http2(sock, deadline):
                    problem = "it answers, but not as a Ray head's gRPC server does: is it Ray's port?"
        except OSError as err:
            problem = err.strerror or str(err) or "timed out"
    if problem is not None:
        raise UserError(
            f"cannot reach the Ray cluster at --ray-address {address} ({problem}): "
            "check that its head is running ('ray start --head' prints the address) and reachable"
        )


HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + bytes([0, 0, 0, 4, 0, 0, 0, 0, 0])
"""What an HTTP/2 client sends first (RFC 9113, section 3.4): the preface and an empty SETTINGS frame."""


def _answers_http2(sock: socket.socket, deadline: float) -> bool:
    """Whether the server on ``sock`` answers the HTTP/2 preface with a SETTINGS frame, as every
    gRPC server does (a Ray head's GCS and its client server are gRPC servers) and as other
    servers on a mistyped port do not; ``ray.init`` on such a port would wait forever."""
    sock.sendall(HTTP2_PREFACE)
    header = b""
    while len(header) < 9:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            chunk = sock.recv(9 - len(header))
        except TimeoutError:
            return False
        if not chunk:
            return False
        header += chunk
    return header[3] == 4  # the frame type: SETTINGS


def run_tasks(
    fn: Callable[..., R],
    items: Sequence[T],
    *,
    backend: Backend = LOCAL,
    shared: tuple[Any, ...] = (),
    workers: int | None = None,
    progress: str | None = None,
) -> Iterator[tuple[int, R]]:
    """Runs ``fn(item, *shared)`` for every item and yields ``(index in items, result)`` as each
    finishes, in completion order.

    Args:
        fn: a top-level function (pickled by reference: every worker must be able to import it).
        items: one picklable argument per task.
        backend: where the tasks run.
        shared: picklable arguments passed to every task after its item; sent once per worker
            process (``local``) or stored once in Ray's object store (``ray``).
        workers: ``local`` only: processes (default: the available CPU cores); 1 runs the tasks
            one after another in this process.
        progress: the label of a progress bar over tasks on stderr; None for no bar.

    Raises:
        UserError: one a task raised (the other tasks are cancelled), a bad ``workers``, or one
            from ``connect_ray``. Other exceptions of a task propagate as they are (``local``) or as
            Ray's ``RayTaskError`` (``ray``).
    """
    from tqdm import tqdm

    if backend.kind == "ray":
        connect_ray(backend.ray_address)  # first: starting Ray takes seconds, which the bar should not count
        finished = _run_on_ray(fn, items, backend, shared)
    else:
        finished = _run_locally(fn, items, shared, available_cpus() if workers is None else workers)
    bar = tqdm(total=len(items), unit="task", desc=progress, disable=progress is None)
    with bar, closing(finished):  # a caller that stops early cancels the tasks not yet finished
        for index, result in finished:
            bar.update(1)
            yield index, result


def _run_locally(
    fn: Callable[..., R], items: Sequence[T], shared: tuple[Any, ...], workers: int
) -> Iterator[tuple[int, R]]:
    if workers < 1:
        raise UserError(f"workers must be at least 1, got {workers}")
    if workers == 1 or len(items) <= 1:
        for index, item in enumerate(items):
            yield index, fn(item, *shared)
        return
    with ProcessPoolExecutor(
        min(workers, len(items)),
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_set_shared,
        initargs=(shared,),
    ) as pool:
        futures: dict[Future[R], int] = {
            pool.submit(_call_with_shared, fn, item): index for index, item in enumerate(items)
        }
        try:
            while futures:
                done, _ = wait(futures, return_when=FIRST_COMPLETED)
                for future in done:
                    yield futures.pop(future), future.result()
        finally:
            for future in futures:
                future.cancel()


_shared: tuple[Any, ...] = ()
"""Per local worker process: the arguments every task gets after its item."""


def _set_shared(shared: tuple[Any, ...]) -> None:
    global _shared
    die_with_parent()
    _shared = shared


def die_with_parent() -> None:
    """Makes this worker process end (SIGTERM) when the process that started it ends, on Linux.

    A pool's workers otherwise outlive a driver that was killed (``kill`` reaches the driver
    alone): they would finish their tasks, writing into run folders that a restarted driver is
    writing too. Elsewhere it does nothing; call it first thing in a worker's initialiser.
    """
    if not sys.platform.startswith("linux"):  # prctl is Linux's
        return
    import ctypes
    import signal

    parent = multiprocessing.parent_process()
    pr_set_pdeathsig = 1  # <linux/prctl.h>
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if parent is not None and os.getppid() != parent.pid:  # it ended before the call
        os.kill(os.getpid(), signal.SIGTERM)


def _call_with_shared(fn: Callable[..., R], item: Any) -> R:
    return fn(item, *_shared)


def _run_on_ray(
    fn: Callable[..., R], items: Sequence[T], backend: Backend, shared: tuple[Any, ...]
) -> Iterator[tuple[int, R]]:
    """Submits at most two tasks per slot of the cluster at a time, so that finished results wait
    in the object store only briefly and an interrupted run wastes little work."""
    ray = connect_ray(backend.ray_address)
    from ray.exceptions import RayTaskError

    remote = ray.remote(fn).options(
        num_cpus=backend.cpus_per_task, num_gpus=backend.gpus_per_task, max_retries=RAY_RETRIES
    )
    shared_refs = [ray.put(value) for value in shared]
    resources = ray.cluster_resources()
    slots = min(
        resources.get("CPU", 0) / backend.cpus_per_task if backend.cpus_per_task else float("inf"),
        resources.get("GPU", 0) / backend.gpus_per_task if backend.gpus_per_task else float("inf"),
    )
    if slots < 1:  # Ray would wait for resources that never come
        raise UserError(
            f"the Ray cluster has {resources.get('CPU', 0):g} CPUs and {resources.get('GPU', 0):g} GPUs: "
            f"too few for a task that needs {backend.cpus_per_task:g} CPUs and {backend.gpus_per_task:g} GPUs"
        )
    in_flight_limit = 2 * int(slots) if slots != float("inf") else len(items)
    pending = iter(enumerate(items))
    running: dict[Any, int] = {}
    try:
        while True:
            for index, item in pending:
                running[remote.remote(item, *shared_refs)] = index
                if len(running) >= in_flight_limit:
                    break
            if not running:
                return
            [ref], _ = ray.wait(list(running), num_returns=1)
            index = running.pop(ref)
            try:
                result = ray.get(ref)
            except RayTaskError as err:
                if isinstance(err.cause, UserError):
                    raise err.cause from None
                raise
            yield index, result
    finally:
        for ref in running:
            ray.cancel(ref)
