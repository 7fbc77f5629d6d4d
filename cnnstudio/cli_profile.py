"""`cnnstudio profile`: how long each block of a trained run's model takes on this machine.

The timing is nn/profile.py's; this module prints its table (slowest first, or in graph order
with --sort graph) ending with the totals and the slowest block, or the profile as JSON.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from cnnstudio.cli_common import (
    add_run_dir_argument,
    echo,
    parse_batch_size,
    parse_positive_int,
    require_run_or_project,
    show_load_notes,
    user_path,
)

NAME_WIDTH = 32  # longer block names are cut with an ellipsis in the text table
BAR_WIDTH = 20  # characters of the share bar at 100 %


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "profile", help="time each block of a trained run's model on this machine",
        description="Time each block of a run's model (the main path, as exported) on this "
                    "machine's CPU: the median of several forward passes on random images. "
                    "Example: cnnstudio profile runs/a --runs 50",
    )
    add_run_dir_argument(p, optional=True)
    p.add_argument("--project", type=user_path, metavar="NET.cnnproj",
                   help="time this project's network instead of a run, with random weights "
                        "(the time does not depend on them)")
    p.add_argument("--runs", type=parse_positive_int, metavar="N",
                   help="timed forward passes; each block's time is their median (default 30)")
    p.add_argument("--batch", type=parse_batch_size, default=1, metavar="B",
                   help="images per forward pass (default 1)")
    p.add_argument("--threads", type=parse_positive_int, metavar="T",
                   help="CPU threads for torch (default: torch's own, usually the core count)")
    p.add_argument("--sort", choices=("time", "graph"), default="time",
                   help="slowest block first (default) or in the network's order")
    p.add_argument("--json", action="store_true", help="print JSON")


def user_errors() -> tuple[type, ...]:
    from cnnstudio.nn.profile import ProfileError

    return (ProfileError,)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 1] + "…"


def table_lines(profile: Any, sort: str = "time") -> list[str]:
    """The table as text lines: heading, one row per block, totals and the slowest block."""
    from cnnstudio.nn.profile import COLUMNS

    blocks = profile.ranked() if sort == "time" else list(profile.blocks)
    rows = [COLUMNS, *(_clip_name(block.cells()) for block in blocks)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(COLUMNS))]
    numeric = {3, 4, 5}  # MACs, ms and share align right
    lines = [f"Time per block of '{profile.network}': {profile.setting()}", ""]
    for row, block in zip(rows, [None, *blocks]):
        cells = [cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
                 for i, cell in enumerate(row)]
        bar = "" if block is None else "█" * round(block.share * BAR_WIDTH)
        lines.append(("  ".join(cells) + "  " + bar).rstrip())
    return lines + [""] + profile.summary_lines()


def _clip_name(cells: tuple[str, ...]) -> tuple[str, ...]:
    return (_clip(cells[0], NAME_WIDTH), *cells[1:])


def run(args: argparse.Namespace) -> int:
    from cnnstudio.nn.profile import DEFAULT_RUNS, profile_loaded, profile_run

    require_run_or_project(args, "time")
    runs = args.runs or DEFAULT_RUNS
    if args.project is None:
        profile = profile_run(args.run_dir, batch=args.batch, runs=runs, threads=args.threads)
    else:
        profile = profile_loaded(_project_run(args.project, quiet=args.json), batch=args.batch,
                                 runs=runs, threads=args.threads)
    if args.json:
        print(json.dumps(profile.to_json(), indent=2))
        return 0
    for line in table_lines(profile, args.sort):
        echo(line)
    return 0


def _project_run(path: str, *, quiet: bool) -> Any:
    """The project's network with random weights: the time does not depend on them."""
    from cnnstudio.core.project import load_project
    from cnnstudio.nn.export import project_run

    project = load_project(path)
    if not quiet:
        show_load_notes(project)
    return project_run(project)
