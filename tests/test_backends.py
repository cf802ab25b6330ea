"""run_tasks: the same results on every backend, errors as raised, one-line errors about Ray."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from airhockey.backends import Backend, check_backend, connect_ray, run_tasks
from airhockey.errors import UserError

RAY = Backend("ray")


def power_and_pid(item: int, exponent: int) -> tuple[int, int]:
    """A task: the item to a power shared by all tasks, and the process that computed it."""
    return item**exponent, os.getpid()


def fail_on_three(item: int) -> int:
    if item == 3:
        raise UserError(f"item {item} is bad")
    return item


def closed_port() -> int:
    """A port on which nothing listens (just released by the OS)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize(
    ("backend", "workers"), [(Backend(), 1), (Backend(), 2), (RAY, None)], ids=["here", "pool", "ray"]
)
def test_every_backend_gives_each_item_its_result_once(local_ray, backend, workers):
    items = list(range(7))
    results = list(run_tasks(power_and_pid, items, backend=backend, shared=(3,), workers=workers))
    assert sorted(index for index, _ in results) == items
    assert {index: value for index, (value, _) in results} == {i: i**3 for i in items}
    pids = {pid for _, (_, pid) in results}
    assert (pids == {os.getpid()}) == (workers == 1)  # only workers=1 runs here


@pytest.mark.parametrize("backend", [Backend(), RAY], ids=["local", "ray"])
def test_a_user_error_in_a_task_is_raised_here_as_it_was_raised_there(local_ray, backend):
    with pytest.raises(UserError, match=r"^item 3 is bad$"):
        list(run_tasks(fail_on_three, range(6), backend=backend, workers=2))


def test_a_task_that_needs_more_than_the_cluster_has_is_an_error_not_a_wait(local_ray):
    with pytest.raises(
        UserError, match="has 2 CPUs and 0 GPUs: too few for a task that needs 1 CPUs and 1 GPUs"
    ):
        list(run_tasks(fail_on_three, [1], backend=Backend("ray", gpus_per_task=1)))


def test_without_ray_installed_the_ray_backend_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes ``import ray`` fail
    with pytest.raises(UserError, match=r'^the ray backend needs Ray, .*: pip install -e "\.\[ray\]"$'):
        list(run_tasks(power_and_pid, [1], backend=RAY, shared=(2,)))


def test_an_unreachable_cluster_is_an_error_naming_the_address_tried(monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a process that has not joined one
    address = f"127.0.0.1:{closed_port()}"
    with pytest.raises(UserError, match=f"^cannot reach the Ray cluster at --ray-address {address} "):
        connect_ray(address)


def serve_once(answer: bytes) -> tuple[int, threading.Thread]:
    """A server on a free local port that reads what one client sends and answers ``answer``."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        with server:
            conn, _ = server.accept()
            with conn:
                conn.recv(64)
                conn.sendall(answer)
                time.sleep(0.2)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return server.getsockname()[1], thread


def test_a_port_that_answers_but_not_as_a_ray_head_is_refused_at_once():
    pytest.importorskip("ray")
    port, thread = serve_once(b"HTTP/1.0 400 Bad Request\r\n\r\n")  # a web server on a mistyped port
    start = time.monotonic()
    with pytest.raises(UserError, match=r"not as a Ray head's gRPC server does"):
        check_backend(Backend("ray", ray_address=f"127.0.0.1:{port}"))
    assert time.monotonic() - start < 5
    thread.join(5)
    # A gRPC server (as Ray's GCS) answers the HTTP/2 preface with a SETTINGS frame: accepted.
    port, thread = serve_once(bytes([0, 0, 0x18, 4, 0, 0, 0, 0, 0]))
    check_backend(Backend("ray", ray_address=f"127.0.0.1:{port}"))
    thread.join(5)


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"kind": "dask"}, "backend must be one of local, ray"),
        ({"ray_address": "auto"}, "needs the ray backend"),
        ({"kind": "ray", "cpus_per_task": 0}, "must reserve some CPUs or GPUs"),
    ],
)
def test_bad_backend_settings_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        Backend(**settings)


def _write_pid_and_wait(item: int, folder: str) -> int:
    """A task that records its worker's pid, then outlasts the test unless its worker is ended."""
    Path(folder, f"{os.getpid()}.pid").write_text("")
    time.sleep(60)
    return item


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in state  # a zombie has ended


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux's")
def test_local_workers_end_when_their_driver_is_killed(tmp_path):
    script = (
        "import sys; from airhockey.backends import Backend, run_tasks; "
        "from tests.test_backends import _write_pid_and_wait; "
        "list(run_tasks(_write_pid_and_wait, [0, 1], backend=Backend(), shared=(sys.argv[1],), workers=2))"
    )
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    driver = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env)
    deadline = time.monotonic() + 60
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    workers = [int(p.stem) for p in tmp_path.glob("*.pid")]
    assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    driver.kill()  # SIGKILL: the driver cannot stop its pool itself
    driver.wait()
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)
