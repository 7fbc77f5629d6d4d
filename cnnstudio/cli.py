"""Command-line front end: `cnnstudio [FILE]` opens the application; sub-commands work headless.

Exit status: 0 success (summary: the network is valid), 1 the network has errors, 2 a bad
command, file or value, 141 the reader of the output went away (`cnnstudio summary … | head -1`:
the program stops quietly with the status a shell reports for Unix tools that SIGPIPE ends,
128 + 13, so `set -o pipefail` scripts see the same as with `cat`). No traceback reaches the user
unless CNNSTUDIO_DEBUG=1 is set. Whatever the program prints that came from a user's files
(block, project, class and file names) goes through core.printable: control and bidi characters
show as escapes and never reach the terminal raw.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import traceback
from typing import Sequence

from cnnstudio.cli_common import (
    CLIError,
    echo,
    parse_batch_size,
    parse_classes,
    parse_input_shape,
    parse_positive_int,
    show_load_notes,
    user_path,
)

DEFAULT_TEMPLATE = "keras-mnist"
SUBCOMMANDS = ("gui", "templates", "new", "summary", "train", "export", "tour")
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE, what a shell reports for `yes | head -1`


def _add_network_source(parser: argparse.ArgumentParser, file_required: bool) -> None:
    parser.add_argument("file", nargs="?", type=user_path, metavar="FILE.cnnproj",
                        help="a project file")
    parser.add_argument("--template", metavar="NAME", help="start from a template (see 'templates')")
    parser.add_argument("--input", type=parse_input_shape, metavar="C,H,W",
                        help="input channels, height and width, e.g. 3,32,32")
    parser.add_argument("--classes", type=parse_classes, metavar="N", help="number of classes")


def build_parser() -> argparse.ArgumentParser:
    from cnnstudio import __version__

    parser = argparse.ArgumentParser(
        prog="cnnstudio",
        description="Design, train and export convolutional neural networks visually.",
        epilog="Run 'cnnstudio COMMAND --help' for a command's options. "
        "With no command, the application opens.",
    )
    parser.add_argument("--version", action="version", version=f"CNN Studio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    gui = sub.add_parser("gui", help="open the application (the default)")
    _add_network_source(gui, file_required=False)
    gui.add_argument("--screenshot", type=user_path, metavar="OUT.png",
                     help="render the window off-screen to a PNG file and exit")
    gui.add_argument("--page", choices=("canvas", "lab", "start"), default="canvas",
                     help="the page to show: the canvas (default), the convolution lab or the "
                     "start page")
    gui.add_argument("--theme", choices=("light", "dark", "system"),
                     help="colour theme (default: the last one chosen, else the system's)")

    templates = sub.add_parser("templates", help="list the ready-made networks")
    templates.add_argument("--json", action="store_true", help="print JSON")

    new = sub.add_parser("new", help="write a new project file from a template")
    new.add_argument("--template", required=True, metavar="NAME")
    new.add_argument("--input", type=parse_input_shape, metavar="C,H,W")
    new.add_argument("--classes", type=parse_classes, metavar="N")
    new.add_argument("-o", "--output", required=True, type=user_path, metavar="FILE.cnnproj")
    new.add_argument("--force", action="store_true",
                     help="overwrite an existing file (never a device, a pipe or a folder)")

    summary = sub.add_parser(
        "summary", help="print the layer table: shapes, parameters, MACs, receptive fields"
    )
    _add_network_source(summary, file_required=True)
    summary.add_argument("--json", action="store_true", help="print JSON")
    summary.add_argument("--batch-size", type=parse_batch_size, default=64, metavar="B",
                         help="batch size for the training-memory estimate (default 64)")
    from cnnstudio.cli_train import add_export_parser, add_train_parser

    add_train_parser(sub)
    add_export_parser(sub)
    tour = sub.add_parser(
        "tour", help="train the default project in the window off-screen and save screenshots "
        "of each step (python -m cnnstudio.tour, for the built application)")
    tour.add_argument("--out", required=True, type=user_path, metavar="DIR",
                      help="folder for the screenshots and tour.json")
    tour.add_argument("--epochs", type=parse_positive_int, default=1, metavar="N",
                      help="epochs to train (default 1)")
    return parser


def load_network(args: argparse.Namespace, default_template: str | None = None):
    """The project named by FILE or --template, adapted to --input/--classes."""
    from cnnstudio.core.adapt import adapt
    from cnnstudio.core.graph import GraphError
    from cnnstudio.core.project import load_project
    from cnnstudio.core.templates import new_project

    if args.file and args.template:
        raise CLIError("give either a project file or --template, not both")
    if args.file:
        project = load_project(args.file)
        show_load_notes(project)
        try:
            adapt(project.graph, args.input, args.classes)
        except GraphError as err:
            raise CLIError(str(err)) from None
        return project
    name = args.template or default_template
    if name is None:
        raise CLIError("name a project file or a template (--template NAME; see 'cnnstudio templates')")
    return new_project(name, args.input, args.classes)


def cmd_templates(args: argparse.Namespace) -> int:
    from cnnstudio.core.analysis import analyze
    from cnnstudio.core.printable import printable_json
    from cnnstudio.core.templates import TEMPLATES

    rows = []
    for template in TEMPLATES.values():
        analysis = analyze(template.build(template.default_input, template.default_classes))
        rows.append({
            "id": template.id,
            "title": template.title,
            "description": template.description,
            "input": list(template.default_input),
            "classes": template.default_classes,
            "params": analysis.total_params,
        })
    if args.json:
        print(printable_json(rows, indent=2))
        return 0
    width = max(len(r["id"]) for r in rows)
    for r in rows:
        shape = "×".join(str(d) for d in r["input"])
        print(f"{r['id']:<{width}}  {r['title']}  ({shape}, {r['classes']} classes, "
              f"{r['params']:,} parameters)")
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    from cnnstudio.core.analysis import analyze
    from cnnstudio.core.files import replace_refusal
    from cnnstudio.core.project import save_project
    from cnnstudio.core.templates import new_project

    refusal = replace_refusal(args.output)  # a device, pipe or folder: --force or not
    if refusal is not None:
        raise CLIError(f"cannot write {args.output}: {refusal}")
    if os.path.exists(args.output) and not args.force:
        raise CLIError(f"{args.output} already exists; choose another name or add --force")
    project = new_project(args.template, args.input, args.classes)
    save_project(project, args.output)
    analysis = analyze(project.graph)
    echo(f"Wrote {args.output}: {project.name}, {analysis.total_params:,} parameters")
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from cnnstudio.core.analysis import analyze
    from cnnstudio.core.printable import printable_json
    from cnnstudio.core.summary import render_table, summary_dict

    if not args.file and not args.template:
        raise CLIError("name a project file or a template (--template NAME; see 'cnnstudio templates')")
    project = load_network(args)
    analysis = analyze(project.graph)
    optimizer = project.training.get("optimizer", "adam")
    if args.json:
        data = summary_dict(project.graph, analysis, args.batch_size, optimizer)
        print(printable_json(data, indent=2))
    else:
        echo(render_table(project.graph, analysis, args.batch_size, optimizer, title=project.name))
    return 0 if analysis.ok else 1


def cmd_gui(args: argparse.Namespace) -> int:
    if args.file and args.template:
        raise CLIError("give either a project file or --template, not both")
    from cnnstudio.ui.app import AppError, run

    try:
        return run(file=args.file, template=args.template, screenshot=args.screenshot,
                   theme=args.theme, page=args.page, input_shape=args.input,
                   classes=args.classes)
    except AppError as err:
        raise CLIError(str(err)) from None


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.cli_train import cmd_train as run

    return run(args)


def cmd_export(args: argparse.Namespace) -> int:
    from cnnstudio.cli_train import cmd_export as run

    return run(args)


def cmd_tour(args: argparse.Namespace) -> int:
    """The tour as `python -m cnnstudio.tour` runs it, ending the same way: without Qt's and
    torch's teardown of what the tour leaves behind."""
    from cnnstudio.tour import main as run

    status = run(["--out", args.out, "--epochs", str(args.epochs)])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


COMMANDS = {"gui": cmd_gui, "templates": cmd_templates, "new": cmd_new, "summary": cmd_summary,
            "train": cmd_train, "export": cmd_export, "tour": cmd_tour}


def _user_errors() -> tuple[type[BaseException], ...]:
    from cnnstudio.core.graph import GraphError
    from cnnstudio.core.project import ProjectError
    from cnnstudio.core.templates import UnknownTemplate

    errors: list[type[BaseException]] = [CLIError, GraphError, ProjectError, UnknownTemplate]
    for module, name in (("cnnstudio.train.data", "DatasetError"),
                         ("cnnstudio.train.engine", "TrainingError"),
                         ("cnnstudio.train.run_folder", "RunFolderError"),
                         ("cnnstudio.nn.export", "ExportError")):
        loaded = sys.modules.get(module)  # only if the command imported it: keeps start-up light
        if loaded is not None and hasattr(loaded, name):
            errors.append(getattr(loaded, name))
    return tuple(errors)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        return _main(argv)
    except BrokenPipeError:
        return _output_closed()


def _output_closed() -> int:
    """The reader of the output went away (`cnnstudio summary … | head -1`): stop quietly, as
    Unix tools do. Standard output then points at the null device, so that the interpreter's
    own flush at exit finds no closed pipe either."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, sys.stdout.fileno())
        os.close(null)
    return EXIT_BROKEN_PIPE


def _main(argv: Sequence[str] | None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list or (args_list[0] not in SUBCOMMANDS
                         and args_list[0] not in ("-h", "--help", "--version")):
        args_list.insert(0, "gui")
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        sys.stdout.flush()  # --help into a closed pipe
        return int(exit_.code or 0)
    try:
        status = COMMANDS[args.command](args)
        sys.stdout.flush()  # a reader that went away shows here, not in the exit's own flush
        return status
    except KeyboardInterrupt:
        print("cnnstudio: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        raise
    except MemoryError:
        print("cnnstudio: error: the computer ran out of memory; close other programs, or use "
              "a smaller batch size, input or dataset", file=sys.stderr)
        return 2
    except Exception as err:
        if os.environ.get("CNNSTUDIO_DEBUG"):
            traceback.print_exc()
        if isinstance(err, _user_errors()):
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            echo(f"cnnstudio: error: {message}", err=True)
        else:
            print(f"cnnstudio: internal error: {err!r}; please report it "
                  "(set CNNSTUDIO_DEBUG=1 for details)", file=sys.stderr)
        return 2
