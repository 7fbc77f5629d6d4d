"""What the command modules share: the error type, printing, and the argument parsers.

`cli.py` (the front end) and `cli_train.py` (train and export) both import from here, so the
front end can import the training commands lazily without the training commands importing the
front end back. Standard library only at import time: the command line starts instantly.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

RUN_DIR_HELP = "a run folder written by 'train'"


class CLIError(Exception):
    """A bad command or value: printed as 'cnnstudio: error: …' with exit status 2."""


def echo(text: str, *, err: bool = False) -> None:
    """Print a line that may hold text from a user's files, control characters escaped."""
    from cnnstudio.core.printable import printable

    print(printable(text), file=sys.stderr if err else sys.stdout)


def user_path(text: str) -> str:
    """A path argument with '~' expanded, also where the shell left it (quoted, or given with
    '=' as in --out=~/runs), as dataset specs (npz:~/x) always had it."""
    return os.path.expanduser(text)


def add_run_dir_argument(parser: argparse.ArgumentParser, *, optional: bool = False,
                         help: str = RUN_DIR_HELP) -> None:
    """The positional RUN_DIR of the commands that read a training run; `optional` where
    another option (such as --project) may stand in for it."""
    parser.add_argument("run_dir", type=user_path, metavar="RUN_DIR",
                        nargs="?" if optional else None, help=help)


def require_run_or_project(args: argparse.Namespace, verb: str) -> None:
    """Exactly one of RUN_DIR and --project, for the commands that take either (`verb`: what
    the command does to it, as in "export")."""
    if (args.run_dir is None) == (args.project is None):
        raise CLIError("give either a run folder (RUN_DIR) or --project NET.cnnproj, not both"
                       if args.project else
                       f"give the run folder to {verb} (RUN_DIR), or --project NET.cnnproj to "
                       f"{verb} a project's network without training")


def parse_input_shape(text: str) -> tuple[int, int, int]:
    parts = [p for p in re.split(r"[,x×\s]+", text.strip()) if p]
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(
            f"expected channels,height,width such as 3,32,32, got {text!r}"
        )
    channels, height, width = (int(p) for p in parts)
    if not (1 <= channels <= 64 and 1 <= height <= 8192 and 1 <= width <= 8192):
        raise argparse.ArgumentTypeError(
            f"input {text!r} out of range: channels 1 to 64, height and width 1 to 8,192"
        )
    return channels, height, width


def parse_classes(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 1_000_000:
        raise argparse.ArgumentTypeError(
            f"expected a number of classes from 1 to 1,000,000, got {text!r}"
        )
    return int(text)


def parse_batch_size(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= 65536:
        raise argparse.ArgumentTypeError(f"expected a batch size from 1 to 65,536, got {text!r}")
    return int(text)


def parse_positive_int(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return int(text)


def show_load_notes(project) -> None:
    """What loading filled in for the user (a parameter missing from the file), on stderr."""
    for note in project.load_notes:
        echo(f"note: {note}", err=True)
