"""The training-memory estimate against PyTorch autograd, at full size.

For the Keras-book network (batch 64 at 28×28), ResNet-18 and GoogLeNet (batch 64 at 224×224)
prints the saved-activation estimate of `Analysis.memory()`, what autograd keeps in one
float32 training-mode forward pass on the CPU (unique storages, weights left out), their ratio,
and the measurement with the weights autograd also keeps (which the figure counts as weights).
GoogLeNet at batch 64 holds about 3.5 GB and takes a minute on two cores.

    python bench/memory_estimate.py [--batch 64] [--only keras-mnist,resnet18,googlenet]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.residual

from cnnstudio.core.analysis import analyze  # noqa: E402
from cnnstudio.core.graph import Graph  # noqa: E402
from cnnstudio.core.templates import build_template  # noqa: E402
from cnnstudio.nn.build import build_model  # noqa: E402
from cnnstudio.nn.memory import measure_saved_activations  # noqa: E402
from tests.residual import resnet_graph  # noqa: E402

NETWORKS: dict[str, Callable[[], Graph]] = {
    "keras-mnist": lambda: build_template("keras-mnist"),
    "resnet18": lambda: resnet_graph((3, 224, 224), 1000),
    "googlenet": lambda: build_template("googlenet", (3, 224, 224), 1000),
}
MIB = 2**20


def compare(name: str, graph: Graph, batch: int) -> float:
    analysis = analyze(graph)
    estimate = analysis.memory(batch).activations
    model = build_model(graph)
    x = torch.randn(batch, *analysis.blocks[model.input_id].output_shape)
    start = time.perf_counter()
    measured = measure_saved_activations(model, x).total
    with_weights = measure_saved_activations(model, x, include_weights=True).total
    seconds = time.perf_counter() - start
    ratio = estimate / measured
    print(f"{name:<12} batch {batch:>3}  estimate {estimate / MIB:9.1f} MiB  "
          f"measured {measured / MIB:9.1f} MiB  ratio {ratio:.3f}  "
          f"(with weights {with_weights / MIB:9.1f} MiB; {seconds:.0f} s)")
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--only", default=",".join(NETWORKS))
    args = parser.parse_args()
    names = [n for n in args.only.split(",") if n]
    unknown = [n for n in names if n not in NETWORKS]
    if unknown:
        parser.error(f"unknown network {', '.join(unknown)}; choose from {', '.join(NETWORKS)}")
    ratios = [compare(name, NETWORKS[name](), args.batch) for name in names]
    worst = max(abs(r - 1) for r in ratios)
    print(f"largest difference {100 * worst:.1f} % (goal: within 10 %)")


if __name__ == "__main__":
    main()
