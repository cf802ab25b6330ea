"""The package as a new user gets it: the editable install (a script beside the clone imports the package,
not the folder), the sdist and its metadata, ``--version`` and shell completion.

The wheel installed without extras into a fresh virtual environment, for each Python found, is checked
by .ci/run (it downloads the dependencies)."""

from __future__ import annotations

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import airhockey

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def editable_site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A clone at work/airhockey, installed editable into work/site; returns (work, site)."""
    work = tmp_path_factory.mktemp("work")
    clone = work / "airhockey"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, clone / name)
    shutil.copytree(ROOT / "airhockey", clone / "airhockey", ignore=shutil.ignore_patterns("__pycache__"))
    build = "from setuptools import build_meta; print(build_meta.build_editable(sys.argv[1]))"
    wheel = subprocess.run(
        [sys.executable, "-c", f"import sys; {build}", str(work / "dist")],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    site = work / "site"
    with zipfile.ZipFile(work / "dist" / wheel) as whl:
        whl.extractall(site)  # what pip puts into site-packages
    return work, site


def test_a_script_in_the_folder_that_holds_the_clone_gets_the_installed_package(editable_site):
    work, site = editable_site
    script = work / "try.py"
    script.write_text(
        "import os, site, sys\n"
        "# This interpreter may have the package installed already (the developer's, CI's clone): drop\n"
        "# it, so that the package can come only from the install under test.\n"
        "installed = [p for p in sys.path if os.path.isfile(os.path.join(p, 'airhockey', '__init__.py'))]\n"
        "sys.path[:] = [p for p in sys.path if p not in installed]\n"
        "site.addsitedir(sys.argv[1])  # as the interpreter does with site-packages\n"
        "import gymnasium as gym\n"
        "import airhockey\n"
        "print(airhockey.__file__)\n"
        "print(gym.make('AirHockey-v0').reset(seed=0)[0].shape)\n"
    )
    run = subprocess.run([sys.executable, str(script), str(site)], cwd=work, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == [str(work / "airhockey" / "airhockey" / "__init__.py"), "(13,)"]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, tarfile.TarFile]:
    """The sdist built from a copy of the clone's sources; returns (the copy, the sdist)."""
    work = tmp_path_factory.mktemp("sdist")
    clone = work / "airhockey"
    clone.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        shutil.copy(ROOT / name, clone / name)
    for folder in ("airhockey", "tests", "docs"):
        shutil.copytree(ROOT / folder, clone / folder, ignore=shutil.ignore_patterns("__pycache__"))
    build = "from setuptools import build_meta; print(build_meta.build_sdist(sys.argv[1]))"
    name = subprocess.run(
        [sys.executable, "-c", f"import sys; {build}", str(work / "dist")],
        cwd=clone,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[-1]
    return clone, tarfile.open(work / "dist" / name)


def test_the_sdist_holds_the_tests_and_the_docs_they_read(sdist):
    clone, archive = sdist
    top = f"airhockey-{airhockey.__version__}/"
    members = {m.name.removeprefix(top) for m in archive.getmembers() if m.isfile()}
    for folder in ("tests", "docs", "airhockey"):
        files = {p.relative_to(clone).as_posix() for p in (clone / folder).rglob("*") if p.is_file()}
        assert files and files <= members, f"{folder}/ files missing: {sorted(files - members)[:5]}"
    assert {"LICENSE", "README.md", "pyproject.toml"} <= members
    assert not any("__pycache__" in m for m in members)


def test_the_metadata_has_an_spdx_license_classifiers_and_the_package_version(sdist):
    _, archive = sdist
    info = archive.extractfile(f"airhockey-{airhockey.__version__}/PKG-INFO")
    assert info is not None
    fields = [
        line.split(": ", 1) for line in info.read().decode().split("\n\n", 1)[0].splitlines() if ": " in line
    ]
    metadata: dict[str, list[str]] = {}
    for key, value in fields:
        metadata.setdefault(key, []).append(value)
    assert metadata["Version"] == [airhockey.__version__]
    assert metadata["License-Expression"] == ["MIT"] and metadata["License-File"] == ["LICENSE"]
    assert not any(c.startswith("License ::") for c in metadata["Classifier"])  # the expression says it
    versions = [
        c.rsplit(" ", 1)[1]
        for c in metadata["Classifier"]
        if c.startswith("Programming Language :: Python :: 3.")
    ]
    assert versions == ["3.10", "3.11", "3.12", "3.13"] and metadata["Requires-Python"] == [">=3.10"]
    assert "Keywords" in metadata
    # A plain install must render the env: gymnasium's MuJoCo envs need its mujoco extra.
    assert any(r.startswith("gymnasium[mujoco]") for r in metadata["Requires-Dist"])


def test_version_prints_one_line():
    run = subprocess.run(
        [sys.executable, "-m", "airhockey.cli", "--version"], capture_output=True, text=True, check=True
    )
    assert run.stdout == f"airhockey {airhockey.__version__}\n"
    assert importlib.metadata.version("airhockey") == airhockey.__version__


def test_show_completion_prints_the_shells_script_and_the_script_completes_commands():
    command = Path(sys.executable).parent / "airhockey"  # the console script, as the user runs it
    # '; true' keeps bash from exec-ing the command, so that bash is the parent typer detects.
    shown = subprocess.run(
        ["bash", "-c", f"'{command}' --show-completion; true"], capture_output=True, text=True, check=True
    )
    assert "complete -o default -F _airhockey_completion airhockey" in shown.stdout
    asked = subprocess.run(
        [str(command)],
        env={
            **os.environ,
            "_AIRHOCKEY_COMPLETE": "complete_bash",
            "COMP_WORDS": "airhockey learn pret",
            "COMP_CWORD": "2",
        },
        capture_output=True,
        text=True,
        check=True,
    )
    assert asked.stdout.split() == ["pretext"]
