"""The user guide's reference pages, generated from the code at every build.

Every block type comes from the core registry (its declaration: parameters, help, and a worked
example computed by the real analysis and explained by the canvas's own tooltip text), every
command and option from the CLI's argparse parser, every setting from the settings
declarations, every dataset source from `core/sources.py` and every template from the template
table. Nothing here is typed twice, so the reference cannot drift from the program.

`docs/hooks.py` hands `reference_pages()` to MkDocs as in-memory files: nothing generated is
written into docs/. `tests/test_docs.py` checks that the pages cover everything registered.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from cnnstudio.core import registry
from cnnstudio.core.analysis import BlockInfo, analyze
from cnnstudio.core.blocks.base import CATEGORIES, BlockType, format_shape
from cnnstudio.core.explain import explain, key_params_text
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.params import ParamSpec, format_value
from cnnstudio.core.settings import GROUPS, SettingsGroup
from cnnstudio.core.sources import SOURCES, SourceKind
from cnnstudio.core.templates import TEMPLATES, build_template

PAGES = {
    "reference/blocks.md": "blocks_page",
    "reference/cli.md": "cli_page",
    "reference/settings.md": "settings_page",
    "reference/datasets.md": "datasets_page",
    "reference/templates.md": "templates_page",
}
GENERATED_NOTE = ("*Generated from the code at every build of this guide "
                  "(`docs/gen_reference.py`); it cannot be out of date.*")
# templates searched for a worked example of each block type, the course's network first
EXAMPLE_TEMPLATES = tuple(dict.fromkeys(("course-example", *TEMPLATES)))
# the input of the small networks built for block types that no template uses
EXAMPLE_IMAGE = {"channels": 8, "height": 16, "width": 16}
KIND_TEXT = {
    "int": "integer", "float": "number", "bool": "on / off", "choice": "choice",
    "pair": "pair h×w", "padding": "padding", "optional_pair": "pair h×w, or empty",
    "text": "text", "matrix": "matrix, or empty",
}


def reference_pages() -> dict[str, str]:
    """Path inside docs/ -> the page's markdown."""
    return {path: globals()[builder]() for path, builder in PAGES.items()}


# -- markdown helpers ------------------------------------------------------------------------


def md(text: str) -> str:
    """Plain text made safe for a markdown table cell or paragraph."""
    for char in ("\\", "|", "*", "_", "`"):
        text = text.replace(char, "\\" + char)
    return text.replace("<", "&lt;").replace("\n", " ")


def table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(cell or "—" for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def code(text: str) -> str:
    return f"```text\n{text}\n```"


def heading(level: int, text: str, anchor: str) -> str:
    """A heading with its own id (attr_list), so that links need no slug rules and a block
    named like its category (Pooling, Dense) keeps an id of its own."""
    return f"{'#' * level} {text} {{#{anchor}}}"


def block_anchor(block_type: BlockType) -> str:
    return f"block-{block_type.type_id.lower()}"


# -- parameters (blocks and settings share ParamSpec) ----------------------------------------


def default_text(spec: ParamSpec) -> str:
    if spec.default is None or spec.default == "":
        return "empty"
    return f"`{format_value(spec.default)}`"


def allowed_text(spec: ParamSpec) -> str:
    bounds = spec._bounds_text().strip()  # the phrase the validation messages use
    if spec.kind == "choice":
        return ", ".join(f"`{choice}`" for choice in spec.choices)
    if spec.kind == "padding":
        return "`valid`, `same`, `full`, or ph×pw" + (f" (at most {spec.maximum:g})"
                                                     if spec.maximum is not None else "")
    if spec.kind in ("pair", "optional_pair"):
        return f"each {bounds}" if bounds else ""
    if spec.kind == "matrix":
        return f"up to {spec.maximum:g}×{spec.maximum:g}" if spec.maximum is not None else ""
    return bounds


def param_row(spec: ParamSpec) -> tuple[str, ...]:
    name = f"`{spec.name}`" + (f" ({md(spec.label)})" if spec.label else "")
    return (name, KIND_TEXT.get(spec.kind, spec.kind), default_text(spec), allowed_text(spec),
            md(spec.help))


PARAM_HEADER = ("Parameter", "Type", "Default", "Allowed", "Meaning")


# -- blocks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkedExample:
    """One block of a real network, analysed: where it comes from and its numbers."""

    source: str
    graph: Graph
    block: Block
    info: BlockInfo


@lru_cache(maxsize=None)
def _template_network(template_id: str) -> tuple[Graph, Any]:
    graph = build_template(template_id)
    return graph, analyze(graph)


def worked_example(block_type: BlockType) -> WorkedExample:
    """The first block of this type in a template (the course's network first), in execution
    order; for a type no template uses, a small network built around it."""
    for template_id in EXAMPLE_TEMPLATES:
        graph, analysis = _template_network(template_id)
        for block_id in analysis.order:
            block = graph.block(block_id)
            info = analysis.blocks[block_id]
            if block.type == block_type.type_id and info.output_shape is not None:
                return WorkedExample(f"{md(block.name)} in the `{template_id}` template",
                                     graph, block, info)
    return _built_example(block_type)


def _built_example(block_type: BlockType) -> WorkedExample:
    """The type with its defaults, fed by an image (through a Flatten where it needs a
    vector), one branch per input it needs."""
    for flat in (False, True):
        graph = Graph()
        image = graph.add_block("Input", EXAMPLE_IMAGE, name="input")
        feeds = []
        branches = block_type.min_inputs
        for _ in range(branches):
            specs: list[tuple[str, dict[str, Any]]] = []
            if branches > 1:
                specs.append(("Conv2D", {"filters": EXAMPLE_IMAGE["channels"], "kernel": [3, 3],
                                         "padding": "same"}))
            if flat:
                specs.append(("Flatten", {}))
            chain = graph.chain(specs, after=image.id) if specs else []
            feeds.append(chain[-1].id if chain else image.id)
        block = graph.add_block(block_type.type_id)
        for feed in feeds:
            graph.connect(feed, block.id)
        info = analyze(graph).blocks[block.id]
        if info.output_shape is not None:
            names = [graph.block(f).name for f in feeds]
            fed = f", fed by {', '.join(names)}" if names else ""
            return WorkedExample(f"a small network built for this page: {md(block.name)} with "
                                 f"its defaults{fed}", graph, block, info)
    raise ValueError(f"no worked example fits the block type {block_type.type_id!r}: give "
                     "docs/gen_reference.py a template or an input it accepts")


def _inputs_text(block_type: BlockType) -> str:
    low, high = block_type.min_inputs, block_type.max_inputs
    if high is None:
        return f"{low} or more"
    return str(low) if low == high else f"{low} to {high}"


def block_section(block_type: BlockType) -> str:
    example = worked_example(block_type)
    info = example.info
    inputs = ", ".join(format_shape(shape) for shape in info.input_shapes) or "none"
    params = f"{info.total_params:,}"
    if info.non_trainable:
        params += f" ({info.trainable:,} trainable, {info.non_trainable:,} non-trainable)"
    rf = "×".join(map(str, info.receptive_field)) if info.receptive_field else "—"
    key = key_params_text(example.block)
    facts = table(("Figure", "In this example"), [
        ("Input shapes", inputs),
        ("Output shape", format_shape(info.output_shape)),
        ("Parameters", params),
        ("Multiply-accumulates", f"{info.macs:,} per image"),
        ("Receptive field after it", rf),
    ])
    tooltip = explain(example.block, info)
    weights = "learned weights" if block_type.has_weights else "no weights"
    lines = [
        heading(2, md(block_type.display_name), block_anchor(block_type)),
        "",
        md(block_type.help),
        "",
        f"Type id `{block_type.type_id}` · category {block_type.category} · inputs "
        f"{_inputs_text(block_type)} · {weights} · palette glyph `{block_type.glyph}`",
        "",
    ]
    if block_type.params:
        lines += [table(PARAM_HEADER, [param_row(p) for p in block_type.params]), ""]
    else:
        lines += ["No parameters to set.", ""]
    lines += [
        f"**Worked example**: {example.source}" + (f" ({md(key)})" if key else "") + ".",
        "",
        facts,
        "",
        "How the numbers come about, as the canvas explains them when you hover the block's "
        "shape:",
        "",
        code(tooltip),
        "",
    ]
    return "\n".join(lines)


def blocks_page() -> str:
    groups = registry.by_category()
    index = [(f"[{md(t.display_name)}](#{block_anchor(t)})", md(category),
              "yes" if t.has_weights else "", md(t.help.split(". ")[0].rstrip(".")) + ".")
             for category in CATEGORIES for t in groups[category]]
    parts = [
        "# Blocks",
        "",
        GENERATED_NOTE,
        "",
        "Every block type of the palette, with its parameters as the inspector shows them, and "
        "a worked example: the block in a real network, analysed by the same code as the "
        "canvas. Shapes are written as the course writes them: (height,width,channels) for an "
        "image, (values) for a vector. Parameters count as the Keras book counts them: "
        "trainable + non-trainable (BatchNorm running statistics, frozen weights).",
        "",
        table(("Block", "Category", "Weights", "What it does"), index),
        "",
    ]
    parts += [block_section(t) for category in CATEGORIES for t in groups[category]]
    return "\n".join(parts)


# -- command line ----------------------------------------------------------------------------


def _subcommands(parser: argparse.ArgumentParser) -> tuple[argparse._SubParsersAction, dict]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
    return action, helps


def _setting_of_option() -> dict[str, str]:
    """`train` option dest -> the training setting it overrides (cli_train._overrides)."""
    from cnnstudio import cli_train

    probe = argparse.Namespace(**{name: name for name in (
        "epochs", "batch_size", "lr", "optimizer", "schedule", "augment", "device", "precision",
        "seed", "tensorboard")})
    return {dest: setting for setting, dest in cli_train._overrides(probe).items()}


def _option_help(action: argparse.Action, command: str, by_option: dict) -> str:
    """The option's own help; else the help of the training setting it sets (train); else
    the help the same option with the same metavar has in every other command that has one."""
    if action.help:
        return action.help
    setting = _setting_of_option().get(action.dest) if command == "train" else None
    if setting is not None:
        return GROUPS["training"].param(setting).help
    return by_option.get((tuple(action.option_strings), action.metavar), "")


def _usage(parser: argparse.ArgumentParser) -> str:
    formatter = argparse.HelpFormatter(parser.prog, width=88)
    formatter.add_usage(parser.usage, parser._actions, parser._mutually_exclusive_groups)
    return formatter.format_help().strip()


def option_rows(parser: argparse.ArgumentParser, command: str,
                by_option: dict) -> list[tuple[str, ...]]:
    rows = []
    for action in parser._actions:
        if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
            continue
        if action.option_strings:
            name = ", ".join(f"`{o}`" for o in action.option_strings)
        else:
            name = f"`{action.metavar or action.dest}`"
        if action.nargs == 0 or not action.option_strings:  # a flag, or named by its value
            value = ""
        elif action.choices:
            value = " \\| ".join(f"`{c}`" for c in action.choices)
        else:
            value = f"`{action.metavar or action.dest.upper()}`"
        default = action.default
        shown = "" if default in (None, False, argparse.SUPPRESS) else f"`{default}`"
        required = "required" if action.required else "optional"
        rows.append((name, value, shown, required, md(_option_help(action, command, by_option))))
    return rows


def cli_page() -> str:
    from cnnstudio import cli

    parser = cli.build_parser()
    action, helps = _subcommands(parser)
    helps_of: dict[tuple, set[str]] = {}
    for sub in action.choices.values():
        for option in sub._actions:
            if option.option_strings and option.help:
                key = (tuple(option.option_strings), option.metavar)
                helps_of.setdefault(key, set()).add(option.help)
    by_option = {key: texts.pop() for key, texts in helps_of.items() if len(texts) == 1}
    top = [a for a in parser._actions
           if not isinstance(a, (argparse._HelpAction, argparse._SubParsersAction))]
    parts = [
        "# Command line",
        "",
        GENERATED_NOTE,
        "",
        md(parser.description or ""),
        md(parser.epilog or ""),
        "",
        code(_usage(parser)),
        "",
        table(("Command", "What it does"),
              [(f"[`{name}`](#command-{name})", md(helps.get(name, "")))
               for name in action.choices]),
        "",
    ]
    if top:
        parts += [table(("Option", "Value", "Default", "Required", "Meaning"),
                        option_rows(parser, "", by_option)), ""]
    exit_status = _exit_status_paragraph(cli.__doc__ or "")
    if exit_status:  # markdown already: its `code` stays code
        parts += [exit_status, ""]
    for name, sub in action.choices.items():
        parts += [heading(2, f"cnnstudio {name}", f"command-{name}"), "",
                  md(helps.get(name, "")) + ".", ""]
        if sub.description:
            parts += [md(sub.description), ""]
        parts += [code(_usage(sub)), "",
                  table(("Argument", "Value", "Default", "Required", "Meaning"),
                        option_rows(sub, name, by_option)), ""]
    return "\n".join(parts)


def _exit_status_paragraph(docstring: str) -> str:
    """The paragraph of the CLI's docstring that lists the exit statuses."""
    for paragraph in docstring.split("\n\n"):
        if paragraph.strip().startswith("Exit status"):
            return " ".join(paragraph.split())
    return ""


# -- settings ----------------------------------------------------------------------------------


def _relevance(group: SettingsGroup, name: str) -> str:
    condition = group.relevant_when.get(name)
    if condition is None:
        return ""
    other, values = condition
    return f"`{other}` is " + " or ".join(f"`{v}`" for v in values)


def settings_page() -> str:
    options = {setting: dest for dest, setting in _setting_of_option().items()}
    from cnnstudio import cli

    train = _subcommands(cli.build_parser())[0].choices["train"]
    flags = {a.dest: a.option_strings[0] for a in train._actions if a.option_strings}
    parts = [
        "# Training and dataset settings",
        "",
        GENERATED_NOTE,
        "",
        "A project keeps these settings; the Training page's Dataset and Settings tabs edit "
        "them, and `cnnstudio train` takes the options listed here for one run. A project file "
        "stores them under `dataset` and `training`; a value out of range is reported with its "
        "place in the file.",
        "",
    ]
    for group in GROUPS.values():
        rows = []
        for spec in group.params:
            dest = options.get(spec.name)
            flag = f"`{flags[dest]}`" if dest in flags else ""
            rows.append((*param_row(spec), _relevance(group, spec.name), flag))
        parts += [f"## {group.title.capitalize()}", "",
                  table((*PARAM_HEADER[:-1], "Meaning", "Matters when", "`train` option"), rows),
                  ""]
    return "\n".join(parts)


# -- dataset sources ---------------------------------------------------------------------------


def source_section(kind: SourceKind) -> str:
    note = f" ({md(kind.note)})" if kind.note else ""
    lines = [heading(2, md(kind.name), f"source-{kind.id}"), "",
             f"Spec: `{kind.syntax}`{note}", "", md(kind.help), ""]
    if kind.arguments:
        lines += [table(("Placeholder", "What to give"),
                        [(f"`{a.name}`", ("a folder: " if a.is_folder else "a file: ")
                          + md(a.noun)) for a in kind.arguments]), ""]
    if kind.can_download:
        lines += ["`cnnstudio train --download` (or the Dataset tab) fetches it into the folder "
                  "when it is missing.", ""]
    if kind.fixed_split:
        lines += ["It brings its own training and validation split: the validation fraction "
                  "and split seed do not apply.", ""]
    return "\n".join(lines)


def datasets_page() -> str:
    parts = [
        "# Dataset sources",
        "",
        GENERATED_NOTE,
        "",
        "A dataset spec names a source and, for most, the paths it reads after a colon; "
        "several paths are separated by commas. The same spec works in `cnnstudio train "
        "--dataset` and in a project file; the Dataset tab builds it for you.",
        "",
        table(("Spec", "Source"),
              [(f"`{k.syntax}`", f"[{md(k.name)}](#source-{k.id})") for k in SOURCES]),
        "",
    ]
    parts += [source_section(kind) for kind in SOURCES]
    return "\n".join(parts)


# -- templates ---------------------------------------------------------------------------------


def templates_page() -> str:
    rows = []
    for template in TEMPLATES.values():
        _, analysis = _template_network(template.id)
        rows.append((f"[`{template.id}`](#template-{template.id})", md(template.title),
                     "×".join(map(str, template.default_input)), str(template.default_classes),
                     f"{analysis.total_params:,}"))
    parts = ["# Templates", "", GENERATED_NOTE, "",
             "The ready-made networks of File → New and `--template`, at their default size "
             "(input channels×height×width). Every one takes another input size and number of "
             "classes (`--input C,H,W`, `--classes N`).", "",
             table(("Id", "Network", "Input", "Classes", "Parameters"), rows), ""]
    for template in TEMPLATES.values():
        parts += [heading(2, md(template.title), f"template-{template.id}"), "",
                  f"`{template.id}`: {md(template.description)}", ""]
    return "\n".join(parts)
