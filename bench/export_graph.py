"""The ONNX graph before and after the move to torch.onnx's current exporter.

For GoogLeNet (3×64×64 by default) and the Keras-book MNIST network, prints the node counts of
(a) the TorchScript-based exporter CNN Studio used before (dynamo=False, opset 17) and (b) the
export as written now (dynamo=True, onnxslim, nodes named after the blocks): total, Constant,
If and Pad, the operators by count, and the time each conversion took. Both convert the same
network: the main output's blocks behind the normalisation and softmax of every export.

    python bench/export_graph.py [--size 64] [--threads 1]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import torch

from cnnstudio.core.outputs import output_kind
from cnnstudio.core.templates import build_template
from cnnstudio.nn import build_model
from cnnstudio.nn.export import NormalizedModel, main_path_model
from cnnstudio.nn.onnx_export import block_labels, convert, legacy_proto, name_nodes, node_counts

NETWORKS = (("googlenet", "GoogLeNet", 3), ("keras-mnist", "Keras-book MNIST", 1))


def describe(counts: Counter[str]) -> str:
    ops = ", ".join(f"{op} {n}" for op, n in counts.most_common())
    return (f"{sum(counts.values())} nodes (Constant {counts['Constant']}, If {counts['If']}, "
            f"Pad {counts['Pad']})\n      {ops}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=64, help="GoogLeNet's image side")
    parser.add_argument("--threads", type=int, default=1, help="PyTorch threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for template, title, channels in NETWORKS:
        shape = (channels, 28, 28) if channels == 1 else (channels, args.size, args.size)
        graph = build_template(template, shape, 10)
        model = build_model(graph).eval()
        kind = output_kind(graph, model.main_output_id).kind
        wrapper = NormalizedModel(main_path_model(model), [0.5] * channels, [0.25] * channels,
                                  kind).eval()
        example = torch.rand(2, *shape)
        labels = block_labels(graph)
        started = time.perf_counter()
        before = legacy_proto(wrapper, example)
        name_nodes(before, labels)
        legacy_s = time.perf_counter() - started
        started = time.perf_counter()
        after, notes = convert(wrapper, example, labels)
        current_s = time.perf_counter() - started
        print(f"{title} {'×'.join(map(str, shape))}")
        print(f"  before (TorchScript-based, {legacy_s:.1f} s): {describe(node_counts(before))}")
        print(f"  after  (dynamo + onnxslim, {current_s:.1f} s): {describe(node_counts(after))}")
        for note in notes:
            print(f"  note: {note}")


if __name__ == "__main__":
    main()
