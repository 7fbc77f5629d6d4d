"""Transfer learning: weights from a run or from torchvision, block by block; freezing."""

from __future__ import annotations

import urllib.error
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import EventKind, Graph, GraphError
from cnnstudio.core.project import Project, save_project
from cnnstudio.core.templates import build_template
from cnnstudio.nn.build import GraphModel, build_model
from cnnstudio.train.transfer import (
    TORCHVISION_WEIGHTS,
    MatchReport,
    TransferError,
    freeze_all_but_last,
    load_matching_weights,
    load_run_weights,
    load_torchvision_weights,
    set_trainable,
    torchvision_state_to_graph,
)

MNIST_WEIGHTED = ["conv1", "conv2", "conv3", "fc1", "fc2"]
IMAGENET = (3, 224, 224)


def randomised(graph: Graph, seed: int = 0) -> GraphModel:
    """A model whose every tensor (buffers too) is random, so that copies are recognisable."""
    torch.manual_seed(seed)
    model = build_model(graph)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.normal_()
    return model


def save_run(folder: Path, graph: Graph, model: nn.Module) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), folder / "model.pt")
    save_project(Project.new(graph, template="keras-mnist"), folder / "project.cnnproj")
    return folder


def block_tensors(model: nn.Module, block_id: str) -> dict[str, torch.Tensor]:
    prefix = f"blocks.{block_id}."
    return {k[len(prefix):]: v for k, v in model.state_dict().items() if k.startswith(prefix)}


def assert_block_equal(a: nn.Module, a_id: str, b: nn.Module, b_id: str) -> None:
    first, second = block_tensors(a, a_id), block_tensors(b, b_id)
    assert first and first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), f"{a_id}.{name} differs from {b_id}"


def with_new_ids(graph: Graph, prefix: str) -> Graph:
    """The same network with every block id changed and every name kept."""
    other = Graph()
    new = {block.id: f"{prefix}{i}" for i, block in enumerate(graph.blocks)}
    for block in graph.blocks:
        copy = block.copy()
        copy.id = new[block.id]
        other.insert(copy)
    for edge in graph.edges:
        other.connect(new[edge.src], new[edge.dst], edge.port)
    return other


def of_type(graph: Graph, type_id: str) -> list[str]:
    order = graph.topological_order()[0]
    return [b for b in order if graph.block(b).type == type_id]


# -- runs ----------------------------------------------------------------------------------


def test_a_run_loads_into_the_same_network_with_100_classes_except_the_classifier(tmp_path):
    source_graph = build_template("keras-mnist")
    source = randomised(source_graph)
    run = save_run(tmp_path / "run", source_graph, source)
    target_graph = build_template("keras-mnist", classes=100)
    target = build_model(target_graph)
    fresh_fc2 = block_tensors(target, "fc2")
    fresh_fc2 = {k: v.clone() for k, v in fresh_fc2.items()}

    report = load_run_weights(target, run, target_graph)

    assert report.loaded == ["conv1", "conv2", "conv3", "fc1"]
    assert report.skipped == [("fc2", "shape 10×64 in the source, 100×64 here")]
    assert report.unused == []
    assert report.summary() == (
        "loaded 4 of 5 weighted blocks; not loaded: fc2 (shape 10×64 in the source, 100×64 here)"
    )
    for block_id in report.loaded:
        assert_block_equal(source, block_id, target, block_id)
    for name, tensor in block_tensors(target, "fc2").items():
        assert torch.equal(tensor, fresh_fc2[name])


def test_the_model_pt_path_itself_is_accepted_and_everything_loads_into_the_same_network(
    tmp_path,
):
    graph = build_template("keras-mnist")
    source = randomised(graph)
    run = save_run(tmp_path, graph, source)
    target = build_model(graph)
    report = load_run_weights(target, run / "model.pt", graph)
    assert report.loaded == MNIST_WEIGHTED and report.skipped == [] and report.unused == []
    assert report.summary() == "loaded 5 of 5 weighted blocks"
    x = torch.randn(2, 1, 28, 28)
    source.eval(), target.eval()
    assert torch.equal(source(x), target(x))
    assert all(p.requires_grad for p in target.parameters())


def test_blocks_match_by_name_when_ids_differ(tmp_path):
    source_graph = build_template("keras-mnist")
    source = randomised(source_graph)
    target_graph = with_new_ids(source_graph, "b")
    target = build_model(target_graph)

    report = load_matching_weights(target, source.state_dict(), source_graph, target_graph)

    names = {b.id: b.name for b in target_graph.blocks}
    assert [names[b] for b in report.loaded] == MNIST_WEIGHTED
    assert report.skipped == [] and report.unused == []
    for block_id in report.loaded:
        assert_block_equal(source, names[block_id], target, block_id)

    # Through a run folder the names come from project.cnnproj.
    run = save_run(tmp_path, source_graph, source)
    assert len(load_run_weights(build_model(target_graph), run, target_graph).loaded) == 5


def test_without_the_source_graph_different_ids_match_nothing():
    source_graph = build_template("keras-mnist")
    source = randomised(source_graph)
    target_graph = with_new_ids(source_graph, "b")
    report = load_matching_weights(build_model(target_graph), source.state_dict(), None,
                                   target_graph)
    assert report.loaded == []
    assert {reason for _, reason in report.skipped} == {
        "no block with this id or name in the source"
    }
    assert report.unused == MNIST_WEIGHTED
    assert "not used from the source: conv1, conv2, conv3, fc1, fc2" in report.summary()


def test_a_conv_with_other_filters_is_skipped_and_so_is_the_conv_after_it():
    source_graph = build_template("keras-mnist")
    source = randomised(source_graph)
    target_graph = build_template("keras-mnist")
    target_graph.set_params("conv2", {"filters": 32})
    target = build_model(target_graph)

    report = load_matching_weights(target, source.state_dict(), source_graph, target_graph)

    assert report.loaded == ["conv1", "fc1", "fc2"]
    assert report.skipped == [
        ("conv2", "shape 64×32×3×3 in the source, 32×32×3×3 here"),
        ("conv3", "shape 64×64×3×3 in the source, 64×32×3×3 here"),
    ]
    assert "loaded 3 of 5 weighted blocks" in report.summary()


def batchnorm_graph(channels: int, conv_id: str = "conv2d_1", dense_id: str = "fc") -> Graph:
    """Input → Conv2D → BatchNorm → Flatten → Dense (3) → Output on 1×8×8 images."""
    graph = Graph()
    graph.add_block("Input", {"channels": 1, "height": 8, "width": 8}, block_id="input")
    graph.add_block("Conv2D", {"filters": channels, "kernel": [3, 3]}, name="conv",
                    block_id=conv_id)
    graph.add_block("BatchNorm", {}, name="bn", block_id="bn_1")
    graph.add_block("Flatten", {}, name="flat", block_id="flat")
    graph.add_block("Dense", {"units": 3}, name="fc", block_id=dense_id)
    graph.add_block("Output", {}, block_id="output")
    for src, dst in zip(["input", conv_id, "bn_1", "flat", dense_id],
                        [conv_id, "bn_1", "flat", dense_id, "output"]):
        graph.connect(src, dst)
    return graph


def test_batchnorm_running_statistics_are_copied_and_wrong_types_or_tensors_are_skipped():
    source_graph = batchnorm_graph(4)
    source = randomised(source_graph)
    source.blocks["bn_1"].bn.num_batches_tracked.fill_(7)
    target_graph = batchnorm_graph(4)
    target = build_model(target_graph)
    report = load_matching_weights(target, source.state_dict(), source_graph, target_graph)
    assert report.loaded == ["conv2d_1", "bn_1", "fc"]
    assert_block_equal(source, "bn_1", target, "bn_1")
    assert target.blocks["bn_1"].bn.running_var.equal(source.blocks["bn_1"].bn.running_var)

    narrower = batchnorm_graph(2)
    report = load_matching_weights(build_model(narrower), source.state_dict(), source_graph,
                                   narrower)
    assert dict(report.skipped)["bn_1"] == "shape 4 in the source, 2 here"

    no_bias = batchnorm_graph(4)
    no_bias.set_params("conv2d_1", {"bias": False})
    report = load_matching_weights(build_model(no_bias), source.state_dict(), source_graph,
                                   no_bias)
    assert dict(report.skipped)["conv2d_1"] == "different tensors: conv.bias only in the source"

    # The source's Dense block 'fc' meets a Conv2D block with the id 'fc' here.
    clash = batchnorm_graph(4, conv_id="fc", dense_id="dense_1")
    report = load_matching_weights(build_model(clash), source.state_dict(), source_graph, clash)
    assert dict(report.skipped)["fc"] == "Dense in the source, Conv2D here"
    assert dict(report.skipped)["dense_1"] == "no block with this id or name in the source"


def test_summary_lists_at_most_eight_blocks():
    report = MatchReport(loaded=["a"], skipped=[(f"b{i}", "why") for i in range(10)],
                         unused=[f"u{i}" for i in range(9)])
    first, second = report.summary().splitlines()
    assert first.startswith("loaded 1 of 11 weighted blocks; not loaded: b0 (why); ")
    assert first.endswith("b7 (why); and 2 more")
    assert second.endswith("u7, and 1 more")


def test_unreadable_runs_raise_a_transfer_error_naming_the_file(tmp_path):
    graph = build_template("keras-mnist")
    model = build_model(graph)

    with pytest.raises(TransferError, match="holds no model.pt"):
        load_run_weights(model, tmp_path, graph)

    (tmp_path / "model.pt").write_bytes(b"not a torch file at all")
    with pytest.raises(TransferError, match="model.pt'.*damaged or truncated"):
        load_run_weights(model, tmp_path, graph)

    torch.save({"weights": Path("x")}, tmp_path / "model.pt")
    with pytest.raises(TransferError, match="Python objects besides tensors"):
        load_run_weights(model, tmp_path, graph)

    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "model.pt")
    with pytest.raises(TransferError, match="holds no CNN Studio weights"):
        load_run_weights(model, tmp_path, graph)

    torch.save([1, 2, 3], tmp_path / "model.pt")
    with pytest.raises(TransferError, match="holds no state dict"):
        load_run_weights(model, tmp_path, graph)

    torch.save(randomised(graph).state_dict(), tmp_path / "model.pt")
    (tmp_path / "project.cnnproj").write_text("{ broken", encoding="utf-8")
    with pytest.raises(TransferError, match="project.cnnproj") as caught:
        load_run_weights(model, tmp_path, graph)
    assert "repair or remove" in str(caught.value)

    with pytest.raises(TransferError, match="does not exist"):
        load_run_weights(model, tmp_path / "missing.pt", graph)


def test_a_checkpoint_with_the_state_dict_nested_under_model_is_accepted(tmp_path):
    graph = build_template("keras-mnist")
    source = randomised(graph)
    torch.save({"model": source.state_dict(), "epoch": 3}, tmp_path / "checkpoint.pt")
    report = load_run_weights(build_model(graph), tmp_path / "checkpoint.pt", graph)
    assert report.loaded == MNIST_WEIGHTED


# -- torchvision ---------------------------------------------------------------------------


def test_the_weight_table_holds_torchvisions_own_file_names_and_urls():
    enums = {
        "alexnet": torchvision.models.AlexNet_Weights.IMAGENET1K_V1,
        "vgg11": torchvision.models.VGG11_Weights.IMAGENET1K_V1,
        "vgg16": torchvision.models.VGG16_Weights.IMAGENET1K_V1,
        "resnet18": torchvision.models.ResNet18_Weights.IMAGENET1K_V1,
        "resnet50": torchvision.models.ResNet50_Weights.IMAGENET1K_V1,
        "mobilenet-v2": torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1,
        "squeezenet1.1": torchvision.models.SqueezeNet1_1_Weights.IMAGENET1K_V1,
        "vgg11-bn": torchvision.models.VGG11_BN_Weights.IMAGENET1K_V1,
    }
    assert TORCHVISION_WEIGHTS.keys() == enums.keys()
    for template_id, (file_name, url) in TORCHVISION_WEIGHTS.items():
        assert url == enums[template_id].url
        assert url == f"https://download.pytorch.org/models/{file_name}"


@pytest.fixture(scope="module")
def alexnet_file(tmp_path_factory) -> tuple[Path, nn.Module]:
    torch.manual_seed(1)
    model = torchvision.models.alexnet(weights=None).eval()
    path = tmp_path_factory.mktemp("tv") / "alexnet-owt-7be5be79.pth"
    torch.save(model.state_dict(), path)
    return path, model


def assert_matches_torchvision(ours: GraphModel, graph: Graph, theirs: nn.Module) -> None:
    pairs = [
        (ours.blocks[b].conv, m)
        for b, m in zip(of_type(graph, "Conv2D"), [m for m in theirs.modules()
                                                   if isinstance(m, nn.Conv2d)], strict=True)
    ] + [
        (ours.blocks[b].linear, m)
        for b, m in zip(of_type(graph, "Dense"), [m for m in theirs.modules()
                                                  if isinstance(m, nn.Linear)], strict=True)
    ]
    for mine, torchvisions in pairs:
        assert torch.equal(mine.weight, torchvisions.weight)
        assert torch.equal(mine.bias, torchvisions.bias)


def test_alexnet_weights_load_exactly_and_give_torchvisions_outputs(alexnet_file):
    path, tv_model = alexnet_file
    graph = build_template("alexnet", IMAGENET, 1000)
    model = build_model(graph)
    report = load_torchvision_weights(model, "alexnet", graph, path=path)
    assert report.loaded == of_type(graph, "Conv2D") + of_type(graph, "Dense")
    assert report.skipped == [] and report.unused == []
    assert_matches_torchvision(model, graph, tv_model)

    model.eval()
    x = torch.randn(1, *IMAGENET, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(model(x), tv_model(x), atol=1e-4, rtol=1e-4)


def test_with_10_classes_every_alexnet_block_but_the_last_dense_loads(alexnet_file, tmp_path):
    path, _ = alexnet_file
    graph = build_template("alexnet", IMAGENET, 10)
    model = build_model(graph)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / path.name).symlink_to(path)
    report = load_torchvision_weights(model, "alexnet", graph, cache_dir=cache)
    assert report.loaded == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert report.skipped == [("fc8", "shape 1000×4096 in the source, 10×4096 here")]

    # The same file offered for VGG-16 is refused before anything loads.
    with pytest.raises(TransferError, match="not its ImageNet weights.*vgg16-397923af.pth"):
        load_torchvision_weights(model, "vgg16", graph, path=path)


def test_vgg11_weights_map_onto_the_template_exactly():
    torch.manual_seed(2)
    tv_model = torchvision.models.vgg11(weights=None)
    graph = build_template("vgg11", IMAGENET, 1000)
    with torch.device("meta"):  # skips initialising 133 M values that are overwritten anyway
        model = build_model(graph)
    model = model.to_empty(device="cpu")
    mapped = torchvision_state_to_graph("vgg11", tv_model.state_dict(), graph)
    assert mapped.keys() == model.state_dict().keys()
    report = load_matching_weights(model, mapped, None, graph)
    assert len(report.loaded) == 11 and report.skipped == []
    assert_matches_torchvision(model, graph, tv_model)


def test_vgg16_keys_and_shapes_map_onto_the_template_on_the_meta_device():
    graph = build_template("vgg16", IMAGENET, 1000)
    with torch.device("meta"):
        tv_state = torchvision.models.vgg16().state_dict()
        model = build_model(graph)
    mapped = torchvision_state_to_graph("vgg16", tv_state, graph)
    ours = model.state_dict()
    assert mapped.keys() == ours.keys()
    assert all(mapped[k].shape == ours[k].shape for k in ours)
    assert mapped["blocks.conv1_1.conv.weight"] is tv_state["features.0.weight"]
    assert mapped["blocks.conv5_3.conv.bias"] is tv_state["features.28.bias"]
    assert mapped["blocks.fc6.linear.weight"] is tv_state["classifier.0.weight"]
    assert mapped["blocks.fc8.linear.weight"] is tv_state["classifier.6.weight"]
    assert len(load_matching_weights(model, mapped, None, graph).loaded) == 16

    # A smaller image changes the first Dense layer's input: it alone is skipped (and fc8).
    small = build_template("vgg16", (3, 96, 96), 10)
    with torch.device("meta"):
        small_model = build_model(small)
    report = load_matching_weights(small_model, torchvision_state_to_graph("vgg16", tv_state,
                                                                           small), None, small)
    assert [b for b, _ in report.skipped] == ["fc6", "fc8"]
    assert dict(report.skipped)["fc6"] == "shape 4096×25088 in the source, 4096×4608 here"


def test_small_images_load_what_fits_and_extra_blocks_have_no_counterpart(alexnet_file):
    graph = build_template("alexnet", (3, 32, 32), 10)
    edge = next(e for e in graph.edges if e.src == "conv1")
    graph.disconnect(edge)
    graph.add_block("BatchNorm", {}, name="bn1", block_id="bn1")
    graph.connect("conv1", "bn1")
    graph.connect("bn1", edge.dst)
    report = load_torchvision_weights(build_model(graph), "alexnet", graph, path=alexnet_file[0])
    assert report.loaded == ["conv2", "conv3", "conv4", "conv5"]
    assert dict(report.skipped)["bn1"] == "no counterpart in torchvision's alexnet"
    assert dict(report.skipped)["conv1"] == "shape 64×3×11×11 in the source, 64×3×3×3 here"


@pytest.fixture
def small_alexnet() -> tuple[Graph, GraphModel]:
    graph = build_template("alexnet", (3, 32, 32), 10)
    return graph, build_model(graph)


def test_without_a_file_or_a_download_the_error_says_what_to_get_and_where(
    small_alexnet, tmp_path
):
    graph, model = small_alexnet
    with pytest.raises(TransferError) as caught:
        load_torchvision_weights(model, "vgg16", graph, cache_dir=tmp_path)
    message = str(caught.value)
    assert "vgg16-397923af.pth" in message
    assert "download https://download.pytorch.org/models/vgg16-397923af.pth" in message
    assert "pass it with --weights" in message and str(tmp_path) in message


def test_a_failed_download_says_the_same(small_alexnet, tmp_path, monkeypatch):
    graph, model = small_alexnet

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(TransferError, match="cannot download vgg11-8a719046.pth") as caught:
        load_torchvision_weights(model, "vgg11", graph, download=True, cache_dir=tmp_path)
    assert "https://download.pytorch.org/models/vgg11-8a719046.pth" in str(caught.value)


def test_corrupt_or_missing_pth_files_and_unknown_templates_raise_transfer_errors(
    small_alexnet, tmp_path, alexnet_file
):
    graph, model = small_alexnet
    broken = tmp_path / "broken.pth"
    broken.write_bytes(alexnet_file[0].read_bytes()[:4096])
    with pytest.raises(TransferError, match="broken.pth'.*damaged or truncated"):
        load_torchvision_weights(model, "alexnet", graph, path=broken)
    with pytest.raises(TransferError, match="does not exist"):
        load_torchvision_weights(model, "alexnet", graph, path=tmp_path / "nowhere.pth")
    with pytest.raises(TransferError, match="alexnet, vgg11, vgg16"):
        load_torchvision_weights(model, "resnet34", graph, path=broken)
    with pytest.raises(TransferError, match="alexnet, vgg11, vgg16"):
        torchvision_state_to_graph("lenet5", {}, graph)


# -- freezing ------------------------------------------------------------------------------


def test_freeze_all_but_last_keeps_only_the_classifier_trainable():
    graph = build_template("keras-mnist")
    total = analyze(graph).total_params
    assert analyze(graph).trainable_params == total

    assert freeze_all_but_last(graph) == ["conv1", "conv2", "conv3", "fc1"]
    assert analyze(graph).trainable_params == 64 * 10 + 10
    assert analyze(graph).total_params == total
    assert all("trainable" not in b.params for b in graph.blocks
               if b.type in ("Pooling", "Flatten", "Input", "Output"))
    model = build_model(graph)
    for name, parameter in model.named_parameters():
        assert parameter.requires_grad == name.startswith("blocks.fc2."), name

    assert freeze_all_but_last(graph) == []
    assert freeze_all_but_last(graph, n_dense=2) == ["fc1"]
    assert freeze_all_but_last(graph, n_dense=5) == []
    assert freeze_all_but_last(graph, n_dense=0) == ["fc1", "fc2"]
    assert analyze(graph).trainable_params == 0
    with pytest.raises(ValueError):
        freeze_all_but_last(graph, n_dense=-1)


def test_freeze_all_but_last_ignores_auxiliary_heads():
    graph = build_template("googlenet")
    freeze_all_but_last(graph)
    trainable = [b.id for b in graph.blocks if b.params.get("trainable") is True]
    assert trainable == ["loss3_classifier"]


def test_set_trainable_by_ids_or_predicate_changes_only_blocks_with_the_switch():
    graph = build_template("keras-mnist")
    assert set_trainable(graph, ["conv1", "pool1", "flatten"], False) == ["conv1"]
    assert set_trainable(graph, "conv1", False) == []
    frozen = analyze(graph).trainable_params
    assert frozen == analyze(graph).total_params - (32 * 9 + 32)

    with pytest.raises(GraphError):
        set_trainable(graph, ["conv2", "no_such_block"], False)
    assert graph.block("conv2").params["trainable"] is True

    assert set_trainable(graph, lambda block: block.type == "Conv2D", False) == ["conv2", "conv3"]
    assert set_trainable(graph, lambda block: True, True) == ["conv1", "conv2", "conv3"]
    assert all(p.requires_grad for p in build_model(graph).parameters())
    events = []
    graph.subscribe(events.append)
    set_trainable(graph, ["fc1"], False)
    assert [(e.kind, e.block_id) for e in events] == [(EventKind.PARAMS_CHANGED, "fc1")]
