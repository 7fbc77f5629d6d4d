"""torchvision's own models, randomly initialised, against the templates built after them:
the same counts, every weight mapped by name, the same outputs. Nothing is downloaded."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.templates import build_template
from cnnstudio.nn.build import GraphModel, build_model
from cnnstudio.nn.module_weights import graph_state_from_module_state
from cnnstudio.train.transfer import (
    TORCHVISION_WEIGHTS,
    TransferError,
    load_matching_weights,
    load_torchvision_weights,
    torchvision_state_to_graph,
)

# template id -> (torchvision builder, weights enum)
MODELS = {
    "resnet18": ("resnet18", torchvision.models.ResNet18_Weights),
    "resnet50": ("resnet50", torchvision.models.ResNet50_Weights),
    "mobilenet-v2": ("mobilenet_v2", torchvision.models.MobileNet_V2_Weights),
    "squeezenet1.1": ("squeezenet1_1", torchvision.models.SqueezeNet1_1_Weights),
    "vgg11-bn": ("vgg11_bn", torchvision.models.VGG11_BN_Weights),
}
IMAGENET = (3, 224, 224)


def torchvision_model(template_id: str, seed: int = 0) -> nn.Module:
    """torchvision's model in eval mode, with random BatchNorm statistics as well, so that a
    statistic left behind would change the outputs."""
    torch.manual_seed(seed)
    model = getattr(torchvision.models, MODELS[template_id][0])(weights=None).eval()
    with torch.no_grad():
        for key, tensor in model.state_dict().items():
            if key.endswith("running_mean"):
                tensor.normal_(0.0, 0.1)
            elif key.endswith("running_var"):
                tensor.uniform_(0.5, 2.0)
    return model


def weighted_ids(graph: Graph) -> list[str]:
    return [b.id for b in graph.blocks if b.type in ("Conv2D", "BatchNorm", "Dense")]


def assert_same_outputs(ours: GraphModel, theirs: nn.Module, shape: tuple[int, ...]) -> None:
    x = torch.randn(2, *shape, generator=torch.Generator().manual_seed(1))
    ours.eval()
    with torch.no_grad():
        expected = theirs(x)
        torch.testing.assert_close(ours(x), expected, atol=1e-5, rtol=1e-5)
    assert expected.abs().max() > 0.1  # not a network that outputs (almost) nothing


@pytest.mark.parametrize("template_id", list(MODELS))
def test_copied_torchvision_weights_give_torchvisions_outputs(template_id):
    theirs = torchvision_model(template_id)
    graph = build_template(template_id)
    named = graph_state_from_module_state(theirs.state_dict(), graph)
    assert named.unmatched_modules == [] and named.unmatched_blocks == []
    with torch.device("meta"):  # no initialisation of values that are all overwritten
        ours = build_model(graph)
    ours = ours.to_empty(device="cpu")
    report = load_matching_weights(ours, named.state, None, graph)
    assert report.loaded == weighted_ids(graph)
    assert report.skipped == [] and report.unused == []
    assert_same_outputs(ours, theirs, IMAGENET)


@pytest.mark.parametrize("template_id", list(MODELS))
def test_counts_and_weight_files_are_torchvisions(template_id):
    weights = MODELS[template_id][1].IMAGENET1K_V1
    analysis = analyze(build_template(template_id))
    assert analysis.learnable_params == weights.meta["num_params"]
    assert round(analysis.macs / 1e9, 3) == weights.meta["_ops"]
    file_name, url = TORCHVISION_WEIGHTS[template_id]
    assert url == weights.url == f"https://download.pytorch.org/models/{file_name}"


def test_squeezenet_pools_round_up_as_torchvision_does():
    """At 50×50 every pooling of SqueezeNet 1.1 rounds up (24 → 12 → 6 → 3)."""
    theirs = torchvision_model("squeezenet1.1")
    graph = build_template("squeezenet1.1", (3, 50, 50), 1000)
    ours = build_model(graph)
    load_matching_weights(ours, torchvision_state_to_graph("squeezenet1.1",
                                                           theirs.state_dict(), graph),
                          None, graph)
    assert_same_outputs(ours, theirs, (3, 50, 50))


@pytest.mark.parametrize("template_id", ["resnet18", "mobilenet-v2", "squeezenet1.1"])
def test_a_saved_torchvision_file_loads_every_block_by_name(template_id, tmp_path):
    theirs = torchvision_model(template_id, seed=3)
    file_name = TORCHVISION_WEIGHTS[template_id][0]
    path = tmp_path / file_name
    torch.save(theirs.state_dict(), path)
    graph = build_template(template_id)
    ours = build_model(graph)
    report = load_torchvision_weights(ours, template_id, graph, path=path)
    assert report.loaded == weighted_ids(graph)
    assert report.skipped == [] and report.unused == []
    assert [block_id for _, block_id in report.mapping] == weighted_ids(graph)
    assert all(graph.find(path_).id == block_id for path_, block_id in report.mapping)
    assert "loaded" in report.summary()
    assert_same_outputs(ours, theirs, IMAGENET)


def test_batchnorm_running_statistics_load_too(tmp_path):
    theirs = torchvision_model("resnet18", seed=4)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(theirs.state_dict(), path)
    graph = build_template("resnet18")
    ours = build_model(graph)
    load_torchvision_weights(ours, "resnet18", graph, path=path)
    mine = ours.blocks["layer3_1_bn2"].bn
    torchvisions = theirs.layer3[1].bn2
    assert torch.equal(mine.running_mean, torchvisions.running_mean)
    assert torch.equal(mine.running_var, torchvisions.running_var)
    assert torch.equal(mine.weight, torchvisions.weight)


def test_at_cifar_size_only_the_class_layer_starts_fresh(tmp_path):
    theirs = torchvision_model("resnet18", seed=5)
    path = tmp_path / "resnet18-f37072fd.pth"
    torch.save(theirs.state_dict(), path)
    graph = build_template("resnet18", (3, 32, 32), 10)
    report = load_torchvision_weights(build_model(graph), "resnet18", graph, path=path)
    assert report.skipped == [("fc", "shape 1000×512 in the source, 10×512 here")]
    assert report.loaded == [b for b in weighted_ids(graph) if b != "fc"]

    grey = build_template("resnet18", (1, 28, 28), 10)
    report = load_torchvision_weights(build_model(grey), "resnet18", grey, path=path)
    assert [b for b, _ in report.skipped] == ["conv1", "fc"]


def test_vgg11_bn_classifier_loads_at_32x32_thanks_to_the_adaptive_pooling():
    graph = build_template("vgg11-bn", (3, 32, 32), 10)
    with torch.device("meta"):
        state = getattr(torchvision.models, "vgg11_bn")().state_dict()
        model = build_model(graph)
    report = load_matching_weights(model, torchvision_state_to_graph("vgg11-bn", state, graph),
                                   None, graph)
    assert [b for b, _ in report.skipped] == ["classifier_6"]
    assert "classifier_0" in report.loaded and "classifier_3" in report.loaded


def test_a_renamed_block_is_reported_and_its_module_left_unused(tmp_path):
    path = tmp_path / "squeezenet1_1-b8a52dc0.pth"
    torch.save(torchvision_model("squeezenet1.1").state_dict(), path)
    graph = build_template("squeezenet1.1")
    graph.rename("classifier_1", "my classifier")
    report = load_torchvision_weights(build_model(graph), "squeezenet1.1", graph, path=path)
    assert report.skipped == [("classifier_1", "no counterpart in torchvision's squeezenet1.1")]
    assert report.unused == ["classifier.1"]
    assert len(report.loaded) == 25


def test_the_wrong_models_weights_are_refused_with_the_file_to_get():
    graph = build_template("resnet50")
    with torch.device("meta"):
        resnet18 = torchvision.models.resnet18().state_dict()
    with pytest.raises(TransferError) as caught:
        torchvision_state_to_graph("resnet50", resnet18, graph)
    message = str(caught.value)
    assert "lacks layer1.0.bn3, layer1.0.conv3, layer1.0.downsample.0 and" in message
    assert "not torchvision's resnet50 ImageNet weights (expected resnet50-0676ba61.pth)" in message


@pytest.mark.parametrize("template_id", list(MODELS))
def test_without_the_file_the_message_says_which_file_and_where(template_id, tmp_path):
    graph = build_template(template_id, (3, 32, 32), 10)
    with torch.device("meta"):
        model = build_model(graph)
    file_name, url = TORCHVISION_WEIGHTS[template_id]
    with pytest.raises(TransferError) as caught:
        load_torchvision_weights(model, template_id, graph, cache_dir=tmp_path)
    message = str(caught.value)
    assert f"({file_name}) are not in {tmp_path}" in message
    assert f"download {url} and pass it with --weights, or put it in {tmp_path}/" in message


def test_a_file_in_the_cache_folder_is_found(tmp_path):
    theirs = torchvision_model("squeezenet1.1")
    torch.save(theirs.state_dict(), tmp_path / "squeezenet1_1-b8a52dc0.pth")
    graph = build_template("squeezenet1.1", (3, 64, 64), 5)
    report = load_torchvision_weights(build_model(graph), "squeezenet1.1", graph,
                                      cache_dir=tmp_path)
    assert report.skipped == [("classifier_1", "shape 1000×512×1×1 in the source, 5×512×1×1 "
                                               "here")]
    assert ("classifier.1", "classifier_1") in report.mapping
