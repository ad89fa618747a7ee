"""Crash-safe run files: torn JSONL tails are cut, resume truncation keeps epochs <= N, and JSON files and
checkpoints are replaced atomically (a crash mid-save leaves the previous file)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from reliability_helpers import read_jsonl_strict, strict_json
from rundir.files import (JsonlWriter, RunFileError, Status, atomic_write, remove_stale_temporaries, repair_tail,
                          truncate_jsonl, write_json)


def lines(*epochs: int) -> str:
    return "".join(json.dumps({"epoch": e, "loss": 1.0 / e}) + "\n" for e in epochs)


def temporaries(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.glob(".*.tmp"))


# ───────────────────────────── JSONL: torn tails and resume truncation ─────────────────────────────


def test_writer_cuts_a_torn_last_line_before_appending(tmp_path):
    path = tmp_path / "train_diagnostics.jsonl"
    path.write_text(lines(1, 2) + '{"epoch": 3, "loss": 0.3')  # the process died mid-write
    writer = JsonlWriter(path)
    writer.write({"epoch": 3, "loss": 0.25})
    writer.close()
    records, tail = read_jsonl_strict(path)
    assert [r["epoch"] for r in records] == [1, 2, 3] and records[2]["loss"] == 0.25  # no glued fragment
    assert tail == b""


@pytest.mark.parametrize("fragment", ['{"epo', '{"epoch": 9, "x": "' + "y" * 10_000])  # short, and > one 4 KiB block
def test_repair_tail_cuts_exactly_the_unterminated_line(tmp_path, fragment):
    path = tmp_path / "f.jsonl"
    path.write_text(lines(1, 2) + fragment)
    assert repair_tail(path) is True
    assert path.read_text() == lines(1, 2)
    assert repair_tail(path) is False  # nothing left to cut
    assert path.read_text() == lines(1, 2)


def test_repair_tail_of_a_file_holding_only_a_fragment_empties_it(tmp_path):
    path = tmp_path / "f.jsonl"
    path.write_text('{"epoch": 1')
    assert repair_tail(path) is True and path.read_bytes() == b""
    assert repair_tail(tmp_path / "absent.jsonl") is False


def test_truncate_jsonl_keeps_epochs_up_to_the_checkpoint(tmp_path):
    path = tmp_path / "train_diagnostics.jsonl"
    path.write_text(lines(1, 2, 3) + "not json\n" + lines(4, 5) + '{"epoch": 6, "lo')
    assert truncate_jsonl(path, 3) == 3
    records, tail = read_jsonl_strict(path)
    assert [r["epoch"] for r in records] == [1, 2, 3] and tail == b""
    assert truncate_jsonl(path, 0) == 0 and path.read_text() == ""
    assert truncate_jsonl(tmp_path / "absent.jsonl", 3) == 0 and not (tmp_path / "absent.jsonl").exists()


def test_truncate_jsonl_leaves_a_file_alone_when_nothing_goes(tmp_path):
    path = tmp_path / "train_diagnostics.jsonl"
    path.write_text(lines(1, 2))
    inode = path.stat().st_ino
    assert truncate_jsonl(path, 2) == 2
    assert path.stat().st_ino == inode and path.read_text() == lines(1, 2)  # not rewritten


# ───────────────────────────── atomic replacement ─────────────────────────────


def test_a_writer_that_fails_midway_leaves_the_previous_file(tmp_path):
    path = tmp_path / "run_info.json"
    write_json(path, {"run": "old"})

    def half_then_fail(f):
        f.write('{"run": "ne')
        raise KeyboardInterrupt  # any exception, even one that is not an Exception

    with pytest.raises(KeyboardInterrupt):
        atomic_write(path, half_then_fail, mode="w")
    assert strict_json(path.read_text()) == {"run": "old"}
    assert temporaries(tmp_path) == []


def test_checkpoint_save_that_dies_before_the_rename_leaves_the_previous_checkpoint(tmp_path, monkeypatch):
    import torch

    from trainer import checkpoint

    path = tmp_path / "last.pt"
    checkpoint.save(path, {"epoch": 1, "model": {"w": torch.ones(2)}})

    def no_rename(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_rename)
    # The checksum goes first (trainer/checkpoint.py): its rename is the one that fails.
    with pytest.raises(RunFileError, match=r"cannot write .*last.pt(\.sha256)?: No space left on device"):
        checkpoint.save(path, {"epoch": 2, "model": {"w": torch.zeros(2)}})
    monkeypatch.undo()
    assert checkpoint.load(path)["epoch"] == 1
    assert temporaries(tmp_path) == []


KILL_DURING_STATUS_UPDATE = """
import os, signal, sys
from rundir import files as runfiles
status = runfiles.Status(sys.argv[1], epochs=3)
status.update(epoch=1)
def die(*_args):  # the temporary file is complete and fsynced; the rename never happens
    os.kill(os.getpid(), signal.SIGKILL)
runfiles.os.replace = die
status.update(epoch=2, status="completed")
"""


def test_sigkill_between_write_and_rename_leaves_the_previous_status(tmp_path):
    path = tmp_path / "status.json"
    proc = subprocess.run([sys.executable, "-c", KILL_DURING_STATUS_UPDATE, str(path)], cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    status = strict_json(path.read_text())
    assert (status["status"], status["epoch"]) == ("running", 1)
    leftovers = temporaries(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].startswith(".status.json.")
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == leftovers  # what a resume does first
    assert temporaries(tmp_path) == [] and strict_json(path.read_text())["epoch"] == 1


def test_replaced_files_get_the_mode_a_plain_open_gives(tmp_path):
    umask = os.umask(0o022)
    os.umask(umask)
    write_json(tmp_path / "status.json", {})
    (tmp_path / "plain").write_text("")
    assert (tmp_path / "status.json").stat().st_mode & 0o777 == (tmp_path / "plain").stat().st_mode & 0o777


def test_a_file_that_cannot_be_written_is_one_clear_error(tmp_path):
    (tmp_path / "status.json").mkdir()
    with pytest.raises(RunFileError) as e:
        Status(tmp_path / "status.json", epochs=1).update(epoch=0)
    assert str(e.value) == f"cannot write {tmp_path / 'status.json'}: Is a directory"
    assert isinstance(e.value, OSError)  # code that tolerates a failed write still does
    from trainer.errors import USER_ERRORS

    assert isinstance(e.value, USER_ERRORS)  # the trainer reports it in one line, exit 2
    assert temporaries(tmp_path) == []
