"""The PyTorch ExportedProgram export (.pt2): torch.export.load, any batch size, the metadata,
no auxiliary heads, and its failures."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from cnnstudio.nn.export import ExportError, export_pt2, export_run, load_run
from tests.nn.test_export import (  # noqa: F401 (one_torch_thread: an autouse fixture)
    direct_probabilities,
    images,
    leftovers,
    make_run,
    modern_graph,
    one_torch_thread,
    zoo_graph,
)


@pytest.mark.parametrize("source", ["keras-mnist", "zoo", "modern"])
def test_the_program_reloads_and_agrees_with_pytorch_at_any_batch(source, tmp_path):
    graphs = {"zoo": zoo_graph, "modern": modern_graph}
    run = load_run(make_run(tmp_path / "run", graphs[source]() if source in graphs else source))
    out = tmp_path / "model.pt2"
    report = export_pt2(run, out)
    assert report.format == "pt2" and report.path == out
    assert report.max_abs_diff is not None and report.max_abs_diff <= 1e-5
    assert report.batch_sizes == (16, 1, 7) and "pixel values in [0, 1]" in report.input_note

    extra = {"cnnstudio.json": ""}
    program = torch.export.load(str(out), extra_files=extra)
    meta = json.loads(extra["cnnstudio.json"])
    assert meta["classes"] == run.classes and meta["input_shape"] == list(run.input_shape)
    assert meta["input_range"] == "0..1"
    model = program.module()
    for n in (1, 5):
        x = images(run, n, seed=8)
        with torch.no_grad():
            got = model(x).numpy()
        assert got.shape == (n, len(run.classes))
        np.testing.assert_allclose(got, direct_probabilities(run, x), atol=1e-5)
    assert leftovers(tmp_path) == []


def test_the_program_holds_the_main_output_only(tmp_path):
    run = load_run(make_run(tmp_path / "run", "inception-small"))
    assert len(run.model.output_ids) == 2  # an auxiliary classifier for training
    program = torch.export.load(str(export_pt2(run, tmp_path / "m.pt2").path))
    main = sum(p.numel() for block_id in run.model.main_path
               for p in run.model.blocks[block_id].parameters())
    assert sum(p.numel() for p in program.parameters()) == main
    assert main < sum(p.numel() for p in run.model.parameters())


def test_export_run_writes_pt2_and_refuses_to_replace_without_overwrite(tmp_path):
    run_dir = make_run(tmp_path / "run", "lenet5")
    out = tmp_path / "lenet.pt2"
    assert export_run(run_dir, "PT2", out).format == "pt2"
    with pytest.raises(ExportError, match="already exists"):
        export_run(run_dir, "pt2", out)


def test_a_network_torch_export_cannot_record_is_a_clear_error(tmp_path, monkeypatch):
    run = load_run(make_run(tmp_path / "run", "keras-mnist"))

    def refuse(*_args, **_kwargs):
        raise RuntimeError("Dynamic control flow is not supported\nlong trace")

    monkeypatch.setattr(torch.export, "export", refuse)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    with pytest.raises(ExportError, match="cannot save this network as an ExportedProgram "
                                          r"\(RuntimeError: Dynamic control flow.*ONNX"):
        export_pt2(run, out_dir / "m.pt2")
    assert list(out_dir.iterdir()) == []
