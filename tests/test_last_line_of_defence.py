"""A bug anywhere behind either entry point ends as one line naming a saved traceback, exit 1, never a raw
traceback. The bug is planted from outside (the entry function is called from `python -c` after a function
it uses was replaced by one that raises): the code itself holds no test hook."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from rundir.errorline import INTERNAL_ERROR, TRACEBACK_PREFIX, single_line
from conftest import ROOT

PLANTED = {
    "trainer": ("import trainer.app as app\n"
                "def broken(*a, **k): raise ValueError('planted\\nsecond line')\n"
                "app.run = broken\n"
                "import sys; sys.argv = ['trainer', 'hydra.run.dir={tmp}/run', 'trainer.device=cpu']\n"
                "from trainer.__main__ import entry; entry()\n"),
    "analysis": ("import analysis.dispatch as d\n"
                 "def broken(*a, **k): raise ValueError('planted\\nsecond line')\n"
                 "d.report_paths = broken\n"
                 "import sys; from analysis.__main__ import main; sys.exit(main(['{tmp}']))\n"),
}


@pytest.mark.parametrize("entry", sorted(PLANTED))
def test_an_unexpected_error_is_one_line_with_a_saved_traceback_and_exit_1(entry, tmp_path):
    env = {"PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    proc = subprocess.run([sys.executable, "-c", PLANTED[entry].replace("{tmp}", str(tmp_path))], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=120)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and len(lines) == 1, proc.stderr
    # The message's first line only: the rest, like the traceback, is in the saved file.
    match = re.fullmatch(rf"error: {INTERNAL_ERROR}: ValueError: planted; please report it with (\S+)",
                         lines[0])
    assert match, lines[0]
    saved = Path(match.group(1))
    assert saved.parent == tmp_path and saved.name.startswith(TRACEBACK_PREFIX)
    text = saved.read_text()
    assert "Traceback (most recent call last)" in text and "in broken" in text and "second line" in text


def test_single_line_escapes_line_breaks_and_control_characters_only():
    assert single_line("a\nb\r\x1b[31mc\td é") == "a\\nb\\r\\x1b[31mc\td é"
