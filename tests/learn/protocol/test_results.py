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
from airhockey.learn.protocol.summaries import goal
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
    bare = dataclasses.replace(full, convergence=Convergence(budgets), probes=None, by_k=(), oracle_by_k=())
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
    # Nine arms: scratch and the two furthest ahead of it over the budgets that hold both classes,
    # at every k: order_verification leads next_frame at k = 1 (+2.7 against +1.4 points at 4
    # episodes), next_frame it at k = 4 (+5.1 against +1.7 at 240), which decides.
    assert highlighted(two) == ["scratch", "next_frame", "skip_clip"]
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
    # Version 0, upgraded: the k > 1 runs of its one k budget as by_k and oracle_by_k.
    renamed = {"frames_k": "by_k", "oracle_frames_k": "oracle_by_k"}
    expected = [renamed.get(key, key) for key in original if key != "frames_k_difference"]
    assert list(written) == ["format_version", *expected] and written["format_version"] == FORMAT_VERSION


def test_a_version_1_file_is_upgraded_to_every_budget_and_k():
    v1 = by_hand()  # k = 1 and 4 at 4 labelled episodes, the oracle at both
    results = results_of(v1, "by hand")
    assert results.format_version == FORMAT_VERSION == 2
    assert [(b.labelled_episodes, b.context_frames, b.budget) for b in results.by_k] == [(4, 4, 4)]
    assert results.by_k[0].arms["m"].accuracy_mean == 0.85 and results.by_k[0].to_baselines == {}
    assert [(o.labelled_episodes, o.context_frames) for o in results.oracle] == [(4, 1), (20, 1)]
    assert [(o.labelled_episodes, o.context_frames) for o in results.oracle_by_k] == [(4, 4)]
    assert results.oracle_at(4, 4).boosting.accuracy_mean == 0.98
    assert results.at(20, 4) is None and results.at(20).budget == "all"
    assert results.ks == [1, 4] and results.k_budget == 4 and results.frames_k_budget == 4
    # The view of version 1's fields: k = 1 from the budget itself.
    assert results.frames_k["m"] == {1: results.budgets[0].arms["m"], 4: results.by_k[0].arms["m"]}
    assert set(results.oracle_frames_k) == {1, 4}
    # Without k > 1 runs: no by_k, no restriction recorded.
    bare = results_of({**v1, "frames_k": None, "oracle_frames_k": {}}, "by hand")
    assert (
        bare.by_k == () and bare.oracle_by_k == () and bare.frames_k_budget is None and bare.frames_k is None
    )
    # Version 0 (no format_version) goes through both upgrades.
    v0 = {k: v for k, v in by_hand().items() if k != "format_version"}
    assert results_of(v0, "by hand") == results


def test_the_goal_against_the_better_supervised_arm_at_small_budgets():
    base = by_hand()
    base["arm_details"]["p"] = {
        "name": "p",
        "kind": "scratch",
        "method": None,
        "encoder": {},
        "pretext_runs": [],
    }
    base["arms"] = ["scratch", "m", "p"]

    def difference(mean: float, lo: float) -> dict:
        return {"mean": mean, "ci95": [lo, lo + 0.1], "per_repeat": [], "wins": 0, "ties": 0, "repeats": 0}

    for budget in base["budgets"]:
        budget["arms"]["p"] = budget["arms"]["m"]  # the practitioner's arm as good as m
        budget["paired_difference"]["p"] = difference(0.1, 0.05)
        budget["to_baselines"] = {"p": {"scratch": difference(-0.1, -0.15), "m": difference(0.0, -0.05)}}
    base["frames_k"] = None
    base["oracle_frames_k"] = {}
    found = goal(results_of(base, "by hand"))
    # m is 10 points over scratch, but the better supervised arm is p, and m is 0 points over it.
    assert found is not None and not found.met and found.baseline == "p" and found.arm == "m"
    assert (found.labelled_episodes, found.context_frames, found.difference.mean) == (4, 1, 0.0)
    text = render_markdown(results_of(base, "by hand"))
    assert "not met; the best gap is m at 4 labelled episodes, k = 1: 0.0 points over p" in text
    assert "## Each arm against the supervised baselines, at each budget and k" in text
    assert "| minus scratch (points) | minus p (points) |" in text
    base["budgets"][0]["to_baselines"]["p"]["m"] = difference(0.06, 0.01)  # m ahead of p by 6 points
    found = goal(results_of(base, "by hand"))
    assert found is not None and found.met and (found.arm, found.labelled_episodes) == ("m", 4)
    assert "met by m at 4 labelled episodes, k = 1: +6.0 points over p" in render_markdown(
        results_of(base, "by hand")
    )


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
