"""The command line: templates, new, summary; exit codes and messages."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from cnnstudio.cli import main


def run(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_course_example_table_prints_the_course_numbers(capsys):
    code, out, _ = run(capsys, "summary", "--template", "course-example")
    assert code == 0
    lines = {line.split()[1]: line for line in out.splitlines() if line[:3].strip().isdigit()}
    assert "(28,28,16)" in lines["CONV1"] and "416" in lines["CONV1"]
    assert "(14,14,16)" in lines["POOL1"]
    assert "(14,14,32)" in lines["CONV2"] and "12,832" in lines["CONV2"]
    assert "(7,7,32)" in lines["POOL2"] and "1,568" in lines["POOL2"]
    assert "156,900" in lines["FC3"] and "1,010" in lines["FC4"]
    assert "Total parameters:      171,158" in out


def test_keras_book_network_json(capsys):
    code, out, _ = run(capsys, "summary", "--template", "keras-mnist", "--json")
    assert code == 0
    data = json.loads(out)
    shapes = [layer["output_shape"] for layer in data["layers"]][1:-1]
    assert shapes == [[32, 26, 26], [32, 13, 13], [64, 11, 11], [64, 5, 5], [64, 3, 3],
                      [576], [64], [10]]
    assert data["total_params"] == 93_322
    assert data["diagnostics"] == []
    assert set(data["layers"][1]) == {"id", "name", "type", "output_shape", "activation_size",
                                      "params", "non_trainable", "macs", "receptive_field"}


def test_vgg16_full_size_has_torchvision_parameter_count(capsys):
    code, out, _ = run(capsys, "summary", "--template", "vgg16", "--input", "3,224,224",
                       "--classes", "1000", "--json")
    assert code == 0
    assert json.loads(out)["total_params"] == 138_357_544


def test_templates_list(capsys):
    code, out, _ = run(capsys, "templates", "--json")
    ids = [t["id"] for t in json.loads(out)]
    assert code == 0
    assert ids == ["lenet5", "keras-mnist", "course-example", "alexnet", "vgg11", "vgg16",
                   "googlenet", "inception-small", "inception-v3-module", "resnet18", "resnet50",
                   "mobilenet-v2", "squeezenet1.1", "vgg11-bn"]
    code, out, _ = run(capsys, "templates")
    assert "keras-mnist" in out and "93,322 parameters" in out


def test_new_writes_a_project_that_summary_reads(capsys, tmp_path):
    path = tmp_path / "lenet.cnnproj"
    code, out, _ = run(capsys, "new", "--template", "lenet5", "--input", "1,28,28",
                       "--classes", "10", "-o", str(path))
    assert code == 0 and path.exists() and "61,706 parameters" in out
    code, out, _ = run(capsys, "summary", str(path), "--json")
    assert code == 0 and json.loads(out)["total_params"] == 61_706
    code, _, err = run(capsys, "new", "--template", "lenet5", "-o", str(path))
    assert code == 2 and "already exists" in err


def test_summary_of_a_file_with_errors_exits_1(capsys, tmp_path):
    path = tmp_path / "bad.cnnproj"
    run(capsys, "new", "--template", "keras-mnist", "-o", str(path))
    data = json.loads(path.read_text())
    dense = next(b for b in data["blocks"] if b["type"] == "Dense")
    flatten = next(b for b in data["blocks"] if b["type"] == "Flatten")
    # wire the Dense layer straight to the last convolution: Dense needs Flatten
    for c in data["connections"]:
        if c["to"] == dense["id"]:
            c["from"] = next(x["from"] for x in data["connections"] if x["to"] == flatten["id"])
    data["connections"] = [c for c in data["connections"] if c["to"] != flatten["id"]]
    path.write_text(json.dumps(data))
    code, out, _ = run(capsys, "summary", str(path))
    assert code == 1
    assert "Dense needs a flat input" in out and "insert Flatten before it" in out


@pytest.mark.parametrize("args, message", [
    (["summary", "--template", "resnet"], "unknown template 'resnet'"),
    (["summary", "missing.cnnproj"], "missing.cnnproj"),
    (["summary", "--template", "vgg16", "--input", "3,224"], "expected channels,height,width"),
    (["summary", "--template", "vgg16", "--classes", "0"], "number of classes"),
    (["summary"], "name a project file or a template"),
])
def test_bad_commands_exit_2_with_a_message(capsys, args, message):
    code, _, err = run(capsys, *args)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_input_override_on_a_project_file(capsys, tmp_path):
    path = tmp_path / "k.cnnproj"
    run(capsys, "new", "--template", "keras-mnist", "-o", str(path))
    code, out, _ = run(capsys, "summary", str(path), "--input", "3,32,32", "--classes", "100",
                       "--json")
    data = json.loads(out)
    assert code == 0 and data["layers"][0]["output_shape"] == [3, 32, 32]
    assert data["layers"][-1]["output_shape"] == [100]


def test_python_dash_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "cnnstudio", "summary", "--template", "course-example"],
        capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "171,158" in result.stdout


def test_tour_command_parses_and_is_listed_in_help(capsys, tmp_path):
    """`cnnstudio tour` is how the built application (make dist) runs the tour: no
    `python -m cnnstudio.tour` there."""
    from cnnstudio.cli import build_parser

    args = build_parser().parse_args(["tour", "--out", str(tmp_path), "--epochs", "2"])
    assert (args.command, args.out, args.epochs) == ("tour", str(tmp_path), 2)
    assert build_parser().parse_args(["tour", "--out", str(tmp_path)]).epochs == 1
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "tour" in out
    code, _, err = run(capsys, "tour", "--out", str(tmp_path), "--epochs", "0")
    assert code == 2 and "expected a positive whole number" in err
