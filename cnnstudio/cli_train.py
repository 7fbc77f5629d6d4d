"""`cnnstudio train` and `cnnstudio export`: the headless front of the training engine."""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from typing import Any

from cnnstudio.cli_common import (
    CLIError,
    add_run_dir_argument,
    echo,
    parse_batch_size,
    parse_classes,
    parse_input_shape,
    parse_positive_int,
    require_run_or_project,
    show_load_notes,
    user_path,
)
from cnnstudio.core.settings import PRECISIONS
from cnnstudio.core.sources import SAMPLE_SOURCE, SOURCES, SpecError, format_spec, forms_text
from cnnstudio.core.sources import parse_spec as parse_source

DEFAULT_DATASET = SAMPLE_SOURCE


def _dataset_spec(text: str) -> str:
    """--dataset in its normal form, checked by the one spec parser (core.sources)."""
    try:
        return format_spec(parse_source(text))
    except SpecError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _downloadable() -> str:
    names = [kind.name for kind in SOURCES if kind.can_download]
    return ", ".join(names[:-1]) + " or " + names[-1]


def _learning_rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 < value <= 10:
        raise argparse.ArgumentTypeError(f"expected a learning rate above 0 and at most 10, "
                                         f"got {text!r}")
    return value


def add_network_and_data_arguments(p: argparse.ArgumentParser) -> None:
    """The network (a project file or a template) and its dataset, as `train` and `lr-find`
    both take them: one loading (`_project_and_data`) reads them for both."""
    p.add_argument("file", nargs="?", type=user_path, metavar="FILE.cnnproj",
                   help="a project file")
    p.add_argument("--template", metavar="NAME", help="a template (fitted to the dataset)")
    p.add_argument("--dataset", type=_dataset_spec, metavar="SPEC", help=forms_text())
    p.add_argument("--download", action="store_true",
                   help=f"download {_downloadable()} into DIR if missing")
    p.add_argument("--input", type=parse_input_shape, metavar="C,H,W")
    p.add_argument("--classes", type=parse_classes, metavar="N")


def add_train_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "train", help="train a network on a dataset, headless",
        description="Train a project or template. Example: cnnstudio train --template "
                    "keras-mnist --dataset mnist-sample --epochs 5 --out runs/a",
    )
    add_network_and_data_arguments(p)
    p.add_argument("--epochs", type=parse_positive_int, metavar="N")
    p.add_argument("--batch-size", type=parse_batch_size, metavar="B")
    p.add_argument("--lr", type=_learning_rate, metavar="X", help="learning rate")
    p.add_argument("--optimizer", choices=("sgd", "rmsprop", "adam", "adamw"))
    p.add_argument("--schedule", choices=("constant", "step", "cosine", "one_cycle"))
    p.add_argument("--augment", metavar="LIST",
                   help="comma-separated: flip, translate, rotate, scale, channel_permute, "
                        "grayscale")
    p.add_argument("--device", choices=("auto", "cpu", "cuda", "mps"))
    p.add_argument("--precision", choices=PRECISIONS,
                   help="auto (bf16 mixed precision on a CUDA GPU, float32 elsewhere), float32, "
                        "float16 (CUDA only, with loss scaling) or bf16 (CUDA or CPU)")
    p.add_argument("--seed", type=int, metavar="S")
    p.add_argument("--tensorboard", action="store_true",
                   help="also log the run for TensorBoard into RUN_DIR/tensorboard (losses, "
                        "accuracies, learning rate, speed, the graph, the first convolution's "
                        "filters); open it with: tensorboard --logdir RUN_DIR/tensorboard")
    p.add_argument("--random-start", action="store_true",
                   help="ignore the weights file the project starts from (an imported "
                        "network's) and train from random weights")
    p.add_argument("--init-from", type=user_path, metavar="RUN_DIR",
                   help="start from another run's weights (matched by block id, then name)")
    p.add_argument("--weights", type=user_path, metavar="FILE.pth",
                   help="torchvision's ImageNet weights for a project made from a template "
                        "built after a torchvision model (alexnet, resnet18, ...)")
    p.add_argument("--resume", action="store_true", help="continue the stopped run in --out")
    p.add_argument("--extend", type=parse_positive_int, metavar="N",
                   help="train the finished or stopped run in --out N more epochs after its "
                        "last finished one, from its checkpoint; the learning-rate schedule "
                        "is extended by a stated rule (docs/how-to/train-cli.md)")
    p.add_argument("--force", action="store_true",
                   help="with --resume and --dataset: go on with another dataset than the run "
                        "was trained on (the run folder records it)")
    p.add_argument("--out", required=True, type=user_path, metavar="RUN_DIR",
                   help="the run folder to write")
    return p


def add_export_parser(sub: Any) -> None:
    p = sub.add_parser(
        "export", help="export a trained run: ONNX, ExportedProgram (.pt2), TorchScript, "
                       "PyTorch code or state dict",
        description="Export a trained model (a run folder), or a project's network without "
                    "training (--project). The exported model takes images with pixel values "
                    "in [0, 1] and returns class probabilities.",
    )
    add_run_dir_argument(p, optional=True)
    p.add_argument("--project", type=user_path, metavar="NET.cnnproj",
                   help="export this project's network instead of a run: its weights file "
                        "where it has one (an imported network), else random weights; no "
                        "normalisation, classes named 0..N-1")
    p.add_argument("--bench", action="store_true",
                   help="with --format onnx: also time ONNX Runtime and PyTorch on one image "
                        "(50 runs each; adds a while for a big network)")
    p.add_argument("--format", required=True,
                   choices=("onnx", "pt2", "torchscript", "python", "state_dict"),
                   help="pt2: a PyTorch ExportedProgram (torch.export.load); torchscript is "
                        "deprecated in PyTorch")
    p.add_argument("--out", required=True, type=user_path, metavar="FILE")
    p.add_argument("--force", action="store_true",
                   help="replace FILE if it exists (never a read-only file, a special file or "
                        "a file inside the run folder)")


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
        "optimizer": args.optimizer, "schedule": args.schedule, "augment": args.augment,
        "device": args.device, "precision": args.precision, "seed": args.seed,
        "tensorboard": args.tensorboard or None,  # off: the project's setting stands
    }


def _project_and_data(args: argparse.Namespace):
    from cnnstudio.core.adapt import adapt
    from cnnstudio.core.graph import GraphError
    from cnnstudio.core.project import load_project
    from cnnstudio.core.templates import new_project
    from cnnstudio.train.data import load_with_settings
    from cnnstudio.train.run_folder import RunFolder, recorded_spec

    if args.extend is not None:
        _check_extend(args)
    if args.force and not args.resume:
        raise CLIError("--force goes with --resume: it lets a run go on with another --dataset")
    if args.resume:
        if args.file or args.template:
            raise CLIError("--resume continues the run in --out; leave out FILE and --template")
        project = RunFolder(args.out).load_project()
    elif args.file and args.template:
        raise CLIError("give either a project file or --template, not both")
    elif args.file:
        project = load_project(args.file)
        show_load_notes(project)
    elif args.template:
        project = None
    else:
        raise CLIError("name a project file or a template (--template NAME)")
    spec = args.dataset or (project.dataset.get("spec") if project else None) or DEFAULT_DATASET
    spec = recorded_spec(spec)  # absolute paths: the run resumes from any working folder
    settings = project.dataset if project else {}
    shape = args.input
    if project is not None and shape is None:
        from cnnstudio.core.analysis import analyze
        from cnnstudio.core.adapt import input_block_id

        try:
            shape = analyze(project.graph).blocks[input_block_id(project.graph)].output_shape
        except GraphError as err:
            raise CLIError(str(err)) from None
    data = load_with_settings(spec, shape, settings, download=args.download)
    if project is None:
        project = new_project(args.template, shape or data.image_shape,
                              args.classes or data.num_classes)
    elif not args.resume:
        try:
            adapt(project.graph, args.input, args.classes)
        except GraphError as err:
            raise CLIError(str(err)) from None
        _check_classes(project, data, spec)
    project.dataset["spec"] = spec
    for key, value in _overrides(args).items():
        if value is not None:
            project.training[key] = value
    return project, data


def _check_extend(args: argparse.Namespace) -> None:
    """--extend continues the run in --out (a resume that adds epochs): what it cannot go with,
    and a folder with nothing to extend, refused before any dataset is loaded."""
    from cnnstudio.train.extend import ExtendError, check_extendable
    from cnnstudio.train.run_folder import RunFolder

    if args.epochs is not None:
        raise CLIError("--extend N sets the epochs (N more after the last finished one); leave "
                       "out --epochs")
    if args.file or args.template:
        raise CLIError("--extend continues the run in --out; leave out FILE and --template")
    try:
        check_extendable(RunFolder(args.out))
    except ExtendError as err:
        raise CLIError(str(err)) from None
    args.resume = True


def _check_classes(project: Any, data: Any, spec: str) -> None:
    """Refuse, before any run folder exists, a network whose outputs do not fit the classes."""
    from cnnstudio.core.adapt import class_mismatch_message, class_mismatches

    mismatches = class_mismatches(project.graph, data.num_classes, spec)
    if mismatches:
        raise CLIError(f"{class_mismatch_message(mismatches)} (or use --classes "
                       f"{data.num_classes})")


class _Progress:
    """A one-line progress bar on a terminal; epoch lines always."""

    def __init__(self, stream=None) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.last = 0.0
        self.dominant = ""  # where the time goes: a hint said again only when it changes

    def __call__(self, event: Any) -> None:
        from cnnstudio.core.printable import printable
        from cnnstudio.train import events as ev

        if isinstance(event, ev.RunStarted):
            print(f"Training on {event.device}: {event.train_count:,} training and "
                  f"{event.val_count:,} validation images, {len(event.classes)} classes, "
                  f"{event.epochs} epoch{'s' if event.epochs != 1 else ''} of "
                  f"{event.steps_per_epoch} steps", file=self.stream)
            for note in event.notes:
                print(printable(f"note: {note}"), file=self.stream)
            for note in event.speed_notes:
                print(printable(f"speed: {note}"), file=self.stream)
        elif isinstance(event, ev.StepProgress) and self.tty:
            now = time.monotonic()
            if now - self.last < 0.1 and event.epoch_step != event.steps_per_epoch:
                return
            self.last = now
            done = event.epoch_step / event.steps_per_epoch
            bar = "█" * int(done * 24) + "·" * (24 - int(done * 24))
            self.stream.write(
                f"\repoch {event.epoch} {bar} {event.epoch_step}/{event.steps_per_epoch} "
                f"loss {event.train_loss:.4f} acc {event.train_acc:.2%} "
                f"{event.images_per_s:,.0f} img/s ETA {event.eta_s:.0f} s  ")
            self.stream.flush()
        elif isinstance(event, ev.EpochEnded):
            if self.tty:
                self.stream.write("\r\033[K")
            print(f"epoch {event.epoch}: train loss {event.train_loss:.4f} acc "
                  f"{event.train_acc:.2%}, validation loss {event.val_loss:.4f} acc "
                  f"{event.val_acc:.2%}, {event.seconds:.1f} s, {event.images_per_s:,.0f} img/s",
                  file=self.stream)
            self._time_shares(event.breakdown)
        elif isinstance(event, ev.RunExtended):
            print(printable(f"note: {event.message}"), file=self.stream)
        elif isinstance(event, ev.StateChanged):
            pass

    def _time_shares(self, breakdown: Any) -> None:
        """Where the epoch's time went (sampled steps), and a hint when one part dominates."""
        if breakdown is None:
            return
        print(f"  time: {breakdown.summary()}", file=self.stream)
        if breakdown.dominant and breakdown.dominant != self.dominant:
            print(f"  hint: {breakdown.hint()}", file=self.stream)
        self.dominant = breakdown.dominant


def cmd_train(args: argparse.Namespace) -> int:
    from cnnstudio.train.engine import TrainOptions, Trainer
    from cnnstudio.train.events import RunFinished, TrainingControl

    project, data = _project_and_data(args)
    options = TrainOptions.from_settings(project.training)
    control = TrainingControl()
    if args.random_start:
        project.weights = None
    if args.weights:
        from cnnstudio.train.transfer import TORCHVISION_WEIGHTS

        if project.template not in TORCHVISION_WEIGHTS:
            raise CLIError("--weights loads torchvision's ImageNet weights into projects made "
                           f"from these templates only: {', '.join(TORCHVISION_WEIGHTS)}")
    previous = signal.getsignal(signal.SIGINT)

    def interrupt(signum, frame):  # first Ctrl-C: stop after this batch and keep the weights
        print("\nstopping after this batch (Ctrl-C again to abort)...", file=sys.stderr)
        control.stop()
        signal.signal(signal.SIGINT, previous)

    signal.signal(signal.SIGINT, interrupt)
    try:
        progress = _Progress()
        trainer = Trainer(project, data, args.out, options=options, control=control,
                          resume=args.resume, init_from=args.init_from,
                          torchvision_weights=args.weights, allow_other_dataset=args.force,
                          extend_by=args.extend or 0)
        finished: RunFinished | None = None
        # closing: a Ctrl-C between two events ends the run at once, and with it the run
        # folder's lock
        with contextlib.closing(trainer.run()) as events:
            for event in events:
                progress(event)
                if isinstance(event, RunFinished):
                    finished = event
    finally:
        signal.signal(signal.SIGINT, previous)
    assert finished is not None
    if finished.status == "failed":
        echo(f"cnnstudio: training failed: {finished.message}", err=True)
        return 1
    accuracy = f"{finished.val_acc:.2%}" if finished.val_acc is not None else "n/a"
    warm = f" (warm-up {finished.warmup_s:.2f} s before)" if finished.warmup_s else ""
    echo(f"{finished.message}: validation accuracy {accuracy}, "
         f"{finished.images_per_s:,.0f} images/s{warm}; run folder {args.out}")
    for warning in finished.warnings:
        echo(f"warning: {warning}", err=True)
    if options.tensorboard:
        from cnnstudio.train.tensorboard_log import FOLDER

        log_dir = os.path.join(args.out, FOLDER)
        if os.path.isdir(log_dir):  # else a note said why logging was off
            echo(f"TensorBoard: tensorboard --logdir {log_dir}")
    if finished.status == "stopped":
        echo(f"continue with: cnnstudio train --resume --out {args.out}")
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from cnnstudio.core.summary import format_bytes
    from cnnstudio.nn.export import BENCHMARK_RUNS, ExportError, export_loaded, export_run
    from cnnstudio.train.transfer import TransferError

    require_run_or_project(args, "export")
    if args.bench and args.format != "onnx":
        raise CLIError("--bench times the ONNX model: use it with --format onnx")
    runs = BENCHMARK_RUNS if args.bench else 0
    try:
        if args.project is None:
            report = export_run(args.run_dir, args.format, args.out, overwrite=args.force,
                                benchmark_runs=runs)
        else:
            run = _project_to_export(args.project)
            report = export_loaded(run, args.format, args.out, overwrite=args.force,
                                   benchmark_runs=runs)
    except (ExportError, TransferError) as err:
        echo(f"cnnstudio: export failed: {err}", err=True)
        return 1
    line = f"Wrote {args.out} ({args.format}, {format_bytes(report.size_bytes)})"
    if report.max_abs_diff is not None:
        line += (f"; largest difference of log-probabilities from PyTorch "
                 f"{report.max_abs_diff:.2e} (limit {report.tolerance:g})")
    echo(line)
    for note in report.notes:
        echo(note)
    if report.ort_ms is not None and report.torch_ms is not None:
        echo(f"Time for one image (median of {runs} runs): ONNX Runtime {report.ort_ms:.2f} ms, "
             f"PyTorch {report.torch_ms:.2f} ms")
    if report.input_note:
        echo(report.input_note)
    return 0


def _project_to_export(path: str) -> Any:
    """project_run of the project file, with its weights file loaded where it has one; says
    which weights the export carries (untrained ones above all)."""
    from cnnstudio.core.project import load_project
    from cnnstudio.nn.export import project_run
    from cnnstudio.train.project_weights import load_project_weights

    project = load_project(path)
    run = project_run(project)
    if project.weights_file() is None:
        echo("untrained: random weights (the project has no weights file; train it and export "
             "the run folder for a trained model)")
        return run
    matched = load_project_weights(run.model, project)
    run.model.eval()
    echo(f"weights from {project.weights_file()}: {matched.summary()}")
    if matched.skipped:
        echo("untrained: random weights in the blocks not loaded")
    return run
