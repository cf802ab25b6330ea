"""results.json and leaderboard.json as typed records: every stored file reads back and renders its
committed page byte for byte, a record written and read is the same record, and damaged files end
in one line naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from airhockey.errors import UserError
from airhockey.learn.config import CompareConfig
from airhockey.learn.protocol.leaderboard import read_leaderboard, render_leaderboard
from airhockey.learn.protocol.records import to_json
from airhockey.learn.protocol.report import render_markdown
from airhockey.learn.protocol.results import FORMAT_VERSION, read_results, results_of, write_results
from airhockey.learn.protocol.runlog import read_done, read_run_log
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
