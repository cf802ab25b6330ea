"""The README and the guides in docs/: every link resolves, every command parses, the quick start runs."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import typer

from airhockey.cli import app

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").glob("*.md")])
# The generated report pages at the top of docs/results/ (their sub-folders are copies of run folders).
REPORTS = sorted((ROOT / "docs" / "results").glob("*.md"))
FENCE = re.compile(r"^```[^\n]*\n(.*?)^```", re.S | re.M)
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
# Sections of the README whose commands the end-to-end test runs, in order, in a fresh folder.
RUNNABLE = ("## Quick start", "## Next: a pretext run and a small comparison")


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower().replace("`", "")
    return "".join(c for c in text.replace(" ", "-") if c.isalnum() or c in "-_")


def anchors(page: Path) -> set[str]:
    text = FENCE.sub("", page.read_text())
    found: set[str] = set()
    for line in text.splitlines():
        if line.startswith("#"):
            name = anchor(line.lstrip("#"))
            count = sum(1 for a in found if a == name or re.fullmatch(re.escape(name) + r"-\d+", a))
            found.add(name if count == 0 else f"{name}-{count}")
    return found


def links(page: Path) -> list[str]:
    text = re.sub(r"`[^`\n]*`", "code", FENCE.sub("", page.read_text()))
    return [t for t in LINK.findall(text) if not re.match(r"[a-z]+:", t)]


def resolves(page: Path, target: str) -> bool:
    """Whether a relative link of a page names a file or folder that exists (and a heading of a .md one)."""
    path, _, fragment = target.partition("#")
    resolved = (page.parent / path).resolve() if path else page
    if not resolved.exists():
        return False
    return not fragment or resolved.suffix != ".md" or fragment in anchors(resolved)


@pytest.mark.parametrize("page", PAGES + REPORTS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_and_image_resolves(page: Path):
    broken = [target for target in links(page) if not resolves(page, target)]
    assert not broken, f"{page.name}: {broken}"


def commands(text: str) -> list[str]:
    """The ``airhockey ...`` commands of a Markdown text's fenced blocks, continuation lines joined."""
    found = []
    for block in FENCE.findall(text):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                part = part.strip().removeprefix("$ ")
                if part.startswith("airhockey "):
                    found.append(part)
    return found


ALL_COMMANDS = sorted({(page.name, c) for page in PAGES for c in commands(page.read_text())})


def test_the_pages_show_commands():
    assert len(ALL_COMMANDS) > 40


@pytest.mark.parametrize("page,command", ALL_COMMANDS, ids=[f"{p}: {c[:60]}" for p, c in ALL_COMMANDS])
def test_every_command_in_the_pages_parses(page: str, command: str):
    args = shlex.split(command, comments=True)[1:]
    cmd = typer.main.get_command(app)
    path = ["airhockey"]
    if args and args[0].startswith("-"):  # options of `airhockey` itself: --version, --install-completion
        known = {name for param in cmd.params for name in param.opts}
        assert [a for a in args if a.startswith("-") and a not in known] == [], f"{page}: {command}"
        return
    while hasattr(cmd, "commands"):
        assert args and args[0] in cmd.commands, f"{page}: no command {args[:1]} in {' '.join(path)}"
        path.append(args[0])
        cmd = cmd.commands[args.pop(0)]
    # Parses the arguments as the command would (options, their types, the required ones) without running it.
    cmd.make_context(" ".join(path), args)


def tiny(args: list[str]) -> list[str]:
    """The README's arguments with the sizes of a test: few episodes, small frames, a few steps."""
    args = list(args)

    def put(name: str, value: str) -> None:
        if name in args:
            args[args.index(name) + 1] = value
        else:
            args.extend([name, value])

    if args[0] == "generate":
        put("--episodes", "40" if args[1] == "data" else "20")
        args += ["--width", "32", "--height", "32", "--workers", "1"]
    elif args[:2] == ["learn", "pretext"]:
        put("--steps", "5")
    elif args[:2] == ["learn", "compare"]:
        put("--budgets", "4,all")
        put("--repeats", "2")
        for setting in ("training.epochs=1", "training.freeze_epochs=0", "training.min_epoch_frames=64"):
            args += ["--set", setting]
    if args[0] in ("generate", "learn"):
        args.append("--no-progress")
    return args


@pytest.mark.slow
def test_the_readme_quick_start_runs_in_a_fresh_folder(tmp_path: Path):
    readme = (ROOT / "README.md").read_text()
    sections = [readme.split(title, 1)[1].split("\n## ", 1)[0] for title in RUNNABLE]
    steps = [shlex.split(c, comments=True)[1:] for section in sections for c in commands(section)]
    assert [s[:2] for s in steps][:3] == [["generate", "data"], ["data", "verify"], ["data", "preview"]]
    for args in steps:
        run = subprocess.run(
            [sys.executable, "-m", "airhockey.cli", *tiny(args)], cwd=tmp_path, capture_output=True, text=True
        )
        assert run.returncode == 0, f"airhockey {' '.join(args)}: {run.stderr[-2000:]}"
    assert (tmp_path / "runs" / "clip.gif").stat().st_size > 0
    assert (tmp_path / "runs" / "report" / "report.md").exists()
