"""`cnnstudio export --project` (a network without a run folder) and `--bench`."""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from cnnstudio.cli import main
from cnnstudio.core.project import Project, load_project, save_project
from cnnstudio.core.templates import build_template
from cnnstudio.nn import build_model
from cnnstudio.nn.probabilities import class_probabilities


def run(capsys, *args):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def make_project(folder, *, with_weights: bool):
    """A LeNet-5 project; with its own weights file beside it, as an import writes one."""
    graph = build_template("lenet5", (1, 28, 28), 10)
    project = Project.new(graph, name="Net")
    model = build_model(graph)
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(torch.randn(tensor.shape, generator=generator) * 0.3)
    if with_weights:
        torch.save(model.state_dict(), folder / "net.pt")
        project.weights = "net.pt"
    save_project(project, folder / "net.cnnproj")
    return folder / "net.cnnproj", model.eval()


def test_a_project_exports_with_its_weights_file(capsys, tmp_path):
    path, model = make_project(tmp_path, with_weights=True)
    out_file = tmp_path / "net.onnx"  # beside the project: no run folder to keep clear of
    code, out, err = run(capsys, "export", "--project", path, "--format", "onnx", "--out",
                         out_file)
    assert code == 0, err
    assert f"weights from {tmp_path / 'net.pt'}: loaded" in out and "untrained" not in out
    assert "largest difference of log-probabilities from PyTorch" in out
    assert "Time for one image" not in out  # no benchmark without --bench

    session = ort.InferenceSession(str(out_file), providers=["CPUExecutionProvider"])
    x = torch.rand(5, 1, 28, 28, generator=torch.Generator().manual_seed(9))
    got = session.run(None, {"image": x.numpy()})[0]
    with torch.no_grad():  # no normalisation: mean 0, std 1
        expected = class_probabilities(model(x), model.output_kind).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=1e-4)
    meta = {p.key: p.value for p in onnx.load(str(out_file)).metadata_props}
    assert json.loads(meta["classes"]) == [str(i) for i in range(10)]
    assert json.loads(meta["mean"]) == [0.0] and json.loads(meta["std"]) == [1.0]


def test_a_project_without_weights_exports_untrained(capsys, tmp_path):
    path, _ = make_project(tmp_path, with_weights=False)
    code, out, err = run(capsys, "export", "--project", path, "--format", "python", "--out",
                         tmp_path / "net.py")
    assert code == 0, err
    assert "untrained: random weights" in out
    assert (tmp_path / "net.py").is_file()
    assert load_project(path).weights is None


def test_a_missing_weights_file_is_a_clear_failure(capsys, tmp_path):
    path, _ = make_project(tmp_path, with_weights=True)
    (tmp_path / "net.pt").unlink()
    code, _, err = run(capsys, "export", "--project", path, "--format", "onnx", "--out",
                       tmp_path / "net.onnx")
    assert code == 1 and "Traceback" not in err
    assert "does not exist" in err and not (tmp_path / "net.onnx").exists()


@pytest.mark.parametrize("args, message", [
    (["RUN", "--project", "{p}"], "not both"),
    ([], "give the run folder to export (RUN_DIR), or --project"),
    (["--project", "{p}", "--bench", "--format", "python"], "use it with --format onnx"),
])
def test_run_folder_and_project_go_alone(capsys, tmp_path, args, message):
    path, _ = make_project(tmp_path, with_weights=False)
    args = [a.format(p=path) if a != "RUN" else tmp_path for a in args]
    if "--format" not in args:
        args += ["--format", "onnx"]
    code, _, err = run(capsys, "export", *args, "--out", tmp_path / "m.out")
    assert code == 2 and message in err and "Traceback" not in err
    assert not (tmp_path / "m.out").exists()


def test_bench_prints_the_latency(capsys, tmp_path):
    path, _ = make_project(tmp_path, with_weights=False)
    code, out, err = run(capsys, "export", "--project", path, "--format", "onnx", "--bench",
                         "--out", tmp_path / "m.onnx")
    assert code == 0, err
    assert "Time for one image (median of 50 runs): ONNX Runtime" in out and "PyTorch" in out


def test_a_project_exports_as_an_exported_program(capsys, tmp_path):
    path, model = make_project(tmp_path, with_weights=True)
    out_file = tmp_path / "net.pt2"
    code, out, err = run(capsys, "export", "--project", path, "--format", "pt2", "--out",
                         out_file)
    assert code == 0, err
    assert f"Wrote {out_file} (pt2, " in out and "largest difference" in out
    assert "(limit 1e-05)" in out  # pt2 is checked more tightly than ONNX's 1e-4
    program = torch.export.load(str(out_file)).module()
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        np.testing.assert_allclose(program(x).numpy(),
                                   class_probabilities(model(x), model.output_kind).numpy(),
                                   atol=1e-5)
    code, _, err = run(capsys, "export", "--project", path, "--format", "pt2", "--out",
                       out_file)
    assert code == 1 and "already exists" in err and "--force" in err


def test_the_output_says_when_the_older_onnx_exporter_wrote_the_file(capsys, tmp_path,
                                                                       monkeypatch):
    from cnnstudio.nn import onnx_export

    def refuse(*_args, **_kwargs):
        raise RuntimeError("Could not guard on data-dependent expression")

    monkeypatch.setattr(onnx_export, "dynamo_proto", refuse)
    path, _ = make_project(tmp_path, with_weights=False)
    code, out, err = run(capsys, "export", "--project", path, "--format", "onnx", "--out",
                         tmp_path / "m.onnx")
    assert code == 0, err
    assert "(limit 0.0001)" in out
    assert "older TorchScript-based ONNX exporter" in out and "data-dependent" in out
