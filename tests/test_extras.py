"""Which extra to install: a missing optional package (made missing for real, by the import machinery's
own ``sys.modules[name] = None``) ends in one line that names the extra, in the library and the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from airhockey.extras import MissingExtra, extras_by_module, missing_extra, require


def test_the_extras_are_read_from_the_package_metadata():
    extras = extras_by_module()
    assert extras["h5py"][:2] == ("data", "learn") and extras["torch"][:2] == ("agent", "learn")
    assert extras["stable_baselines3"][0] == "agent" and extras["sklearn"][0] == "learn"
    assert extras["yaml"][0] == "agent" and extras["ray"][0] == "ray"  # import names, not distributions
    assert "all" in extras["h5py"] and "all" not in extras["ray"]  # 'all' is agent, data and learn


def test_require_names_the_extra_of_a_missing_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "h5py", None)
    with pytest.raises(MissingExtra) as caught:
        require("h5py", "reading shards")
    assert str(caught.value) == "reading shards needs the 'data' extra: pip install \"airhockey[data]\""


def test_a_package_several_extras_install_is_named_by_the_preferred_one(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError) as caught:
        import torch  # noqa: F401
    assert missing_extra(caught.value) == "agent"
    assert missing_extra(caught.value, prefer="learn") == "learn"
    assert missing_extra(caught.value, prefer="all") == "all"
    assert missing_extra(caught.value, prefer="ray") == "agent"  # ray does not install torch


def test_an_installed_package_or_one_no_extra_lists_is_not_a_missing_extra():
    assert missing_extra(ModuleNotFoundError("broken inside", name="h5py")) is None  # h5py is installed
    with pytest.raises(ModuleNotFoundError, match="no_such_module_anywhere"):
        require("no_such_module_anywhere", "a feature")


@pytest.mark.parametrize(
    "missing,args,message",
    [
        ("h5py", ["generate", "out", "--episodes", "1", "--policy", "scripted"], "generate needs the 'data'"),
        ("h5py", ["data", "inspect", "out"], "data inspect needs the 'data'"),
        ("torch", ["learn", "methods"], "learn methods needs the 'learn'"),
        ("torch,stable_baselines3", ["agent", "train", "--out", "out"], "agent train needs the 'agent'"),
        ("torch", ["pipeline", "out"], "pipeline needs the 'all'"),
    ],
)
def test_a_command_whose_extra_is_missing_names_it_in_one_line_and_writes_nothing(
    tmp_path: Path, missing: str, args: list[str], message: str
):
    child = (
        "import sys\n"
        "for name in sys.argv[1].split(','):\n"
        "    sys.modules[name] = None\n"
        "from airhockey.cli import app\n"
        "app(sys.argv[2:], prog_name='airhockey')\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", child, missing, *args], cwd=tmp_path, capture_output=True, text=True
    )
    extra = message.split("'")[1]
    assert run.returncode == 2, run.stderr
    assert run.stderr == f'error: {message} extra: pip install "airhockey[{extra}]"\n'
    assert run.stdout == "" and list(tmp_path.iterdir()) == []
