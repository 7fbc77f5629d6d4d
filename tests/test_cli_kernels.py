"""`cnnstudio kernels`: a run's learned kernels as number grids, and a block's feature maps for an
image as a PNG grid, through the real command line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnstudio.cli import main
from cnnstudio.resources import resource_path
from cnnstudio.train import learned_kernels as lk
from tests.nn.test_export import make_run
from tests.torch_threads import one_torch_thread  # noqa: F401 (autouse fixture)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    return make_run(tmp_path_factory.mktemp("kernels") / "run", "keras-mnist")


def cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_without_a_block_it_lists_the_convolutions(capsys, run_dir):
    code, out, _ = cli(capsys, "kernels", run_dir)
    assert code == 0
    assert "conv1: 32 filters of 3×3 over 1 input channel, stride 1, padding valid, ReLU" in out
    assert "conv2: 64 filters of 3×3 over 32 input channels" in out
    assert out.rstrip().endswith("Show one with --block NAME.")


def test_a_filters_numbers_are_its_weights_and_bias(capsys, run_dir):
    code, out, _ = cli(capsys, "kernels", run_dir, "--block", "conv2", "--filter", "7")
    assert code == 0
    layer = lk.open_run(run_dir).model.blocks["conv2"].conv
    weight = layer.weight.detach().double().numpy()[7]
    lines = out.splitlines()
    assert lines[1] == "Activation after the bias: ReLU"
    assert lines[3].startswith("filter 7  (bias ") and lines[3].endswith(")")
    printed_bias = float(lines[3][len("filter 7  (bias "):-1].replace("−", "-"))
    assert printed_bias == pytest.approx(float(layer.bias.detach()[7]), abs=5e-5)
    for channel in (0, 31):
        start = lines.index(f"  input channel {channel}:")
        printed = [[float(v.replace("−", "-")) for v in line.split()]
                   for line in lines[start + 1:start + 4]]
        np.testing.assert_allclose(printed, weight[channel], atol=5e-5)
    assert "filter 8" not in out


def test_a_block_is_found_by_its_id_too_and_every_filter_is_printed(capsys, run_dir):
    code, out, _ = cli(capsys, "kernels", run_dir, "--block", "conv1")
    assert code == 0 and out.count("\nfilter ") == 32


def test_apply_writes_the_blocks_feature_maps_as_a_png(capsys, run_dir, tmp_path):
    photo = resource_path("samples", "camera.png")
    out_png = tmp_path / "maps.png"
    code, out, _ = cli(capsys, "kernels", run_dir, "--block", "conv1", "--apply", photo,
                       "--out", out_png)
    assert code == 0 and "conv1's feature maps (32 filters, 26×26 each, after ReLU)" in out
    network = lk.open_run(run_dir)
    maps = lk.block_output(network, "conv1", lk.network_image(network, photo))
    picture = np.asarray(Image.open(out_png))
    np.testing.assert_array_equal(picture, lk.maps_picture(maps))
    code, _, err = cli(capsys, "kernels", run_dir, "--block", "conv1", "--apply", photo,
                       "--out", out_png)
    assert code == 2 and "already exists" in err and "(add --force)" in err
    code, out, _ = cli(capsys, "kernels", run_dir, "--block", "conv1", "--filter", "3",
                       "--apply", photo, "--out", out_png, "--force")
    assert code == 0 and "(filter 3, 26×26 each" in out
    assert np.asarray(Image.open(out_png)).shape == lk.maps_picture(maps[3:4]).shape


@pytest.mark.parametrize("args, message", [
    (("--block", "dense"), "the network has no Conv2D block 'dense'; its convolutions: conv1, "
                           "conv2, conv3"),
    (("--block", "conv1", "--filter", "32"), "conv1 has 32 filters, numbered 0 to 31; got "
                                             "--filter 32"),
    (("--block", "conv1", "--apply", "x.png"), "--apply writes a PNG: add --out MAPS.png"),
    (("--block", "conv1", "--out", "x.png"), "--out goes with --apply IMAGE"),
    (("--filter", "2",), "name the block with --block"),
])
def test_wrong_options_say_what_to_do(capsys, run_dir, args, message):
    code, out, err = cli(capsys, "kernels", run_dir, *args)
    assert code == 2 and message in err and "Traceback" not in err + out


def test_a_missing_run_and_an_unreadable_image_are_messages(capsys, run_dir, tmp_path):
    code, _, err = cli(capsys, "kernels", tmp_path / "nowhere")
    assert code != 0 and "cannot open the run" in err and "does not exist" in err
    bad = tmp_path / "bad.png"
    bad.write_text("not an image")
    code, _, err = cli(capsys, "kernels", run_dir, "--block", "conv1", "--apply", bad,
                       "--out", tmp_path / "maps.png")
    assert code != 0 and "cannot read 'bad.png' as an image" in err
    assert not (tmp_path / "maps.png").exists()


def test_a_folder_as_out_is_refused(capsys, run_dir, tmp_path):
    photo = resource_path("samples", "camera.png")
    code, _, err = cli(capsys, "kernels", run_dir, "--block", "conv1", "--apply", photo,
                       "--out", tmp_path, "--force")
    assert code == 2 and "it is a folder" in err
