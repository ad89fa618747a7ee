"""`python -m analysis PATH...`: diagnose a run, compare the runs of a sweep, or compare sweeps.

    python -m analysis outputs/2026-11-25/12-00-00               # one run
    python -m analysis --file .../diagnostics/train_diagnostics.jsonl
    python -m analysis RUN --format json | jq '.findings[].id'
    python -m analysis RUN --out report/                          # report.md, report.json, report.html, PNGs
    python -m analysis --rules                                    # the rule catalog
    python -m analysis RUN --verify -- hydra/launcher=joblib      # rerun the top fixes and a control (docs/sweeps.md)
    python -m analysis lightning_logs/version_0/metrics.csv       # another tool's run (docs/importers.md)

Exit status: 0 when a report was made (reading warnings included), 2 when the input cannot be read
as a run at all (a missing path, a directory that is no run, a file with no diagnostics record in it)
or --out cannot be written (checked first: then no report is printed), 1 with --fail-on when a
finding of that severity or worse fired. Every exit 2 is one `error: ...` line on stderr.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rundir.read import RunError
from rundir.errorline import last_line_of_defence, single_line

from .catalog_doc import catalog_markdown
from .cli_parser import OneLineParser, given_path
from .dispatch import report_paths
from .importers import FORMATS as FROM, options
from .render.formats import PRINTABLE
from .verify import verify_command



def parse_args(argv: list[str]) -> argparse.Namespace:
    ap = OneLineParser(prog="python -m analysis", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("paths", nargs="*", type=given_path, help="run directories, sweep directories or JSONL files")
    ap.add_argument("--file", type=given_path, action="append", default=[], help="one diagnostics JSONL file, read on its own")
    ap.add_argument("--format", choices=PRINTABLE, default="text", help="what to print (default: text)")
    ap.add_argument("--out", type=Path, help="also write the report files into this directory (created if "
                                             "missing; an error, exit 2, when it cannot be written)")
    ap.add_argument("--fail-on", choices=("info", "warning", "critical"),
                    help="exit 1 when a finding of this severity or worse fired")
    ap.add_argument("--rules", action="store_true", help="print the rule catalog (Markdown) and exit")
    imports = ap.add_argument_group("runs from other tools (docs/importers.md)")
    imports.add_argument("--from", dest="source", choices=FROM,
                         help="the log format (default: detected from the path)")
    imports.add_argument("--map", action="append", default=[], metavar="NAME=FIELD",
                         help="read metric NAME as FIELD (train.loss, val.accuracy, ...; or ignore); repeatable")
    imports.add_argument("--steps-per-epoch", type=int, metavar="N",
                         help="TensorBoard: N logged steps make one epoch (default: the epoch tag, or inferred)")
    v = ap.add_argument_group("verify (docs/sweeps.md): python -m analysis RUN --verify [-- HYDRA OVERRIDES]")
    v.add_argument("--verify", action="store_true", help="rerun the top fixes and a control as one Hydra multirun "
                   "(python -m trainer -m); what follows -- goes to it (hydra/launcher=joblib, ...)")
    v.add_argument("--top", type=int, default=3, help="fixes to verify (default 3)")
    v.add_argument("--epochs", type=int, help="epochs per verification job (default: the run's own)")
    v.add_argument("--seeds", type=int, default=1, help="seeds per fix and control (default 1; 3 measure noise)")
    own, _, extra = _split_dashes(argv)
    args = ap.parse_args(own)
    args.hydra_overrides = tuple(extra)
    if args.hydra_overrides and not args.verify:
        ap.error("overrides after -- are for --verify only")
    return args


def _split_dashes(argv: list[str]) -> tuple[list[str], None, list[str]]:
    """`RUN --verify -- hydra/launcher=joblib` -> the analysis' own arguments, and the trainer's."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], None, argv[i + 1:]
    return argv, None, []


def main(argv: list[str] | None = None) -> int:
    """Anything unexpected ends as one line naming a saved traceback, exit 1 (rundir/errorline.py)."""
    with last_line_of_defence():
        return _main(argv)


def _main(argv: list[str] | None) -> int:
    for stream in (sys.stdout, sys.stderr):  # a path's undecodable bytes print as \xff, never a traceback
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.rules:
        print(catalog_markdown(), end="")
        return 0
    paths = [*args.paths, *args.file]
    if not paths:
        print("error: give a run directory, a sweep directory or --file JSONL", file=sys.stderr)
        return 2
    try:
        imports = options(args.source, args.map, args.steps_per_epoch)
        if args.verify:
            return verify_command(paths, args)
        return report_paths(paths, args.format, args.out, args.fail_on, imports)
    except RunError as e:
        print(single_line(f"error: {e}"), file=sys.stderr)
        return 2
    except BrokenPipeError:  # `| head` closed the pipe: not an error of ours
        return 0


if __name__ == "__main__":
    sys.exit(main())
