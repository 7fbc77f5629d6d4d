"""`cnnstudio quantize`: a trained run as an INT8 ONNX file, with the float-vs-INT8 table."""

from __future__ import annotations

import argparse
from typing import Any

from cnnstudio.cli_common import RUN_DIR_HELP, CLIError, add_run_dir_argument, echo, user_path

CALIBRATION_DEFAULT = 300  # train.quantize.CALIBRATION_IMAGES, without importing torch here
CALIBRATION_MAX = 10_000  # train.quantize.MAX_CALIBRATION_IMAGES


def _calibration(text: str) -> int:
    if not text.strip().isdigit() or not 1 <= int(text) <= CALIBRATION_MAX:
        raise argparse.ArgumentTypeError(f"expected a number of images from 1 to "
                                         f"{CALIBRATION_MAX:,}, got {text!r}")
    return int(text)


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "quantize", help="quantise a trained run to an INT8 ONNX file and compare it with float",
        description="Export a trained run to ONNX and quantise it to INT8 with onnxruntime "
                    "(static, calibrated on the run's training images), then print accuracy "
                    "on the validation split, file size and the time for one image, float and "
                    "INT8 side by side. The file takes images with pixel values in [0, 1].",
    )
    add_run_dir_argument(p, help=f"{RUN_DIR_HELP} (its dataset must still be readable)")
    p.add_argument("--out", required=True, type=user_path, metavar="FILE.onnx",
                   help="the INT8 model to write, such as model.int8.onnx")
    p.add_argument("--calibration", type=_calibration, default=CALIBRATION_DEFAULT,
                   metavar="N", help=f"training images to calibrate on (default "
                                     f"{CALIBRATION_DEFAULT}, at most {CALIBRATION_MAX:,})")
    p.add_argument("--force", action="store_true",
                   help="replace FILE if it exists (never a read-only file, a special file or "
                        "a file inside the run folder)")


def run(args: argparse.Namespace) -> int:
    from cnnstudio.nn.export import ExportError
    from cnnstudio.train.quantize import quantize_run

    if not args.out.strip():
        raise CLIError("--out needs a file name, such as model.int8.onnx")
    try:
        report = quantize_run(args.run_dir, args.out, calibration=args.calibration,
                              overwrite=args.force)
    except ExportError as err:  # QuantizeError too: the run, the data or the network
        echo(f"cnnstudio: quantize failed: {err}", err=True)
        return 1
    echo(report.table())
    return 0
