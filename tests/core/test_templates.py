"""Templates: every network analyses cleanly at several sizes and matches its paper's numbers."""

from __future__ import annotations

import itertools

import pytest

from cnnstudio.core.analysis import Analysis, analyze
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.layout import STEP_X, STEP_Y
from cnnstudio.core.module_layout import module_box, tidy_layout
from cnnstudio.core.templates import (
    TEMPLATES,
    Template,
    UnknownTemplate,
    build_template,
    get_template,
    torchvision_nets,
)

IDS = [
    "lenet5",
    "keras-mnist",
    "course-example",
    "alexnet",
    "vgg11",
    "vgg16",
    "googlenet",
    "inception-small",
    "inception-v3-module",
    "resnet18",
    "resnet50",
    "mobilenet-v2",
    "squeezenet1.1",
    "vgg11-bn",
]
SIZES = ["default", (1, 28, 28), (3, 32, 32)]
LAID_OUT = {template.id for template in torchvision_nets.TEMPLATES}  # by core.layout
CASES = list(itertools.product(IDS, SIZES))


def _case_id(value: object) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def build(template_id: str, size: object = "default", classes: int | None = None) -> Graph:
    """At the template's default size and classes, or at `size` with 10 classes."""
    if size == "default":
        return build_template(template_id, classes=classes)
    assert isinstance(size, tuple)
    return build_template(template_id, size, classes or 10)


def main_output(graph: Graph) -> Block:
    (block,) = [b for b in graph.blocks if b.type == "Output" and not b.params["auxiliary"]]
    return block


def shown_nodes(graph: Graph) -> dict[str, tuple[float, float]]:
    """What the canvas shows, by label: blocks outside collapsed modules and one card for each
    collapsed module, each at (x centre, y top)."""
    hidden = {b for m in graph.modules if m.collapsed for b in m.members.values()}
    shown = {b.label: (b.x, b.y) for b in graph.blocks if b.id not in hidden}
    for module in graph.modules:
        if module.collapsed:
            left, top, right, _bottom = module_box(graph, module)
            shown[f"module {module.name}"] = ((left + right) / 2, top)
    return shown


def class_layer(graph: Graph, output: Block) -> Block:
    """The layer with one unit per class: the Dense feeding the Output or, in SqueezeNet, the
    1×1 convolution behind the global pooling and the Flatten."""
    (source,) = graph.inputs_of(output.id)
    block = graph.block(source)
    while block.type in ("Flatten", "Pooling"):
        (source,) = graph.inputs_of(block.id)
        block = graph.block(source)
    return block


def class_count(block: Block) -> int:
    return block.params["units" if block.type == "Dense" else "filters"]


def shape(graph: Graph, analysis: Analysis, name: str) -> tuple[int, ...]:
    block = graph.find(name)
    assert block is not None, f"no block named {name!r}"
    return analysis.blocks[block.id].output_shape  # type: ignore[return-value]


def params_of(graph: Graph, analysis: Analysis, name: str) -> int:
    block = graph.find(name)
    assert block is not None, f"no block named {name!r}"
    return analysis.blocks[block.id].params


def conv_params(c_in: int, filters: int, kh: int, kw: int | None = None) -> int:
    return (kh * (kw or kh) * c_in + 1) * filters


# -- the registry ------------------------------------------------------------------------------


def test_templates_are_listed_in_the_documented_order():
    assert list(TEMPLATES) == IDS
    assert all(isinstance(t, Template) and t.id == key for key, t in TEMPLATES.items())


def test_unknown_template_names_the_available_ones():
    with pytest.raises(UnknownTemplate) as caught:
        get_template("resnet")
    assert isinstance(caught.value, KeyError)
    assert str(caught.value) == "unknown template 'resnet'; available: " + ", ".join(IDS)
    with pytest.raises(KeyError):
        build_template("nope")


def test_build_template_uses_the_template_defaults_and_accepts_lists():
    graph = build_template("lenet5")
    assert graph.blocks[0].params == {"channels": 1, "height": 32, "width": 32}
    graph = build_template("vgg11", [3, 64, 48], 5)
    assert graph.blocks[0].params == {"channels": 3, "height": 64, "width": 48}
    assert main_output_units(graph) == 5


@pytest.mark.parametrize("template_id", IDS)
def test_description_is_one_paragraph_with_the_default_parameter_count(template_id):
    template = get_template(template_id)
    assert template.title and "\n" not in template.description
    total = analyze(build(template_id)).total_params
    assert f"{total:,}" in template.description


# -- every template at every size ---------------------------------------------------------------


def main_output_units(graph: Graph) -> int:
    return analyze(graph).blocks[main_output(graph).id].input_shapes[0][0]


@pytest.mark.parametrize(("template_id", "size"), CASES, ids=_case_id)
def test_builds_without_any_diagnostic(template_id, size):
    graph = build(template_id, size)
    analysis = analyze(graph)
    assert [d.message for d in analysis.diagnostics] == []
    inputs = [b for b in graph.blocks if b.type == "Input"]
    assert len(inputs) == 1 and graph.blocks[0] is inputs[0]
    assert set(inputs[0].params) == {"channels", "height", "width"}
    classes = get_template(template_id).default_classes if size == "default" else 10
    assert main_output_units(graph) == classes
    assert main_output(graph).params["loss_weight"] > 0
    for block in graph.blocks:
        if not graph.output_edges(block.id):
            assert block.type == "Output", f"{block.label} ends a branch"
        if block.type == "Output":
            (source,) = graph.inputs_of(block.id)
            last = class_layer(graph, block)
            if last.type == "Conv2D":  # SqueezeNet: torchvision's ReLU before the pooling
                assert last.params["kernel"] == [1, 1] and template_id == "squeezenet1.1"
            else:
                assert last.type == "Dense" and last.params["activation"] == "none"
            assert class_count(last) == classes
            assert analysis.blocks[source].output_shape == (classes,)


@pytest.mark.parametrize(("template_id", "size"), CASES, ids=_case_id)
def test_blocks_have_distinct_ids_readable_names_and_a_readable_layout(template_id, size):
    graph = build(template_id, size)
    blocks = graph.blocks
    assert len({b.id for b in blocks}) == len(blocks)
    assert len({b.name for b in blocks}) == len(blocks)
    assert all(0 < len(b.name) <= 64 for b in blocks)
    assert (blocks[0].x, blocks[0].y) == (0.0, 0.0)
    if template_id in LAID_OUT or graph.modules:  # the layered layout may end half a column
        assert abs(main_output(graph).x) <= STEP_X / 2  # off centre
    else:
        assert main_output(graph).x == 0.0
    # what the canvas shows (blocks, and a card for each collapsed module) does not overlap
    # and runs downwards; inside each module, its blocks do too
    shown = shown_nodes(graph)
    for (a, (ax, ay)), (b, (bx, by)) in itertools.combinations(shown.items(), 2):
        assert abs(ax - bx) >= 80 or abs(ay - by) >= 80, f"{a} overlaps {b}"
    for module in graph.modules:
        inside = [graph.block(i) for i in module.members.values()]
        for a, b in itertools.combinations(inside, 2):
            assert abs(a.x - b.x) >= 80 or abs(a.y - b.y) >= 80, f"{a.label} overlaps {b.label}"
    node_of = {b: f"module {m.name}" for m in graph.modules if m.collapsed
               for b in m.members.values()}
    for edge in graph.edges:
        src, dst = graph.block(edge.src), graph.block(edge.dst)
        upper = node_of.get(edge.src, src.label)
        lower = node_of.get(edge.dst, dst.label)
        if upper == lower:  # a wire inside a module
            assert dst.y - src.y >= 110, f"{src.label} → {dst.label} does not run downwards"
        else:
            assert shown[lower][1] - shown[upper][1] >= 110, f"{upper} → {lower} runs upwards"
    if not any(b.type in ("Concatenate", "Add") for b in blocks):
        assert all(b.x == 0.0 for b in blocks), "a plain chain runs straight down at x = 0"


MODULE_TEMPLATES = ["googlenet", "inception-small", "inception-v3-module", "resnet18",
                    "resnet50", "mobilenet-v2"]


@pytest.mark.parametrize("template_id", MODULE_TEMPLATES)
def test_networks_of_collapsed_modules_open_compact(template_id):
    """Each card stands one row below what feeds it, as a block would: no long gaps where
    a module's blocks would stand expanded; the blocks inside keep the builder's order."""
    graph = build_template(template_id)
    assert graph.modules and all(m.collapsed for m in graph.modules)
    assert tidy_layout(graph) == {b.id: (b.x, b.y) for b in graph.blocks}  # laid out already
    shown = shown_nodes(graph)
    for module in graph.modules:
        inside = set(module.members.values())
        (source,) = {e.src for i in inside for e in graph.input_edges(i) if e.src not in inside}
        owner = graph.module_of(source)
        above = f"module {owner.name}" if owner else graph.block(source).label
        assert shown[f"module {module.name}"][1] - shown[above][1] == STEP_Y, module.name
    rows = {y for _x, y in shown.values()}
    assert max(rows) - min(rows) < STEP_Y * len(shown)


@pytest.mark.parametrize("template_id", IDS)
def test_changing_classes_changes_every_final_dense_layer(template_id):
    graph = build(template_id, "default", classes=7)
    finals = [class_layer(graph, b) for b in graph.blocks if b.type == "Output"]
    assert finals and all(class_count(block) == 7 for block in finals)
    assert not analyze(graph).diagnostics


@pytest.mark.parametrize("template_id", IDS)
@pytest.mark.parametrize("size", [(3, 20, 20), (1, 45, 45), (3, 63, 63), (3, 64, 64), (3, 95, 95),
                                  (3, 96, 96), (3, 150, 150), (3, 40, 100)], ids=_case_id)
def test_other_sizes_also_analyse_cleanly(template_id, size):
    assert [d.message for d in analyze(build(template_id, size)).diagnostics] == []


# -- the classics -------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "c1_padding"), [((1, 32, 32), "valid"), ((1, 28, 28), "same")])
def test_lenet5_has_61706_parameters_at_32_and_at_28(size, c1_padding):
    graph = build("lenet5", size)
    analysis = analyze(graph)
    assert analysis.total_params == 61_706
    assert graph.find("C1").params["padding"] == c1_padding
    assert graph.find("C1").params["activation"] == "tanh"
    assert graph.find("S2").params["mode"] == "average"
    assert analysis.blocks[graph.find("C5").id].input_shapes == ((16, 5, 5),)
    assert shape(graph, analysis, "C5") == (120, 1, 1)
    assert shape(graph, analysis, "F6") == (84,)


def test_lenet5_pads_c1_so_that_c5_sees_5x5_where_possible():
    graph = build("lenet5", (1, 30, 24))
    analysis = analyze(graph)
    assert graph.find("C1").params["padding"] == [1, 4]
    assert analysis.blocks[graph.find("C5").id].input_shapes == ((16, 5, 5),)


def test_keras_mnist_matches_the_book():
    graph = build("keras-mnist")
    analysis = analyze(graph)
    names = ["conv1", "pool1", "conv2", "pool2", "conv3", "flatten", "fc1", "fc2"]
    assert [shape(graph, analysis, n) for n in names] == [
        (32, 26, 26), (32, 13, 13), (64, 11, 11), (64, 5, 5), (64, 3, 3), (576,), (64,), (10,)
    ]
    assert analysis.total_params == 93_322


def test_course_example_matches_the_course_notes():
    graph = build("course-example")
    analysis = analyze(graph)
    expected = {
        "CONV1": ((16, 28, 28), 416),
        "POOL1": ((16, 14, 14), 0),
        "CONV2": ((32, 14, 14), 12_832),
        "POOL2": ((32, 7, 7), 0),
        "FLATTEN": ((1_568,), 0),
        "FC3": ((100,), 156_900),
        "FC4": ((10,), 1_010),
    }
    for name, (out, count) in expected.items():
        assert (shape(graph, analysis, name), params_of(graph, analysis, name)) == (out, count)
    assert analysis.total_params == 171_158


# -- torchvision's ImageNet networks -----------------------------------------------------------


def torchvision_count(name: str) -> int:
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("torchvision.models")
    with torch.device("meta"):
        model = getattr(models, name)(weights=None)
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize(("template_id", "expected", "features"), [
    ("alexnet", 61_100_840, (256, 6, 6)),
    ("vgg11", 132_863_336, (512, 7, 7)),
    ("vgg16", 138_357_544, (512, 7, 7)),
])
def test_imagenet_classics_match_torchvision_at_224(template_id, expected, features):
    graph = build(template_id)
    analysis = analyze(graph)
    assert analysis.total_params == expected == torchvision_count(template_id)
    assert shape(graph, analysis, "pool5") == features
    assert shape(graph, analysis, "fc6") == shape(graph, analysis, "fc7") == (4096,)


def test_alexnet_follows_torchvision_layer_by_layer():
    graph = build("alexnet")
    analysis = analyze(graph)
    conv1 = graph.find("conv1").params
    assert (conv1["kernel"], conv1["stride"], conv1["padding"]) == ([11, 11], [4, 4], [2, 2])
    assert [shape(graph, analysis, n) for n in ("conv1", "pool1", "conv2", "pool2", "conv5")] == [
        (64, 55, 55), (64, 27, 27), (192, 27, 27), (192, 13, 13), (256, 13, 13)
    ]
    types = [b.type for b in graph.blocks]
    assert types[9:] == ["Flatten", "Dropout", "Dense", "Dropout", "Dense", "Dense", "Output"]


@pytest.mark.parametrize("size", [(1, 28, 28), (3, 32, 32)], ids=_case_id)
def test_alexnet_small_variant_for_small_images(size):
    graph = build("alexnet", size)
    analysis = analyze(graph)
    conv1 = graph.find("conv1").params
    assert (conv1["kernel"], conv1["stride"]) == ([3, 3], [1, 1])
    assert shape(graph, analysis, "conv1")[1:] == size[1:]
    assert shape(graph, analysis, "fc6") == (1024,)
    assert "small variant" in get_template("alexnet").description


def test_vgg_layouts_are_torchvision_configurations_a_and_d():
    for template_id, convs in (("vgg11", 8), ("vgg16", 13)):
        graph = build(template_id)
        conv_blocks = [b for b in graph.blocks if b.type == "Conv2D"]
        assert len(conv_blocks) == convs
        assert all(b.params["kernel"] == [3, 3] and b.params["padding"] == "same"
                   and b.params["activation"] == "relu" for b in conv_blocks)
        tail = [b.type for b in graph.blocks][-7:]
        assert tail == ["Flatten", "Dense", "Dropout", "Dense", "Dropout", "Dense", "Output"]
        assert graph.find("conv5_2") is not None and graph.find("pool5") is not None


@pytest.mark.parametrize("template_id", ["vgg11", "vgg16"])
def test_vgg_on_cifar_uses_a_512_unit_classifier(template_id):
    graph = build(template_id, (3, 32, 32))
    analysis = analyze(graph)
    assert shape(graph, analysis, "pool5") == (512, 1, 1)
    assert shape(graph, analysis, "fc6") == shape(graph, analysis, "fc7") == (512,)
    assert graph.find("pool1").params["padding"] == "valid"
    assert "512 units" in get_template(template_id).description


@pytest.mark.parametrize("template_id", ["vgg11", "vgg16"])
def test_vgg_on_mnist_pools_with_same_padding(template_id):
    graph = build(template_id, (1, 28, 28))
    analysis = analyze(graph)
    pools = [b for b in graph.blocks if b.type == "Pooling"]
    assert len(pools) == 5 and all(b.params["padding"] == "same" for b in pools)
    assert [analysis.blocks[b.id].output_shape[1] for b in pools] == [14, 7, 4, 2, 1]
    assert "'same' padding" in get_template(template_id).description


# -- Inception ----------------------------------------------------------------------------------

GOOGLENET_STAGES = {
    "conv1/7x7_s2": (64, 112, 112),
    "pool1/3x3_s2": (64, 56, 56),
    "pool1/norm1": (64, 56, 56),
    "conv2/3x3_reduce": (64, 56, 56),
    "conv2/3x3": (192, 56, 56),
    "conv2/norm2": (192, 56, 56),
    "pool2/3x3_s2": (192, 28, 28),
    "inception_3a/output": (256, 28, 28),
    "inception_3b/output": (480, 28, 28),
    "pool3/3x3_s2": (480, 14, 14),
    "inception_4a/output": (512, 14, 14),
    "inception_4b/output": (512, 14, 14),
    "inception_4c/output": (512, 14, 14),
    "inception_4d/output": (528, 14, 14),
    "inception_4e/output": (832, 14, 14),
    "pool4/3x3_s2": (832, 7, 7),
    "inception_5a/output": (832, 7, 7),
    "inception_5b/output": (1024, 7, 7),
    "pool5/global_avg": (1024,),
    "loss3/classifier": (1000,),
    "loss1/ave_pool": (512, 4, 4),
    "loss1/conv": (128, 4, 4),
    "loss1/flatten": (2048,),
    "loss1/fc": (1024,),
    "loss2/ave_pool": (528, 4, 4),
    "loss2/classifier": (1000,),
}
# Table 1 of the paper: #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5, pool proj.
TABLE_1 = [
    ("3a", 192, (64, 96, 128, 16, 32, 32)),
    ("3b", 256, (128, 128, 192, 32, 96, 64)),
    ("4a", 480, (192, 96, 208, 16, 48, 64)),
    ("4b", 512, (160, 112, 224, 24, 64, 64)),
    ("4c", 512, (128, 128, 256, 24, 64, 64)),
    ("4d", 512, (112, 144, 288, 32, 64, 64)),
    ("4e", 528, (256, 160, 320, 32, 128, 128)),
    ("5a", 832, (256, 160, 320, 32, 128, 128)),
    ("5b", 832, (384, 192, 384, 48, 128, 128)),
]


def googlenet_count_from_the_paper(classes: int) -> int:
    """The main network (without auxiliary heads) counted by hand from table 1."""
    stem = conv_params(3, 64, 7) + conv_params(64, 64, 1) + conv_params(64, 192, 3)
    modules = 0
    for _, c_in, (n1, r3, n3, r5, n5, proj) in TABLE_1:
        modules += conv_params(c_in, n1, 1) + conv_params(c_in, r3, 1) + conv_params(r3, n3, 3)
        modules += conv_params(c_in, r5, 1) + conv_params(r5, n5, 5) + conv_params(c_in, proj, 1)
    return stem + modules + (1024 + 1) * classes


def aux_count(c_in: int, classes: int) -> int:
    return conv_params(c_in, 128, 1) + (2048 + 1) * 1024 + (1024 + 1) * classes


def test_googlenet_stages_match_table_1():
    graph = build("googlenet")
    analysis = analyze(graph)
    assert {name: shape(graph, analysis, name) for name in GOOGLENET_STAGES} == GOOGLENET_STAGES
    main = googlenet_count_from_the_paper(1000)
    assert analysis.total_params == main + aux_count(512, 1000) + aux_count(528, 1000)
    assert analysis.total_params == 13_378_280 and main == 6_998_552
    assert graph.find("pool5/drop").params["rate"] == 0.4


def test_googlenet_modules_have_four_branches_concatenated_in_order():
    graph = build("googlenet")
    for module, _, (n1, _, n3, _, n5, proj) in TABLE_1:
        merge = graph.find(f"inception_{module}/output")
        assert merge.type == "Concatenate"
        names = [graph.block(src).name for src in graph.inputs_of(merge.id)]
        prefix = f"inception_{module}/"
        assert names == [prefix + s for s in ("1x1", "3x3", "5x5", "pool_proj")]
        assert [graph.find(n).params["filters"] for n in names] == [n1, n3, n5, proj]
        assert graph.find(prefix + "5x5").params["kernel"] == [5, 5]
        pool = graph.find(prefix + "pool").params
        assert (pool["mode"], pool["pool_size"], pool["stride"], pool["padding"]) == (
            "max", [3, 3], [1, 1], "same")
        xs = sorted({graph.find(n).x for n in names})
        assert xs == [-330.0, -110.0, 110.0, 330.0]


def test_googlenet_auxiliary_heads_follow_4a_and_4d():
    graph = build("googlenet")
    outputs = [b for b in graph.blocks if b.type == "Output"]
    assert [(b.params["auxiliary"], b.params["loss_weight"]) for b in outputs] == [
        (True, 0.3), (True, 0.3), (False, 1.0)
    ]
    for head, source in (("loss1", "inception_4a/output"), ("loss2", "inception_4d/output")):
        pool = graph.find(f"{head}/ave_pool")
        assert graph.inputs_of(pool.id) == [graph.find(source).id]
        assert (pool.params["mode"], pool.params["pool_size"], pool.params["stride"]) == (
            "average", [5, 5], [3, 3])
        assert graph.find(f"{head}/drop_fc").params["rate"] == 0.7


@pytest.mark.parametrize("size", [(1, 28, 28), (3, 32, 32), (3, 64, 64)], ids=_case_id)
def test_googlenet_small_stem_keeps_every_stage_and_aux_head(size):
    graph = build("googlenet", size, 10)
    analysis = analyze(graph)
    assert graph.find("conv1/3x3_s1") is not None and graph.find("pool1/3x3_s2") is None
    for name in ("inception_5b/output", "loss1/ave_pool", "loss2/ave_pool"):
        assert min(shape(graph, analysis, name)[1:]) >= 1
    assert "Below 96 px" in get_template("googlenet").description


def test_inception_small_weights_losses_as_the_course_notes():
    template = get_template("inception-small")
    assert (template.default_input, template.default_classes) == ((3, 32, 32), 10)
    graph = build("inception-small")
    analysis = analyze(graph)
    outputs = {b.params["auxiliary"]: b.params["loss_weight"] for b in graph.blocks
               if b.type == "Output"}
    assert outputs == {False: 0.7, True: 0.3}
    assert "0.7·Loss_end + 0.3·Loss_aux" in template.description
    modules = [b for b in graph.blocks if b.type == "Concatenate"]
    assert len(modules) >= 3
    assert all(graph.find(b.name.replace("output", "5x5_reduce")).params["kernel"] == [1, 1]
               for b in modules)
    assert shape(graph, analysis, "global_avg") == (384,)


def test_inception_v3_module_factorises_7x7_into_1x7_and_7x1():
    graph = build("inception-v3-module")
    analysis = analyze(graph)
    merge = graph.find("inception/output")
    branch_ends = [graph.block(src).name for src in graph.inputs_of(merge.id)]
    assert branch_ends == ["inception/1x1", "inception/7x7_7x1", "inception/7x7dbl_1x7b",
                           "inception/pool_proj"]
    kernels = [graph.find(f"inception/{n}").params["kernel"] for n in
               ("7x7_reduce", "7x7_1x7", "7x7_7x1", "7x7dbl_reduce", "7x7dbl_7x1a",
                "7x7dbl_1x7a", "7x7dbl_7x1b", "7x7dbl_1x7b")]
    assert kernels == [[1, 1], [1, 7], [7, 1], [1, 1], [7, 1], [1, 7], [7, 1], [1, 7]]
    assert shape(graph, analysis, "inception/output") == (768, 8, 8)
    assert graph.find("inception/pool").params["mode"] == "average"
    assert "14/49" in get_template("inception-v3-module").description


def test_inception_v3_module_matches_torchvision_inception_c():
    torch = pytest.importorskip("torch")
    inception = pytest.importorskip("torchvision.models.inception")
    graph = build("inception-v3-module")
    analysis = analyze(graph)
    module = [b for b in graph.blocks if b.name.startswith("inception/") and b.type == "Conv2D"]
    ours = sum(analysis.blocks[b.id].params - b.params["filters"] for b in module)  # no biases
    with torch.device("meta"):
        reference = inception.InceptionC(192, channels_7x7=128)
    weights = sum(m.weight.numel() for m in reference.modules() if isinstance(m, torch.nn.Conv2d))
    assert analysis.blocks[graph.find("pool2/3x3_s2").id].output_shape[0] == 192
    assert ours == weights
