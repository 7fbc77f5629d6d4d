"""`cnnstudio explain`: why a trained network predicted what it did for one image, as a
Grad-CAM or saliency overlay written to a PNG file (train/attribution.py does the work)."""

from __future__ import annotations

import argparse
from typing import Any

from cnnstudio.cli_common import CLIError, add_run_dir_argument, echo, user_path

METHOD_CHOICES = ("gradcam", "saliency")  # train.attribution.METHODS, spelled out for --help
TOP_FRACTION = 0.2


def _opacity(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected an opacity from 0 to 1, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "explain", help="show which pixels made a trained network predict its class",
        description="Write a Grad-CAM (or saliency) overlay of IMAGE as the trained network "
                    "in RUN_DIR sees it. Example: cnnstudio explain runs/a digit.png --out "
                    "overlay.png",
    )
    add_run_dir_argument(p, help="a training run folder")
    p.add_argument("image", type=user_path, metavar="IMAGE",
                   help="an image file (PNG, JPEG or BMP), converted as for training")
    p.add_argument("--out", type=user_path, metavar="OVERLAY.png", required=True,
                   help="the PNG file to write (enlarged to at least 224 pixels)")
    p.add_argument("--method", choices=METHOD_CHOICES, default="gradcam",
                   help="gradcam (default): which regions of a convolution block's output "
                        "raised the class score; saliency: how much each pixel changes it")
    p.add_argument("--block", metavar="ID",
                   help="the Conv2D block for Grad-CAM, by id or name (default: the last "
                        "convolution before the classifier whose map is at least 7×7)")
    p.add_argument("--class", dest="target", metavar="K",
                   help="the class to explain, by number or name (default: the predicted one)")
    p.add_argument("--opacity", type=_opacity, default=0.5, metavar="A",
                   help="how strongly the map covers the image, 0 to 1 (default 0.5)")
    p.add_argument("--force", action="store_true", help="replace OVERLAY.png if it exists")


def user_errors() -> tuple[type, ...]:
    from cnnstudio.train.attribution import AttributionError
    from cnnstudio.train.inspect import ImageFileError, InspectionError

    return (AttributionError, ImageFileError, InspectionError)


def _block_id(contents: Any, wanted: str | None) -> str | None:
    """The block id of --block (an id or a unique block name); None for the default."""
    from cnnstudio.train.attribution import conv_blocks

    if wanted is None:
        return None
    graph = contents.project.graph
    convs = conv_blocks(contents.model)
    named = [b for b in convs if graph.block(b).name == wanted]
    if wanted in convs:
        return wanted
    if len(named) == 1:
        return named[0]
    names = [graph.block(b).name for b in convs]
    choices = ", ".join(name if name == b else f"{name} ({b})" for name, b in zip(names, convs))
    choices = choices or "none: this network has no convolution; use --method saliency"
    raise CLIError(f"--block {wanted!r} is not a Conv2D block on the way to the output; "
                   f"choose one of {choices}")


def _target(classes: list[str], wanted: str | None) -> int | None:
    if wanted is None:
        return None
    if wanted in classes:
        return classes.index(wanted)
    if wanted.strip().isdigit() and int(wanted) < len(classes):
        return int(wanted)
    raise CLIError(f"--class {wanted!r} is not a class of this network; give a number from 0 "
                   f"to {len(classes) - 1} or a class name ({', '.join(classes[:10])}"
                   f"{', …' if len(classes) > 10 else ''})")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cnnstudio.train.attribution import (
        METHOD_NAMES,
        enlarged,
        explain,
        overlay,
        png_destination,
        top_share,
        write_png,
    )
    from cnnstudio.train.inspect import load_image_file, read_run

    folder = Path(args.run_dir)
    if not folder.is_dir():
        why = "is not a folder" if folder.exists() else "does not exist"
        raise CLIError(f"the run folder '{folder}' {why}; give the folder a training run wrote "
                       "(it holds project.cnnproj, data.json and model.pt)")
    contents = read_run(folder, load_data=False)
    png_destination(args.out, force=args.force, protected=folder)
    block_id = _block_id(contents, args.block)
    target = _target(contents.classes, args.target)
    image = load_image_file(args.image, contents.input_shape)
    (result,) = explain(contents.model, image, contents.mean, contents.std, method=args.method,
                        block_id=block_id, targets=target, kind=contents.output_kind)
    picture = enlarged(overlay(image, result.heat, args.opacity))
    written = write_png(picture, args.out, force=args.force, protected=folder)

    def name(k: int) -> str:
        return contents.classes[k] if k < len(contents.classes) else str(k)

    p = float(result.probabilities[result.predicted])
    echo(f"Predicted class: {name(result.predicted)} ({p:.1%})")
    if result.target != result.predicted:
        echo(f"Explained class: {name(result.target)} "
             f"({float(result.probabilities[result.target]):.1%})")
    if result.block_id is not None:
        echo(f"Block: {contents.project.graph.block(result.block_id).name} "
             f"({METHOD_NAMES[args.method]})")
    else:
        echo(f"Method: {METHOD_NAMES[args.method]} (gradients at the input pixels)")
    if result.empty:
        echo("The map is empty: nothing in this block speaks for the class (only against it); "
             "try an earlier block or --method saliency")
    else:
        echo(f"Share of the map's mass in its brightest {TOP_FRACTION:.0%} of pixels: "
             f"{top_share(result.heat, TOP_FRACTION):.1%}")
    echo(f"Wrote {written} ({picture.shape[1]}×{picture.shape[0]}; colours from dark blue, "
         "low, to dark red, high)")
    return 0
