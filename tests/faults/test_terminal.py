"""The terminal side of the command line (issue 11, items 9 and 10): a reader that goes away
(`| head -1`) ends the program quietly, and text from a user's files never reaches the terminal
with its control characters raw."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from cnnstudio.core.printable import printable, printable_json
from cnnstudio.core.project import load_project, project_to_dict
from tests.faults.small_runs import EXECUTABLE, cli, write_tiny_project

ENV = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
TITLE = "\x1b]0;pwned\x07"  # OSC 0: would retitle the terminal
RAW = ("\x1b", "\x07", "\x00", "\u202e", "\x9b", "\x7f")


# -- 9. a closed pipe --------------------------------------------------------------------------


@pytest.mark.parametrize("args, statuses", [
    (["summary", "--template", "vgg16"], {141}),  # 128 + SIGPIPE, as a shell reports for `cat`
    (["summary", "--template", "vgg16", "--json"], {141}),
    (["--help"], {0, 141}),  # argparse itself ignores a failed write of the help
])
def test_a_reader_that_went_away_ends_the_program_quietly(args, statuses):
    process = subprocess.Popen([str(EXECUTABLE), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=ENV)
    process.stdout.close()  # gone before the program writes a byte: its write meets EPIPE
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=120) in statuses
    assert err == b""


def test_summary_into_head_prints_the_first_line_and_nothing_on_stderr():
    result = subprocess.run(f"'{EXECUTABLE}' summary --template vgg16 | head -1", shell=True,
                            capture_output=True, text=True, env=ENV, timeout=120)
    assert result.stdout == "VGG-16\n"
    assert result.stderr == ""


# -- 10. control characters --------------------------------------------------------------------


@pytest.fixture
def hostile_project(tmp_path) -> Path:
    """A project whose name and block names carry an OSC sequence, a NUL, a bidi override,
    a C1 CSI and a DEL."""
    data = project_to_dict(load_project(write_tiny_project(tmp_path / "tiny.cnnproj")))
    data["name"] = f"net{TITLE}"
    names = {"Conv2D": f"conv{TITLE}", "Pooling": "pool\x00hidden",
             "Dense": "fc\u202eevil", "Flatten": "flat\x9b2J\x7f"}
    for block in data["blocks"]:
        block["name"] = names.get(block["type"], block["name"])
    path = tmp_path / "hostile.cnnproj"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def assert_no_raw_controls(text: str) -> None:
    for char in RAW:
        assert char not in text, f"raw {char!r} in {text!r}"


def test_summary_shows_control_characters_escaped(capsys, hostile_project):
    code, out, err = cli(capsys, "summary", hostile_project)
    assert code == 0, err
    assert_no_raw_controls(out + err)
    for shown in ("net\\x1b]0;pwned\\x07", "conv\\x1b]0;pwned\\x07", "pool\\x00hidden",
                  "fc\\u202eevil", "flat\\x9b2J\\x7f"):
        assert shown in out, shown


def test_summary_json_escapes_them_and_keeps_the_names_exact(capsys, hostile_project):
    code, out, _ = cli(capsys, "summary", hostile_project, "--json")
    assert code == 0
    assert_no_raw_controls(out)
    names = {layer["name"] for layer in json.loads(out)["layers"]}
    assert {f"conv{TITLE}", "pool\x00hidden", "fc\u202eevil", "flat\x9b2J\x7f"} <= names


def test_error_messages_escape_them_too(capsys, hostile_project, tmp_path):
    data = json.loads(hostile_project.read_text(encoding="utf-8"))
    data["connections"][1]["port"] = 7  # a problem whose message names the pooling block
    broken = tmp_path / "broken.cnnproj"
    broken.write_text(json.dumps(data), encoding="utf-8")
    code, _, err = cli(capsys, "summary", broken)
    assert code == 2
    assert "Pooling 'pool\\x00hidden' takes one input" in err
    assert_no_raw_controls(err)


def test_file_names_are_escaped_where_they_are_printed(capsys, tmp_path):
    path = tmp_path / f"new{TITLE}.cnnproj"
    code, out, err = cli(capsys, "new", "--template", "lenet5", "-o", path)
    assert code == 0, err
    assert path.is_file()
    assert_no_raw_controls(out)
    assert "new\\x1b]0;pwned\\x07.cnnproj" in out


def test_printable_leaves_ordinary_text_alone():
    text = "Conv2D 'conv1'\tline\nnext: Ünïcødé × 3 → ok, עברית"
    assert printable(text) == text
    assert printable("a\rb\u2066c\u061c") == "a\\x0db\\u2066c\\u061c"
    assert json.loads(printable_json({"k": "x\u202ey\x85"})) == {"k": "x\u202ey\x85"}
