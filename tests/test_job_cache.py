"""The sweep's job cache (analysis/job_cache.py): a sweep analysed again analyses only the jobs whose files
changed, and its report is the one a fresh analysis gives; a damaged cache is analysed around, never trusted."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from analysis import job_cache, jobs
from analysis.__main__ import main
from analysis.job_cache import CACHE_FILE


@pytest.fixture
def sweep(sweep_2x2, tmp_path) -> Path:
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, copy, ignore=shutil.ignore_patterns("analysis"))
    return copy


@pytest.fixture
def analysed(monkeypatch) -> list[str]:
    """The job directories analysed (not taken from the cache), in order, as the command runs in-process."""
    seen: list[str] = []
    real = jobs.analyze_job

    def counting(path, imports=None, per_sample=True):
        seen.append(Path(getattr(path, "path", path)).name)
        return real(path, imports, per_sample)

    monkeypatch.setattr(jobs, "analyze_job", counting)
    return seen


def analyse(sweep: Path, capsys, *extra: str) -> dict:
    assert main([str(sweep), "--format", "json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_second_analysis_reads_the_cache_and_reports_the_same(sweep, analysed, capsys):
    first = analyse(sweep, capsys)
    assert sorted(analysed) == ["0", "1", "2", "3"]
    lines = (sweep / "analysis" / CACHE_FILE).read_text().splitlines()
    assert len(lines) == 1 + 4  # a header, then one line per job
    analysed.clear()
    second = analyse(sweep, capsys)
    assert analysed == []  # every job from the cache
    assert second == first


def test_a_changed_job_is_analysed_again(sweep, analysed, capsys):
    first = analyse(sweep, capsys)
    val = sweep / "2" / "diagnostics" / "val_diagnostics.jsonl"
    records = val.read_text().splitlines()
    val.write_text(records[0] + "\n")  # job 2 now has one validation epoch of two
    analysed.clear()
    second = analyse(sweep, capsys)
    assert analysed == ["2"]
    row = {r["job"]: r for r in second["runs"]}
    assert row["2"]["best_epoch"] == 1
    assert {k: v for k, v in row.items() if k != "2"} == {r["job"]: r for r in first["runs"] if r["job"] != "2"}


def test_new_code_or_other_import_options_analyse_everything(sweep, analysed, capsys, monkeypatch):
    analyse(sweep, capsys)
    analysed.clear()
    monkeypatch.setattr(job_cache, "code_version", lambda: "another version")
    analyse(sweep, capsys)
    assert sorted(analysed) == ["0", "1", "2", "3"]


@pytest.mark.parametrize("damage", ["truncated", "garbage", "wrong types", "a link"])
def test_a_damaged_cache_is_analysed_around(sweep, analysed, capsys, damage, tmp_path):
    first = analyse(sweep, capsys)
    cache = sweep / "analysis" / CACHE_FILE
    text = cache.read_text()
    if damage == "truncated":
        cache.write_text(text[: len(text) // 2])
    elif damage == "garbage":
        cache.write_bytes(b"\x00\xff{not json\n" * 10)
    elif damage == "wrong types":
        header, *rows = text.splitlines()
        broken = [json.dumps({**json.loads(r), "findings": 7}) for r in rows]
        cache.write_text("\n".join([header, *broken]) + "\n")
    else:
        target = tmp_path / "elsewhere.jsonl"
        target.write_text(text)
        cache.unlink()
        os.symlink(target, cache)
    analysed.clear()
    assert analyse(sweep, capsys) == first
    assert analysed  # nothing damaged was trusted
    if damage == "a link":
        assert target.read_text() == text  # the link is replaced, never written through


def test_a_running_job_is_not_cached(sweep, analysed, capsys):
    status = sweep / "1" / "diagnostics" / "status.json"
    status.write_text(json.dumps({**json.loads(status.read_text()), "status": "running"}))
    analyse(sweep, capsys)
    dirs = [json.loads(line)["dir"] for line in (sweep / "analysis" / CACHE_FILE).read_text().splitlines()[1:]]
    assert sorted(dirs) == ["0", "2", "3"]
    analysed.clear()
    analyse(sweep, capsys)
    assert analysed == ["1"]


def test_runs_compared_one_by_one_write_no_cache(sweep, capsys, tmp_path):
    out = tmp_path / "out"
    assert main([str(sweep / "0"), str(sweep / "1"), "--out", str(out)]) == 0
    capsys.readouterr()
    assert not (out / CACHE_FILE).exists()
    assert not (sweep / "analysis").exists()


def test_the_end_of_sweep_report_leaves_the_cache_the_users_analysis_reads(sweep_2x2, analysed, capsys, tmp_path):
    """Hydra's end-of-sweep callback writes <sweep>/analysis/ with the job cache: the user's own
    `python -m analysis <sweep>` after the sweep analyses no job again."""
    assert (sweep_2x2 / "analysis" / CACHE_FILE).is_file()
    copy = tmp_path / "sweep"
    shutil.copytree(sweep_2x2, copy)  # copy2 keeps the modification times the signatures hold
    analyse(copy, capsys)
    assert analysed == []
