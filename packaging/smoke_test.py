"""Smoke test of the built application (`make dist`): runs dist/cnnstudio/cnnstudio as a person
without this checkout's virtual environment would (clean environment, empty HOME, off-screen Qt)
and checks the version, a summary, a window screenshot, a one-epoch headless training and the
tour's screenshots of a one-epoch training in the window. Prints the bundle's size.

    python packaging/smoke_test.py [--app dist/cnnstudio] [--out build/smoke]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image


def run(binary: Path, home: Path, *args: str, timeout_s: float = 900) -> str:
    env = {"PATH": "/usr/bin:/bin", "HOME": str(home), "QT_QPA_PLATFORM": "offscreen"}
    started = time.perf_counter()
    done = subprocess.run([str(binary), *args], env=env, cwd=home, capture_output=True,
                          text=True, timeout=timeout_s)
    seconds = time.perf_counter() - started
    print(f"  {' '.join(args)}: exit {done.returncode} in {seconds:.1f} s")
    if done.returncode != 0:
        raise SystemExit(f"smoke test failed: {' '.join(args)}\n{done.stdout}\n{done.stderr}")
    return done.stdout


def check_png(path: Path) -> None:
    if not path.is_file():
        raise SystemExit(f"smoke test failed: {path} was not written")
    with Image.open(path) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
        size = image.size
    if colours is not None and len(colours) < 10:
        raise SystemExit(f"smoke test failed: {path} is blank ({len(colours)} colours)")
    print(f"  {path}: {size[0]}x{size[1]}, not blank")


def folder_size(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file() and not f.is_symlink())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--app", type=Path, default=Path("dist/cnnstudio"))
    parser.add_argument("--out", type=Path, default=Path("build/smoke"))
    args = parser.parse_args()
    binary = args.app.resolve() / "cnnstudio"
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    for previous in ("run", "tour"):  # the last smoke test's: train refuses a used folder
        shutil.rmtree(out / previous, ignore_errors=True)
    with tempfile.TemporaryDirectory(prefix="cnnstudio-smoke-home-") as home:
        smoke_test(binary, Path(home), out)
    size = folder_size(args.app)
    print(f"bundle {args.app}: {size / 2**20:,.0f} MiB "
          f"({len(list(args.app.rglob('*')))} files); screenshots in {out}")
    return 0


def smoke_test(binary: Path, home: Path, out: Path) -> None:
    """Each check, with HOME an empty folder; the first failure ends the test."""
    print(f"smoke test of {binary} (HOME={home})")
    version = run(binary, home, "--version")
    if "CNN Studio" not in version:
        raise SystemExit(f"smoke test failed: --version printed {version!r}")
    summary = run(binary, home, "summary", "--template", "course-example")
    if "171,158" not in summary:
        raise SystemExit("smoke test failed: the course example's summary lacks 171,158")
    run(binary, home, "--screenshot", str(out / "window.png"))
    check_png(out / "window.png")
    run(binary, home, "train", "--template", "keras-mnist", "--dataset", "mnist-sample",
        "--epochs", "1", "--out", str(out / "run"))
    run(binary, home, "tour", "--out", str(out / "tour"), "--epochs", "1")
    for name in ("01-network.png", "02-training.png", "03-curves.png"):
        check_png(out / "tour" / name)


if __name__ == "__main__":
    sys.exit(main())
