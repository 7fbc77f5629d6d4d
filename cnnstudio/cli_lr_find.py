"""`cnnstudio lr-find`: the learning-rate finder from the command line (train/lr_find.py).

The network and dataset arguments are `cnnstudio train`'s (the same parsers, the same loading),
so a rate found here trains the same network on the same data with `cnnstudio train --lr`.
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnstudio.cli_common import echo, parse_batch_size, parse_positive_int
from cnnstudio.core.settings import PRECISIONS


def add_parser(sub: Any) -> None:
    from cnnstudio.cli_train import _learning_rate, add_network_and_data_arguments

    p = sub.add_parser(
        "lr-find", help="find a learning rate: a short sweep from 1e-7 to 1",
        description="Train a copy of the network for a few mini-batches while the learning "
                    "rate grows from --start to --end, print the loss against the rate and "
                    "suggest a rate. The project file is not changed. Example: cnnstudio "
                    "lr-find --template keras-mnist --dataset mnist-sample",
    )
    add_network_and_data_arguments(p)
    p.add_argument("--batch-size", type=parse_batch_size, metavar="B")
    p.add_argument("--optimizer", choices=("sgd", "rmsprop", "adam", "adamw"))
    p.add_argument("--augment", metavar="LIST",
                   help="comma-separated: flip, translate, rotate, scale, channel_permute, "
                        "grayscale")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--precision", choices=PRECISIONS)
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument("--random-start", action="store_true",
                   help="ignore the weights file the project starts from")
    p.add_argument("--steps", type=parse_positive_int, metavar="N",
                   help="mini-batches in the sweep, one learning rate each (default 100)")
    p.add_argument("--start", type=_learning_rate, metavar="X",
                   help="the first rate (default 1e-7)")
    p.add_argument("--end", type=_learning_rate, metavar="X", help="the last rate (default 1)")


def user_errors() -> tuple[type, ...]:
    from cnnstudio.train.data import DatasetError
    from cnnstudio.train.guards import TrainingError

    return (TrainingError, DatasetError)


def _with_train_defaults(args: argparse.Namespace) -> argparse.Namespace:
    """`args` with `cnnstudio train`'s defaults for the options this command does not offer
    (--resume, --out, --epochs, …): the loading it shares with `train` reads them all."""
    from cnnstudio.cli_train import add_train_parser

    train = add_train_parser(argparse.ArgumentParser().add_subparsers())
    defaults = {a.dest: a.default for a in train._actions if a.dest != "help"}
    return argparse.Namespace(**{**defaults, **vars(args)})


def run(args: argparse.Namespace) -> int:
    from cnnstudio.cli_train import _project_and_data
    from cnnstudio.train import lr_find as lf
    from cnnstudio.train.options import TrainOptions

    start = args.start if args.start is not None else lf.START_RATE
    end = args.end if args.end is not None else lf.END_RATE
    steps = args.steps if args.steps is not None else lf.STEPS
    lf.check_range(start, end, steps)  # before the dataset loads
    project, data = _project_and_data(_with_train_defaults(args))
    if args.random_start:
        project.weights = None
    options = TrainOptions.from_settings(project.training)
    echo(f"Sweeping the learning rate from {start:g} to {end:g} over {steps} mini-batches of "
         f"{options.batch_size} ({options.optimizer}) ...")
    result = lf.lr_find(project, data, options, start=start, end=end, steps=steps)
    for note in result.notes:
        echo(f"note: {note}")
    _print_table(result)
    if result.suggestion is not None and len(result.points) < steps:  # else in the message
        echo(f"stopped after {len(result.points)} of {steps} steps: {result.stop_reason}")
    echo(f"{result.seconds:.1f} s on {result.device}")
    echo(result.message[:1].upper() + result.message[1:])
    if result.suggestion is not None:
        echo(f"Use it with: cnnstudio train --lr {result.suggestion:.2g} (or set it as the "
             "project's learning rate)")
    return 0


def _print_table(result: Any) -> None:
    from cnnstudio.train.lr_find import table_points

    rows = table_points(result)
    if not rows:
        return
    lowest = result.lowest
    echo(f"{'learning rate':>14}  {'loss':>10}  {'smoothed':>10}")
    for point in rows:
        mark = "  <- lowest" if point is lowest else ""
        echo(f"{point.rate:>14.2e}  {point.loss:>10.4g}  {point.smoothed:>10.4g}{mark}")
