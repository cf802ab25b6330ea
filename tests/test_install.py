"""The editable install, seen by a new user: a script beside the clone imports the package, not the folder."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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
