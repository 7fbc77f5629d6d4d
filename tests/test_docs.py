"""The user guide cannot drift: its reference pages are generated from what the code registers
and cover all of it, every figure a page names is computed, every command line it shows parses,
its ONNX check runs on a real export, and (with the docs extra) the strict MkDocs build passes
and shows the course's numbers."""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from cnnstudio import cli
from cnnstudio.core import registry
from cnnstudio.core.analysis import analyze
from cnnstudio.core.blocks.base import BlockType
from cnnstudio.core.params import ParamSpec
from cnnstudio.core.settings import GROUPS
from cnnstudio.core.sources import SOURCES
from cnnstudio.core.templates import TEMPLATES, build_template

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
WRITTEN_PAGES = sorted(DOCS.rglob("*.md"))
CODE_BLOCK = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)


def load(name: str) -> ModuleType:
    """docs/NAME.py, imported as MkDocs' hook imports it (docs/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"docs_{name}", DOCS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gen_reference = load("gen_reference")
gen_facts = load("gen_facts")


def section(page: str, anchor: str) -> str:
    """The text from the heading with this id to the next heading of the same level."""
    match = re.search(rf"^(#+) .*\{{#{re.escape(anchor)}\}}$", page, re.MULTILINE)
    assert match, f"no heading #{anchor}"
    level = match.group(1)
    end = re.search(rf"^{level} ", page[match.end():], re.MULTILINE)
    return page[match.start():match.end() + end.start() if end else len(page)]


# -- the reference covers everything registered ----------------------------------------------


def test_every_block_type_has_its_parameters_and_a_worked_example_of_the_real_analysis():
    page = gen_reference.blocks_page()
    for block_type in registry.all_types():
        text = section(page, f"block-{block_type.type_id.lower()}")
        for spec in block_type.params:
            assert f"| `{spec.name}`" in text, (block_type.type_id, spec.name)
        example = gen_reference.worked_example(block_type)
        info = analyze(example.graph).blocks[example.block.id]
        assert "**Worked example**" in text
        assert f"{example.block.name} → " in text  # the canvas's tooltip, verbatim
        assert f"| Parameters | {info.total_params:,}" in text
        assert f"| Multiply-accumulates | {info.macs:,} per image |" in text


def test_the_course_blocks_are_explained_with_the_course_numbers():
    page = gen_reference.blocks_page()
    conv = section(page, "block-conv2d")
    assert "CONV1 in the `course-example` template" in conv
    assert "((5·5·1) + 1)·16 = 416" in conv
    assert "(1568 + 1)·100 = 156,900" in section(page, "block-dense")


def _same_shape(params, inputs):
    return inputs[0]


def _channel_sum(params, inputs):
    return (sum(shape[0] for shape in inputs), *inputs[0][1:])


@pytest.fixture(params=["one input", "three inputs"])
def new_block_type(request) -> Iterator[BlockType]:
    """A block type registered with nothing but its declaration, taken out again afterwards."""
    many = request.param == "three inputs"
    block_type = registry.register(BlockType(
        type_id="DocsProbe", version=1, display_name="Docs probe", category="Merge",
        help="A block type that exists only in this test.",
        params=(ParamSpec("strength", "float", 0.5, minimum=0.0, maximum=2.0,
                          help="How strongly it probes."),),
        infer=_channel_sum if many else _same_shape, min_inputs=3 if many else 1,
        max_inputs=None if many else 1))
    yield block_type
    registry.unregister(block_type.type_id)


def test_a_new_block_type_is_documented_from_its_declaration_alone(new_block_type):
    text = section(gen_reference.blocks_page(), "block-docsprobe")
    assert "A block type that exists only in this test." in text
    assert "| `strength` | number | `0.5` | from 0 to 2 | How strongly it probes. |" in text
    assert "a small network built for this page" in text
    example = gen_reference.worked_example(new_block_type)
    assert len(example.info.input_shapes) == new_block_type.min_inputs
    assert example.info.output_shape is not None


def subcommands() -> dict:
    parser = cli.build_parser()
    return gen_reference._subcommands(parser)[0].choices


def test_every_command_and_every_option_is_in_the_cli_reference():
    page = gen_reference.cli_page()
    assert set(subcommands()) == set(cli.SUBCOMMANDS)
    for name, parser in subcommands().items():
        text = section(page, f"command-{name}")
        assert f"usage: cnnstudio {name}" in text
        for action in parser._actions:
            for option in action.option_strings:
                if option not in ("-h", "--help"):
                    assert f"`{option}`" in text, (name, option)


def test_train_options_without_help_of_their_own_take_the_settings_help():
    text = section(gen_reference.cli_page(), "command-train")
    epochs = next(line for line in text.splitlines() if line.startswith("| `--epochs`"))
    assert GROUPS["training"].param("epochs").help in epochs


def test_every_setting_is_in_the_settings_reference_with_its_train_option():
    page = gen_reference.settings_page()
    rows = {line.split("|")[1].strip().split(" ")[0]: line for line in page.splitlines()
            if line.startswith("| `")}
    for group in GROUPS.values():
        for spec in group.params:
            assert f"`{spec.name}`" in rows, spec.name
    assert "`--lr`" in rows["`learning_rate`"]
    assert "`--precision`" in rows["`precision`"]
    assert "`optimizer` is `sgd` or `rmsprop`" in rows["`momentum`"]


def test_every_dataset_source_and_template_is_in_the_reference():
    datasets = gen_reference.datasets_page()
    for kind in SOURCES:
        assert f"Spec: `{kind.syntax}`" in section(datasets, f"source-{kind.id}")
    templates = gen_reference.templates_page()
    for template in TEMPLATES.values():
        total = analyze(build_template(template.id)).total_params
        row = next(line for line in templates.splitlines()
                   if line.startswith(f"| [`{template.id}`]"))
        assert row.endswith(f"| {total:,} |")


# -- the written pages -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def facts() -> dict[str, str]:
    return gen_facts.facts()


def test_every_fact_a_page_names_is_computed(facts):
    named = {page.relative_to(DOCS).as_posix(): gen_facts.placeholders(page.read_text("utf-8"))
             for page in WRITTEN_PAGES}
    assert named["tutorial.md"], "the tutorial takes its numbers from the code"
    assert {page: names - set(facts) for page, names in named.items()} == {
        page: set() for page in named}


def test_the_course_facts_are_the_real_analysis(facts):
    analysis = analyze(build_template("course-example"))
    assert facts["course.total_params"] == f"{analysis.total_params:,}"
    assert facts["course.sum"].endswith(f" = {analysis.total_params:,}")
    assert facts["course.largest_block"] == "FC3"


def test_an_unknown_fact_is_an_error_that_names_it():
    with pytest.raises(gen_facts.UnknownFact, match=r"\{\{ course\.nope \}\}"):
        gen_facts.expand("The network has {{ course.nope }} parameters.", {"a": "1"})
    assert gen_facts.expand("{{ a }} and {{a}}", {"a": "1"}) == "1 and 1"


def test_a_lab_example_that_no_longer_gives_the_notes_result_stops_the_build(monkeypatch):
    from dataclasses import replace

    from cnnstudio.lab import examples

    wrong = replace(examples.EXAMPLES[1], expected=((19.0, 25.0), (37.0, 44.0)))
    monkeypatch.setattr(examples, "EXAMPLES", (wrong,))
    with pytest.raises(RuntimeError, match="conv2d example gives"):
        gen_facts.lab_facts()


def command_lines() -> list[tuple[str, str]]:
    """(page, line) for every `cnnstudio …` line in the shell blocks of the guide and README."""
    found = []
    for page in [*WRITTEN_PAGES, ROOT / "README.md"]:
        for language, body in CODE_BLOCK.findall(page.read_text("utf-8")):
            if language in ("sh", "bash", "console", ""):
                found += [(page.name, line.strip()) for line in body.splitlines()
                          if line.strip().startswith("cnnstudio")]
    return found


def test_every_command_line_the_guide_shows_parses(capsys):
    lines = command_lines()
    assert len(lines) > 20
    parser = cli.build_parser()
    for page, line in lines:
        words = shlex.split(line, comments=True)[1:]
        if not words or (words[0] not in cli.SUBCOMMANDS and words[0] not in ("-h", "--help")):
            words.insert(0, "gui")  # as cli.main does
        try:
            parser.parse_args(words)
        except SystemExit as exit_:
            assert exit_.code == 0, f"{page}: {line}: {capsys.readouterr().err}"


@pytest.mark.slow  # a subprocess
def test_the_tutorials_onnx_check_runs_on_a_real_export(tmp_path, capsys):
    """The tutorial's Python block, run as a reader would: on an exported course network."""
    import numpy as np
    from PIL import Image

    from tests.nn.test_export import make_run

    run = make_run(tmp_path / "runs" / "course", "course-example")
    assert cli.main(["export", str(run), "--format", "onnx", "--out",
                     str(tmp_path / "course.onnx")]) == 0
    capsys.readouterr()
    digit = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)
    Image.fromarray(digit).save(tmp_path / "digit.png")
    tutorial = (DOCS / "tutorial.md").read_text("utf-8")
    (snippet,) = [body for language, body in CODE_BLOCK.findall(tutorial) if language == "python"]
    done = subprocess.run([sys.executable, "-c", snippet], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    first, second = done.stdout.splitlines()
    assert first.startswith("0..1 1,28,28 ['class 0', ")
    assert re.fullmatch(r"class \d \d+\.\d%", second)


# -- the strict build (with the docs extra) ----------------------------------------------------


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}  # Material's notice about MkDocs 2
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
                           str(config), "-d", str(site)], capture_output=True, text=True,
                          timeout=300, env=env, cwd=config.parent)


def test_the_strict_build_passes_and_shows_the_course_numbers(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    site = tmp_path / "site"
    analysis = analyze(build_template("course-example"))
    tutorial = (site / "tutorial" / "index.html").read_text("utf-8")
    assert f"{analysis.total_params:,}" in tutorial and f"{analysis.macs:,}" in tutorial
    assert "((5·5·16) + 1)·32 = 12,832" in tutorial
    blocks = (site / "reference" / "blocks" / "index.html").read_text("utf-8")
    for block_type in registry.all_types():
        assert f'id="block-{block_type.type_id.lower()}"' in blocks
    pages = list(site.rglob("*.html"))
    assert len(pages) > 15 and not [p for p in pages if "{{" in p.read_text("utf-8")]
    assert not list(site.rglob("*.py")), "the generators are not published"


@pytest.mark.slow  # a subprocess
def test_the_build_fails_on_an_unknown_fact_or_a_broken_link(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    shutil.copytree(DOCS, tmp_path / "docs", ignore=shutil.ignore_patterns("__pycache__"))
    page = tmp_path / "docs" / "how-to" / "resume.md"
    original = page.read_text("utf-8")
    page.write_text(original + "\nIt has {{ course.nope }} parameters.\n", "utf-8")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "unknown fact {{ course.nope }}" in done.stderr
    page.write_text(original + "\nSee [the missing page](missing.md).\n", "utf-8")
    done = build(tmp_path / "mkdocs.yml", tmp_path / "site")
    assert done.returncode != 0 and "missing.md" in done.stderr
