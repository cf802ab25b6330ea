"""results.json and leaderboard.json as typed records: every stored file reads back and renders its
committed pages and plots byte for byte, a report links only the plots it wrote, a record written
and read is the same record, and damaged files end in one line naming the file and the field."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import pytest

from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.leaderboard import read_leaderboard, render_leaderboard
from airhockey.learn.protocol.plots import highlighted, holds_every_class, plotted
from airhockey.learn.protocol.report import render_markdown, write_report
from airhockey.learn.protocol.rerender import rerender
from airhockey.learn.protocol.results import (
    FORMAT_VERSION,
    Convergence,
    read_results,
    results_of,
    write_results,
)
from airhockey.learn.protocol.runlog import read_done, read_run_log
from airhockey.records import to_json
from tests.learn.protocol.test_benchmark import by_hand

DOCS = Path(__file__).parents[3] / "docs" / "results"
STORED = sorted(DOCS.rglob("results.json"))
BOARDS = sorted(DOCS.rglob("leaderboard.json"))


def test_there_are_stored_results_to_check():
    assert len(STORED) >= 8 and len(BOARDS) >= 3


@pytest.mark.parametrize("path", STORED, ids=lambda p: str(p.parent.relative_to(DOCS)))
def test_every_stored_results_json_reads_back_and_renders_its_report(path):
    results = read_results(path)
    assert results.format_version == FORMAT_VERSION
    assert render_markdown(results) == (path.parent / "report.md").read_text()


@pytest.mark.parametrize("path", BOARDS, ids=lambda p: str(p.parent.relative_to(DOCS)))
def test_every_stored_leaderboard_reads_back_and_renders_its_page(path):
    board = read_leaderboard(path)
    rollouts = (path.parent / "leaderboard_rollouts.png").is_file()
    assert render_leaderboard(board, rollouts) == (path.parent / "leaderboard.md").read_text()


def linked_images(page: Path) -> list[Path]:
    return [page.parent / name for name in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", page.read_text())]


def test_the_committed_figures_and_pages_are_the_renders_of_the_stored_json(tmp_path):
    # Every page under docs/results is what this code writes from the stored JSON, byte for byte,
    # and every plot it draws is committed; after a change to the plots or pages:
    # python -m airhockey.learn.protocol.rerender docs/results. The PNGs' bytes also depend on the
    # installed matplotlib and FreeType, which the project does not pin: they are compared with a
    # second render in this run, not with the committed files.
    written = rerender(DOCS, tmp_path)
    assert {p.suffix for p in written} == {".md", ".png"} and len(written) >= 50
    for path in written:
        committed = DOCS / path.relative_to(tmp_path)
        assert committed.is_file(), f"{committed} is not committed"
        if path.suffix == ".md":
            assert path.read_bytes() == committed.read_bytes(), f"{committed} differs from its render"
    again = rerender(DOCS / "protocol", tmp_path / "again")  # the same bytes a second time
    for path in again:
        assert (
            path.read_bytes() == (tmp_path / "protocol" / path.relative_to(tmp_path / "again")).read_bytes()
        )
    for page in DOCS.rglob("*.md"):
        assert all(image.is_file() for image in linked_images(page)), page


def test_a_report_links_only_the_plots_it_wrote(tmp_path):
    full = read_results(DOCS / "results.json")
    page = write_report(full, tmp_path / "full")
    assert sorted(p.name for p in linked_images(page)) == sorted(plotted(full).values())
    assert set(plotted(full)) == {"budget", "position", "curves", "frames_k", "probes"}
    # No budget with validation episodes, no probes, no k runs: no learning curves, no such plots.
    budgets = tuple(
        dataclasses.replace(
            b,
            arms={
                arm: dataclasses.replace(c, val_accuracy_mean=tuple(math.nan for _ in c.val_accuracy_mean))
                for arm, c in b.arms.items()
            },
        )
        for b in full.convergence.budgets
    )
    bare = dataclasses.replace(
        full, convergence=Convergence(budgets), probes=None, frames_k=None, frames_k_difference=None
    )
    page = write_report(bare, tmp_path / "bare")
    images = linked_images(page)
    assert sorted(p.name for p in images) == ["accuracy_by_position.png", "accuracy_vs_budget.png"]
    assert all(image.is_file() for image in images)
    assert not (tmp_path / "bare" / "learning_curves.png").exists()


def test_budgets_whose_draws_lack_a_class_and_the_highlighted_arms():
    two = read_results(DOCS / "results.json")
    five = read_results(DOCS / "protocol_all" / "results.json")
    assert [holds_every_class(two, b.labelled_episodes) for b in two.budgets] == [False, True, True, True]
    assert [
        b.labelled_episodes for b in five.budgets if not holds_every_class(five, b.labelled_episodes)
    ] == [
        1,
        2,
        4,
    ]
    # Nine arms: scratch and the two furthest ahead of it over the budgets that hold both classes.
    assert highlighted(two) == ["scratch", "order_verification", "skip_clip"]
    assert highlighted(five) == list(five.arms)  # few arms: all of them


def test_a_written_record_reads_back_equal(tmp_path):
    record = results_of(by_hand(), "by hand")
    write_results(record, tmp_path)
    assert read_results(tmp_path) == record
    # A stored file (with NaN, which JSON writes as null) through the writer and back.
    stored = read_results(DOCS / "results.json")
    write_results(stored, tmp_path)
    written = json.loads((tmp_path / "results.json").read_text())
    again = read_results(tmp_path)
    assert json.dumps(to_json(again)) == json.dumps(to_json(stored))
    original = json.loads((DOCS / "results.json").read_text())
    assert list(written) == ["format_version", *original] and written["format_version"] == FORMAT_VERSION


def one_line_error(path: Path) -> str:
    with pytest.raises(UserError) as error:
        read_results(path)
    message = str(error.value)
    assert "\n" not in message and str(path) in message
    return message


def test_an_unknown_version_or_a_damaged_file_is_one_line_naming_file_and_field(tmp_path):
    path = tmp_path / "results.json"
    path.write_text(json.dumps({**by_hand(), "format_version": 99}))
    assert "version 99" in one_line_error(path)
    damaged = by_hand()
    del damaged["budgets"][1]["arms"]["m"]["accuracy_ci95"]
    path.write_text(json.dumps(damaged))
    assert "budgets[1].arms.m.accuracy_ci95: missing" in one_line_error(path)
    damaged = by_hand()
    damaged["data"]["train_episodes"] = "twenty"
    path.write_text(json.dumps(damaged))
    assert "data.train_episodes: expected int, found str" in one_line_error(path)
    path.write_text('{"arms": [')
    assert "not a JSON file" in one_line_error(path)
    assert "no such file" in one_line_error(tmp_path / "missing.json")


def test_damaged_state_files_are_one_line_errors(tmp_path):
    log = tmp_path / "runs.jsonl"
    log.write_text(json.dumps({"arm": "scratch", "labelled_episodes": "4"}) + "\n")
    with pytest.raises(UserError, match=r"runs\.jsonl, line 1: field 'labelled_episodes'"):
        read_run_log(log)
    (tmp_path / "compare.json").write_text(json.dumps({"arms": []}))
    with pytest.raises(UserError, match=r"compare\.json: field 'config' is missing or damaged"):
        read_done(tmp_path, {"config": {}}, CompareConfig())
