"""How long a parameter edit plus a full re-analysis takes on big graphs.

Goal (model-core issue): editing one parameter of a 500-block graph and re-analysing it takes
under 10 ms on the 2-core development machine. Prints the median, p95 and max over many edits.

    python bench/analysis_speed.py [--blocks 500] [--edits 200]
"""

from __future__ import annotations

import argparse
import statistics
import time

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph


def generated_graph(blocks: int) -> Graph:
    """A residual-style network of roughly `blocks` blocks: conv, bn, act, add repeating."""
    g = Graph()
    previous = g.add_block("Input", {"channels": 3, "height": 64, "width": 64}).id
    previous = g.chain([("Conv2D", {"filters": 16, "kernel": 3, "padding": "same"})],
                       after=previous)[-1].id
    while len(g) < blocks - 4:
        body = g.chain([
            ("Conv2D", {"filters": 16, "kernel": 3, "padding": "same"}),
            ("BatchNorm", {}),
            ("Activation", {"function": "relu"}),
            ("Conv2D", {"filters": 16, "kernel": 3, "padding": "same"}),
        ], after=previous)
        add = g.add_block("Add")
        g.connect(body[-1].id, add.id)
        g.connect(previous, add.id)
        previous = add.id
    g.chain([("Pooling", {"mode": "global_average"}), ("Dense", {"units": 10}), ("Output", {})],
            after=previous)
    return g


def measure(graph: Graph, edits: int) -> list[float]:
    convs = [b.id for b in graph.blocks if b.type == "Conv2D"]
    timings = []
    for i in range(edits):
        block_id = convs[i % len(convs)]
        start = time.perf_counter()
        graph.set_params(block_id, {"kernel": [3, 3] if i % 2 else [5, 5]})
        analysis = analyze(graph)
        timings.append((time.perf_counter() - start) * 1000)
        assert analysis.ok, analysis.diagnostics[:3]
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=500)
    parser.add_argument("--edits", type=int, default=200)
    args = parser.parse_args()
    graph = generated_graph(args.blocks)
    measure(graph, 10)  # warm up
    timings = measure(graph, args.edits)
    timings.sort()
    p95 = timings[int(0.95 * (len(timings) - 1))]
    print(f"blocks: {len(graph)}  edges: {len(graph.edges)}  edits: {args.edits}")
    print(f"edit + analyze: median {statistics.median(timings):.2f} ms, p95 {p95:.2f} ms, "
          f"max {timings[-1]:.2f} ms (goal: under 10 ms)")
    print(f"ratio to goal (median / 10 ms): {statistics.median(timings) / 10:.2f}")


if __name__ == "__main__":
    main()
