"""The registry of dataset sources: declarations, the one spec parser and its inverse."""

from __future__ import annotations

import pytest

from cnnstudio.core.sources import (
    SAMPLE_SOURCE,
    SOURCE_IDS,
    SOURCES,
    SourceSpec,
    SpecError,
    accepted_forms,
    format_spec,
    forms_text,
    parse_spec,
    source,
)

# awkward but legal paths: spaces inside, a drive letter's colon, '~', non-ASCII
PATHS = ("C:\\data sets\\set one", "~/photos/čaj", "/tmp/a b/c.npz")


def example_spec(kind_id: str) -> SourceSpec:
    kind = source(kind_id)
    return SourceSpec(kind_id, PATHS[: len(kind.arguments)])


@pytest.mark.parametrize("kind_id", SOURCE_IDS)
def test_every_kind_round_trips_through_text(kind_id):
    spec = example_spec(kind_id)
    text = format_spec(spec)
    assert parse_spec(text) == spec
    assert format_spec(parse_spec(text)) == text == str(spec)
    messy = kind_id.upper() + (":" + " , ".join(f" {p} " for p in spec.paths) if spec.paths
                               else "")
    assert parse_spec(f"  {messy}  ") == spec  # any case, spaces around the parts


@pytest.mark.parametrize("kind_id", SOURCE_IDS)
def test_the_syntax_names_each_argument_and_appears_in_every_listing(kind_id):
    kind = source(kind_id)
    assert kind.syntax.split(":")[0] == kind_id
    assert kind.syntax.endswith(",".join(a.name for a in kind.arguments))
    assert kind.form in forms_text() and kind.form in accepted_forms()
    assert parse_spec(kind.syntax).kind == kind_id  # the syntax itself is a valid spec


def test_declarations_are_consistent():
    assert len(set(SOURCE_IDS)) == len(SOURCES) and SOURCE_IDS[0] == SAMPLE_SOURCE
    assert len({kind.label for kind in SOURCES}) == len(SOURCES)
    for kind in SOURCES:
        assert kind.id == kind.id.lower() and not set(kind.id) & set(":, ")
        assert len({a.name for a in kind.arguments}) == len(kind.arguments)
        assert kind.help.endswith(".") and kind.name and kind.label
        assert all(a.label and a.noun and a.title for a in kind.arguments)
    assert forms_text().startswith("mnist-sample (the MNIST sample that ships with CNN Studio), ")
    assert " or npz:FILE (arrays x and y)" in forms_text()


def test_a_single_path_keeps_its_commas_and_colons():
    assert parse_spec("folder:C:\\a,b").paths == ("C:\\a,b",)
    assert parse_spec("npz:x:y.npz") == SourceSpec("npz", ("x:y.npz",))
    assert parse_spec("idx: a.gz ,b.gz") == SourceSpec("idx", ("a.gz", "b.gz"))


@pytest.mark.parametrize(("text", "expected"), [
    ("", "no dataset given"),
    ("   ", "no dataset given"),
    ("imagenet:/data", "unknown dataset 'imagenet:/data'"),
    ("/data/mnist", "unknown dataset '/data/mnist'"),
    (17, "expected a dataset spec such as 'mnist-sample' or 'folder:DIR', got 17"),
    (None, "got None"),
    ("x" * 200, "unknown dataset '" + "x" * 57 + "...'"),
])
def test_a_spec_naming_no_source_lists_every_valid_form(text, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    message = str(err.value)
    assert expected in message
    assert message.endswith(accepted_forms())
    assert all(kind.form in message for kind in SOURCES)


@pytest.mark.parametrize(("text", "expected"), [
    ("mnist", "'mnist' needs DIR after the colon, as in mnist:DIR; got 'mnist'"),
    ("folder:  ", "'folder' needs DIR after the colon, as in folder:DIR (one subfolder per "
                  "class); got 'folder:'"),
    ("npz:", "'npz' needs FILE after the colon, as in npz:FILE (arrays x and y)"),
    ("idx:", "'idx' needs IMAGES,LABELS after the colon"),
    ("idx:a", "'idx' needs two paths separated by one comma (IMAGES, LABELS, in that order), "
              "as in idx:IMAGES,LABELS (two IDX files); got 'a'"),
    ("idx:a,b,c", "got 'a,b,c'"),
    ("idx:a,", "got 'a,'"),
    ("mnist-sample:/data", "'mnist-sample' takes no path: write just mnist-sample"),
])
def test_a_spec_with_the_wrong_paths_shows_the_form_of_its_source(text, expected):
    with pytest.raises(SpecError) as err:
        parse_spec(text)
    assert expected in str(err.value)


@pytest.mark.parametrize(("spec", "expected"), [
    (SourceSpec("imagenet", ("x",)), "unknown dataset source 'imagenet'"),
    (SourceSpec("idx", ("a",)), "'idx' takes two paths (idx:IMAGES,LABELS), got 1"),
    (SourceSpec("mnist-sample", ("a",)), "'mnist-sample' takes no paths"),
    (SourceSpec("folder", ("",)), "a path must be non-empty"),
    (SourceSpec("folder", (" a",)), "without spaces around it"),
    (SourceSpec("idx", ("a,b", "c")), "none may contain one: 'a,b'"),
])
def test_format_spec_refuses_what_parse_spec_could_not_read_back(spec, expected):
    with pytest.raises(SpecError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        format_spec(spec)
