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
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Any, Sequence

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
# Commands whose code is a module of its own (name -> module). Each such module has
# `add_parser(sub)`, which imports core only, `run(args) -> int`, and may have
# `user_errors() -> tuple[type, ...]`: the exception types whose message is meant for the user
# (a function, so that the module imports no more than core until its command runs).
MODULE_COMMANDS: dict[str, str] = {
    "explain": "cnnstudio.cli_explain",
    "quantize": "cnnstudio.cli_quantize",
    "profile": "cnnstudio.cli_profile",
    "lr-find": "cnnstudio.cli_lr_find",
    "kernels": "cnnstudio.cli_kernels",
}
SUBCOMMANDS = ("gui", "templates", "new", "summary", "train", "export", "import", "tour",
               *MODULE_COMMANDS)
EXIT_BROKEN_PIPE = 128 + 13  # 128 + SIGPIPE, what a shell reports for `yes | head -1`


def _add_network_source(parser: argparse.ArgumentParser, file_required: bool) -> None:
    parser.add_argument("file", nargs="?", type=user_path, metavar="FILE.cnnproj",
                        help="a project file")
    parser.add_argument("--template", metavar="NAME",
                        help="start from a template (see 'templates')")
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
    _add_import_parser(sub)
    for module in MODULE_COMMANDS.values():
        importlib.import_module(module).add_parser(sub)
    tour = sub.add_parser(
        "tour", help="train the default project in the window off-screen and save screenshots "
        "of each step (python -m cnnstudio.tour, for the built application)")
    tour.add_argument("--out", required=True, type=user_path, metavar="DIR",
                      help="folder for the screenshots and tour.json")
    tour.add_argument("--epochs", type=parse_positive_int, default=1, metavar="N",
                      help="epochs to train (default 1)")
    return parser


def _project_name(text: str) -> str:
    if not text.strip() or len(text) > 200:
        raise argparse.ArgumentTypeError(
            f"expected a project name of 1 to 200 characters, got {text!r}")
    return text


def _add_import_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "import", help="turn an ONNX file or a torchvision model into a project with its weights",
        description="Import a network: an ONNX file, or a torchvision model by name. Writes "
        "NET.cnnproj and NET.weights.pt beside it; training starts from those weights. A "
        "network with an operation that has no block is refused as a whole, naming each one. "
        "Examples: cnnstudio import resnet18.onnx -o resnet18.cnnproj; "
        "cnnstudio import --torchvision resnet18 --weights resnet18-f37072fd.pth")
    p.add_argument("model", nargs="?", type=user_path, metavar="MODEL.onnx",
                   help="an ONNX file (from torch.onnx.export, for example)")
    p.add_argument("--torchvision", metavar="NAME",
                   help="import this torchvision model (resnet18, squeezenet1_1, …) instead of "
                   "a file")
    p.add_argument("--weights", type=user_path, metavar="FILE.pth",
                   help="with --torchvision: the model's state dict (torchvision's downloaded "
                   ".pth file); without it the model keeps torchvision's random start")
    p.add_argument("--input", type=parse_input_shape, metavar="C,H,W",
                   help="input channels, height and width: for --torchvision (default "
                   "3,224,224), or for an ONNX file whose height and width are left open")
    p.add_argument("-o", "--output", type=user_path, metavar="NET.cnnproj",
                   help="the project file to write (default: the model's name with .cnnproj, "
                   "in the current folder); the weights go to NET.weights.pt beside it")
    p.add_argument("--name", type=_project_name, metavar="NAME",
                   help="the project's name (default: where it came from, e.g. resnet18.onnx)")
    p.add_argument("--force", action="store_true",
                   help="replace NET.cnnproj and NET.weights.pt if they exist (never a device, "
                   "a pipe or a folder)")


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
        raise CLIError("name a project file or a template (--template NAME; see "
                       "'cnnstudio templates')")
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
        raise CLIError("name a project file or a template (--template NAME; see "
                       "'cnnstudio templates')")
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


def _import_target(args: argparse.Namespace) -> str:
    """-o, or the model's name with .cnnproj in the current folder."""
    from cnnstudio.core.project import EXTENSION

    if args.output:
        output = args.output
    elif args.torchvision:
        output = args.torchvision + EXTENSION
    else:
        output = os.path.splitext(os.path.basename(args.model))[0] + EXTENSION
    if os.path.isdir(output):
        raise CLIError(f"{output} is a folder; give the project file to write, such as "
                       f"-o {os.path.join(output, 'net' + EXTENSION)}")
    return output


def _check_import_args(args: argparse.Namespace) -> None:
    if args.model and args.torchvision:
        raise CLIError("give either an ONNX file or --torchvision NAME, not both")
    if not args.model and not args.torchvision:
        raise CLIError("name an ONNX file or a torchvision model (--torchvision resnet18)")
    if args.model and args.weights:
        raise CLIError("--weights goes with --torchvision; an ONNX file holds its own weights")
    for path, what in ((args.model, "ONNX file"), (args.weights, "weights file")):
        if path and not os.path.isfile(path):
            reason = "is not a file" if os.path.exists(path) else "does not exist"
            raise CLIError(f"the {what} {path} {reason}; check the path")


def cmd_import(args: argparse.Namespace) -> int:
    """An ONNX file or a torchvision model to NET.cnnproj + NET.weights.pt, then a summary."""
    _check_import_args(args)
    output = _import_target(args)
    from cnnstudio import importers
    from cnnstudio.importers.common import weights_path_for, write_refusal

    refusal = write_refusal((Path(output), weights_path_for(Path(output))), args.force)
    if refusal is not None:  # before the import, which can take a while
        raise CLIError(refusal)
    if args.torchvision:
        from cnnstudio.importers.torch_fx import from_torchvision

        result = from_torchvision(args.torchvision, args.weights,
                                  input_shape=args.input or (3, 224, 224))
    else:
        result = importers.from_onnx(args.model, input_shape=args.input)
    try:
        project_path, weights_path = importers.write_import(result, output, name=args.name,
                                                            force=args.force)
    except OSError as err:  # an existing file (FileExistsError) or a failed write
        raise CLIError(str(err)) from None
    for line in import_summary(result, project_path, weights_path):
        echo(line)
    return 0


def import_summary(result: Any, project_path: Path, weights_path: Path) -> list[str]:
    """What `cnnstudio import` prints: the source, the network's figures, the files, notes
    (`result` is an importers.ImportResult; importers load torch, so only inside commands)."""
    from cnnstudio.core.analysis import analyze

    analysis = analyze(result.graph)
    shapes = [analysis.blocks[b.id].output_shape for b in result.graph.output_blocks()]
    outputs = ", ".join(f"{shape[0]:,} classes" if len(shape) == 1 else
                        "×".join(map(str, shape)) for shape in shapes if shape) or "none"
    lines = [f"Imported {result.source}",
             f"  blocks       {len(result.graph):,}",
             f"  parameters   {_parameter_line(analysis)}",
             f"  MACs         {analysis.macs:,} per image",
             f"  outputs      {outputs}",
             f"Wrote {project_path}",
             f"Wrote {weights_path}"]
    lines += [f"note: {note}" for note in result.notes]
    lines += [f"warning: {problem.message}" for problem in analysis.errors]
    return lines


def _parameter_line(analysis: Any) -> str:
    """Total = trainable + non-trainable (BatchNorm running statistics, frozen blocks)."""
    frozen = analysis.total_params - analysis.trainable_params
    if not frozen:
        return f"{analysis.total_params:,} (all trainable)"
    return (f"{analysis.total_params:,} = {analysis.trainable_params:,} trainable + {frozen:,} "
            "non-trainable (BatchNorm running statistics)")


def cmd_tour(args: argparse.Namespace) -> int:
    """The tour as `python -m cnnstudio.tour` runs it, ending the same way: without Qt's and
    torch's teardown of what the tour leaves behind."""
    from cnnstudio.tour import main as run

    status = run(["--out", args.out, "--epochs", str(args.epochs)])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)


COMMANDS = {"gui": cmd_gui, "templates": cmd_templates, "new": cmd_new, "summary": cmd_summary,
            "train": cmd_train, "export": cmd_export, "import": cmd_import, "tour": cmd_tour}


def _user_errors() -> tuple[type[BaseException], ...]:
    from cnnstudio.core.graph import GraphError
    from cnnstudio.core.project import ProjectError
    from cnnstudio.core.templates import UnknownTemplate

    errors: list[type[BaseException]] = [CLIError, GraphError, ProjectError, UnknownTemplate]
    for module, name in (("cnnstudio.train.data", "DatasetError"),
                         ("cnnstudio.train.engine", "TrainingError"),
                         ("cnnstudio.train.run_folder", "RunFolderError"),
                         ("cnnstudio.nn.export", "ExportError"),
                         ("cnnstudio.importers.common", "ImportRefused")):
        loaded = sys.modules.get(module)  # only if the command imported it: keeps start-up light
        if loaded is not None and hasattr(loaded, name):
            errors.append(getattr(loaded, name))
    for module in dict.fromkeys(MODULE_COMMANDS.values()):
        if module in sys.modules:
            user_errors = getattr(sys.modules[module], "user_errors", None)
            errors.extend(user_errors() if user_errors else ())
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
        if args.command in MODULE_COMMANDS:
            status = importlib.import_module(MODULE_COMMANDS[args.command]).run(args)
        else:
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
