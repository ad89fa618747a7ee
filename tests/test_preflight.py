"""The pre-flight checks name the files the run writes without importing their owners (torch would make
config errors slow): the names must stay the owners' names."""

from __future__ import annotations

from trainer import checkpoint, loop, preflight


def test_preflight_checks_the_files_the_run_writes():
    assert preflight.CHECKPOINT_FILES == (checkpoint.LAST, checkpoint.BEST,
                                          checkpoint.LAST + checkpoint.CHECKSUM_SUFFIX,
                                          checkpoint.BEST + checkpoint.CHECKSUM_SUFFIX)
    assert preflight.DIAGNOSTICS_FILES == (loop.STATUS, loop.RUN_INFO, loop.TRAIN_JSONL, loop.VAL_JSONL)
