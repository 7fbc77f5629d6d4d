"""The figures of the written pages, computed at every build: `{{ name }}` in a page becomes
`facts()[name]`.

The tutorial's numbers come from the real analysis of the course's network, the convolution
lab's worked examples are computed by the lab's own functions (and the build fails if one no
longer gives the result the course notes give), and the training and export figures are those
the tour wrote to docs/tour/tour.json when it took the screenshots
(`python -m cnnstudio.tour --out docs/tour`). A page that names an unknown fact fails the build.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.analysis import analyze
from cnnstudio.core.explain import WINDOW_FORMULA, explain, key_params_text
from cnnstudio.core.params import format_value
from cnnstudio.core.settings import GROUPS
from cnnstudio.core.sources import SOURCES
from cnnstudio.core.summary import render_table
from cnnstudio.core.templates import build_template, get_template

DOCS_DIR = Path(__file__).resolve().parent
COURSE = "course-example"
SUMMARY_BATCH = 64
PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_.\-]+)\s*\}\}")


class UnknownFact(KeyError):
    """A page names a fact that facts() does not give."""

    def __str__(self) -> str:
        return self.args[0]


def expand(markdown: str, known: dict[str, str]) -> str:
    """The page with every `{{ name }}` replaced; UnknownFact names the first unknown one."""
    missing = sorted({name for name in PLACEHOLDER.findall(markdown) if name not in known})
    if missing:
        raise UnknownFact(f"unknown fact {{{{ {missing[0]} }}}} (known facts: "
                          f"{', '.join(sorted(known))}); see docs/gen_facts.py")
    return PLACEHOLDER.sub(lambda match: known[match.group(1)], markdown)


def placeholders(markdown: str) -> set[str]:
    return set(PLACEHOLDER.findall(markdown))


def facts(docs_dir: Path = DOCS_DIR) -> dict[str, str]:
    known: dict[str, str] = {}
    known.update(course_facts())
    known.update(tour_facts(docs_dir / "tour" / "tour.json"))
    known.update(lab_facts())
    known.update(settings_facts())
    known.update(source_facts())
    known.update(app_facts())
    return known


# -- the course's network ------------------------------------------------------------------


def _percent(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f} %"


def course_facts() -> dict[str, str]:
    template = get_template(COURSE)
    graph = build_template(COURSE)
    analysis = analyze(graph)
    blocks = [(graph.block(block_id), analysis.blocks[block_id]) for block_id in analysis.order]
    weighted = [(block, info) for block, info in blocks if info.total_params]
    largest, largest_info = max(weighted, key=lambda pair: pair[1].total_params)
    busiest, _ = max(blocks, key=lambda pair: pair[1].macs)
    listing, walkthrough = [], []
    for block, info in blocks:
        display = registry.get(block.type).display_name
        key = key_params_text(block)
        lines = explain(block, info).splitlines()
        summary = registry.get(block.type).help.split(". ")[0].rstrip(".")
        listing.append(f"- **{block.name}**, {display}" + (f" ({key})" if key else "")
                       + f": {summary[0].lower()}{summary[1:]}.")
        walkthrough += [f"**{block.name}** ({display}" + (f": {key}" if key else "") + ")", "",
                        "```text", *lines, "```", ""]
    return {
        "course.title": template.title,
        "course.input": "×".join(map(str, template.default_input)),
        "course.classes": str(template.default_classes),
        "course.table": render_table(graph, analysis, SUMMARY_BATCH, "adam", title=template.title),
        "course.total_params": f"{analysis.total_params:,}",
        "course.macs": f"{analysis.macs:,}",
        "course.sum": " + ".join(f"{info.total_params:,}" for _, info in weighted)
        + f" = {analysis.total_params:,}",
        "course.largest_block": largest.name,
        "course.largest_params": f"{largest_info.total_params:,}",
        "course.largest_share": _percent(largest_info.total_params, analysis.total_params),
        "course.largest_inputs": f"{largest_info.input_shapes[0][0]:,}",
        "course.largest_outputs": f"{largest_info.output_shape[0]:,}",  # type: ignore[index]
        "course.busiest_block": busiest.name,
        "course.blocks": "\n".join(listing),
        "course.walkthrough": "\n".join(walkthrough).rstrip(),
    }


# -- the tour's run ----------------------------------------------------------------------------


def tour_facts(path: Path) -> dict[str, str]:
    """The figures of the run the tour screenshots show."""
    try:
        tour: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RuntimeError(f"cannot read {path} ({err}); write it with "
                           "`python -m cnnstudio.tour --out docs/tour`") from None
    return {
        "tour.epochs": str(tour["epochs"]),
        "tour.val_acc": f"{100 * tour['val_acc']:.1f} %",
        "tour.images_per_s": f"{tour['images_per_s']:,.0f}",
        "tour.onnx_max_abs_diff": f"{tour['onnx_max_abs_diff']:.1e}",
    }


# -- the convolution lab ---------------------------------------------------------------------


def _matrix_lines(matrix: Any) -> list[str]:
    from cnnstudio.lab.ops import fmt

    cells = [[fmt(v) for v in row] for row in matrix]
    width = max(len(c) for row in cells for c in row)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def _side_by_side(blocks: list[tuple[str, list[str]]]) -> str:
    widths = [max(len(title), *(len(line) for line in lines)) for title, lines in blocks]
    height = max(len(lines) for _, lines in blocks)
    rows = ["    ".join(title.ljust(w) for (title, _), w in zip(blocks, widths)).rstrip()]
    for i in range(height):
        rows.append("    ".join((lines[i] if i < len(lines) else "").ljust(w)
                                for (_, lines), w in zip(blocks, widths)).rstrip())
    return "\n".join(rows)


def lab_facts() -> dict[str, str]:
    """Each worked example computed by the lab (as its Step by step tab shows it); an example
    whose result differs from the course notes' stops the build."""
    import numpy as np

    from cnnstudio.lab import ops
    from cnnstudio.lab.examples import EXAMPLES

    parts = []
    for example in EXAMPLES:
        if example.kind == "convolution":
            trace = ops.conv_trace(np.array(example.x), np.array(example.w), example.stride)
            shown = [("x", _matrix_lines(example.x)), ("w", _matrix_lines(example.w))]
        else:
            trace = ops.pool_trace(np.array(example.x), example.mode, example.size,
                                   example.stride)
            shown = [("x", _matrix_lines(example.x))]
        if not np.array_equal(trace.output, np.array(example.expected)):
            raise RuntimeError(f"the lab's {example.key} example gives {trace.output.tolist()}, "
                               f"the course notes {example.expected}")
        shown.append(("output", _matrix_lines(trace.output)))
        parts += [f"**{example.title}**. {example.note}", "", "```text",
                  _side_by_side(shown), "", *trace.size_lines,
                  f"first output: {trace.steps[0].text}", "```", ""]
    return {"lab.examples": "\n".join(parts).rstrip(), "lab.example_count": str(len(EXAMPLES))}


# -- settings, sources and the window --------------------------------------------------------


def settings_facts() -> dict[str, str]:
    """settings.GROUP.NAME.help / .default / .choices for every setting."""
    known = {}
    for group in GROUPS.values():
        for spec in group.params:
            prefix = f"settings.{group.name}.{spec.name}"
            known[f"{prefix}.help"] = spec.help
            known[f"{prefix}.default"] = format_value(spec.default)
            known[f"{prefix}.choices"] = ", ".join(f"`{c}`" for c in spec.choices)
    return known


def source_facts() -> dict[str, str]:
    rows = ["| Spec | What it reads |", "| --- | --- |"]
    rows += [f"| `{kind.syntax}` | {kind.help} |" for kind in SOURCES]
    downloadable = [kind.name for kind in SOURCES if kind.can_download]
    known = {"sources.table": "\n".join(rows),
             "sources.downloadable": ", ".join(downloadable[:-1]) + " and " + downloadable[-1]}
    known.update({f"sources.{kind.id}.help": kind.help for kind in SOURCES})
    return known


def app_facts() -> dict[str, str]:
    from cnnstudio.ui.recovery import AUTOSAVE_INTERVAL_MS

    return {"formula.window": WINDOW_FORMULA,
            "recovery.interval_s": f"{AUTOSAVE_INTERVAL_MS // 1000}"}
