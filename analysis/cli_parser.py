"""`python -m analysis`'s argument parser, with one `error:` line for every mistake on the command line
(argparse's own prints an 8-line usage block first): an unknown option names the closest one (difflib),
and an empty path is refused (`''` is the current directory to Path(), which is never what was meant)."""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import NoReturn

HINT = "python -m analysis --help lists them"


def given_path(text: str) -> Path:
    """A path argument; an empty one is refused (Path('') would analyse the working directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path (Path('') is the current directory): give a run "
                                         "directory, a sweep directory or a file")
    return Path(text)


class OneLineParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        unknown = message.removeprefix("unrecognized arguments: ")
        if unknown != message:
            message = "; ".join(self._unknown(arg) for arg in unknown.split() if arg.startswith("-")) or message
        print(f"error: {message}", file=sys.stderr)
        raise SystemExit(2)

    def _unknown(self, arg: str) -> str:
        flag = arg.split("=", 1)[0]
        options = [o for action in self._actions for o in action.option_strings if o.startswith("--")]
        close = difflib.get_close_matches(flag, options, n=1, cutoff=0.5)
        return f"unknown option {flag}" + (f"; did you mean {close[0]}?" if close else f" ({HINT})")
