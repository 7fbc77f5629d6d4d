"""`cnnstudio kernels`: a trained run's learned convolution kernels as numbers, and the feature
maps a block makes of an image as a PNG grid.

    cnnstudio kernels runs/a                        # every Conv2D: settings, one line each
    cnnstudio kernels runs/a --block conv1          # its kernels, bias and activation
    cnnstudio kernels runs/a --block conv2 --filter 3
    cnnstudio kernels runs/a --block conv1 --apply digit.png --out maps.png [--force]

The numbers and maps are those of the convolution lab (cnnstudio.train.learned_kernels).
"""

from __future__ import annotations

import argparse
from typing import Any

from cnnstudio.cli_common import RUN_DIR_HELP, CLIError, add_run_dir_argument, echo, user_path


def _filter_index(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a filter number 0, 1, 2 …, got {text!r}")
    return value


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "kernels", help="print a trained run's learned convolution kernels; write feature maps",
        description="Print the learned kernels of a run's Conv2D blocks as number grids, with "
                    "each filter's bias and the block's activation; with --apply, write the "
                    "block's feature maps for an image as a PNG grid. Example: cnnstudio "
                    "kernels runs/a --block conv1 --filter 0",
    )
    add_run_dir_argument(p, help=f"{RUN_DIR_HELP} (or the window)")
    p.add_argument("--block", metavar="ID",
                   help="a Conv2D block, by name or id (without it: a list of the blocks)")
    p.add_argument("--filter", type=_filter_index, metavar="N",
                   help="only this filter (numbered from 0)")
    p.add_argument("--apply", type=user_path, metavar="IMAGE",
                   help="an image file to run through the network up to the block")
    p.add_argument("--out", type=user_path, metavar="MAPS.png",
                   help="where --apply writes the block's feature maps")
    p.add_argument("--force", action="store_true", help="replace an existing --out file")


def user_errors() -> tuple[type, ...]:
    from cnnstudio.train.inspect import ImageFileError, InspectionError

    return (InspectionError, ImageFileError)


def _block_id(network: Any, wanted: str) -> str:
    """A block id from a name or an id; CLIError listing the convolutions otherwise."""
    from cnnstudio.train.learned_kernels import conv_blocks

    blocks = conv_blocks(network)
    by_name = {network.graph.block(b).name: b for b, _ in blocks}
    if wanted in by_name:
        return by_name[wanted]
    if wanted in dict(blocks):
        return wanted
    names = ", ".join(by_name) or "none"
    raise CLIError(f"the network has no Conv2D block '{wanted}'; its convolutions: {names}")


def _filter_lines(conv: Any, f: int) -> list[str]:
    from cnnstudio.lab.learned import kernel_grid
    from cnnstudio.lab.ops import fmt

    bias = f"bias {fmt(conv.bias[f], 4)}" if conv.has_bias else "no bias"
    lines = [f"filter {f}  ({bias})"]
    channels = list(conv.input_channels(f))
    for k, channel in enumerate(channels):
        if len(channels) > 1:
            lines.append(f"  input channel {channel}:")
        lines += [f"    {row}" for row in kernel_grid(conv.weights[f, k])]
    return lines


def _check_output(args: argparse.Namespace) -> None:
    from cnnstudio.core.files import output_refusal

    if args.apply is None:
        if args.out is not None:
            raise CLIError("--out goes with --apply IMAGE: the image whose feature maps to write")
        return
    if args.out is None:
        raise CLIError("--apply writes a PNG: add --out MAPS.png")
    refusal = output_refusal(args.out, overwrite=args.force, protected=args.run_dir,
                             force_hint="add --force")
    if refusal is not None:
        raise CLIError(refusal)


def run(args: argparse.Namespace) -> int:
    from cnnstudio.lab.learned import activation_label
    from cnnstudio.train.learned_kernels import (
        block_output,
        conv_blocks,
        learned_conv,
        network_image,
        open_run,
        write_maps_png,
    )

    _check_output(args)
    if args.block is None and (args.filter is not None or args.apply is not None):
        raise CLIError("name the block with --block (run without it to list the Conv2D blocks)")
    network = open_run(args.run_dir)
    blocks = conv_blocks(network)
    if not blocks:
        raise CLIError(f"{network.name} has no Conv2D block: there are no kernels to show")
    if args.block is None:
        echo(f"Conv2D blocks of {network.name}:")
        for block_id, _text in blocks:
            conv = learned_conv(network, block_id)
            echo(f"  {conv.name}: {conv.describe()}")
        echo("Show one with --block NAME.")
        return 0
    conv = learned_conv(network, _block_id(network, args.block))
    if args.filter is not None and args.filter >= conv.filters:
        raise CLIError(f"{conv.name} has {conv.filters} filters, numbered 0 to "
                       f"{conv.filters - 1}; got --filter {args.filter}")
    if args.apply is not None:
        image = network_image(network, args.apply)
        maps = block_output(network, conv.block_id, image)
        if args.filter is not None:
            maps = maps[args.filter:args.filter + 1]
        width, height = write_maps_png(maps, args.out)
        what = f"filter {args.filter}" if args.filter is not None else f"{len(maps)} filters"
        echo(f"Wrote {args.out}: {conv.name}'s feature maps ({what}, "
             f"{maps.shape[1]}×{maps.shape[2]} each, after "
             f"{activation_label(conv.activation)}), a {width}×{height} PNG; each map from its "
             "own minimum (black) to its maximum (white).")
        return 0
    echo(f"{conv.name} of {network.name}: {conv.describe()}")
    echo(f"Activation after the bias: {activation_label(conv.activation)}")
    filters = [args.filter] if args.filter is not None else range(conv.filters)
    for f in filters:
        echo("")
        for line in _filter_lines(conv, f):
            echo(line)
    return 0
