"""Transfer learning: load weights from another run or from torchvision, and freeze blocks.

Weights move block by block. A block receives weights only when every one of its tensors
(weights, bias, BatchNorm running statistics) has the same shape in the source; otherwise it
keeps its fresh initialisation and the report says why. That makes "replace the classifier"
work without any special case: with another number of classes only the last Dense layer
differs in shape, so it alone starts from scratch.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from cnnstudio.core import registry
from cnnstudio.core.graph import Block, Graph
from cnnstudio.core.project import ProjectError, load_project
from cnnstudio.core.templates import build_template, torchvision_nets
from cnnstudio.nn.module_weights import WEIGHT_SUBMODULE, graph_state_from_module_state
from cnnstudio.nn.module_weights import strip_wrappers as _strip_wrappers
from cnnstudio.nn.torch_files import (
    StateFileError,
    read_state_dict,
    state_dict_in,
    torch_file_problem,
)

MODEL_FILE = "model.pt"
PROJECT_FILE = "project.cnnproj"

TORCHVISION_WEIGHTS: dict[str, tuple[str, str]] = {
    "alexnet": ("alexnet-owt-7be5be79.pth",
                "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"),
    "vgg11": ("vgg11-8a719046.pth", "https://download.pytorch.org/models/vgg11-8a719046.pth"),
    "vgg16": ("vgg16-397923af.pth", "https://download.pytorch.org/models/vgg16-397923af.pth"),
    "resnet18": ("resnet18-f37072fd.pth",
                 "https://download.pytorch.org/models/resnet18-f37072fd.pth"),
    "resnet50": ("resnet50-0676ba61.pth",
                 "https://download.pytorch.org/models/resnet50-0676ba61.pth"),
    "mobilenet-v2": ("mobilenet_v2-b0353104.pth",
                     "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth"),
    "squeezenet1.1": ("squeezenet1_1-b8a52dc0.pth",
                      "https://download.pytorch.org/models/squeezenet1_1-b8a52dc0.pth"),
    "vgg11-bn": ("vgg11_bn-6002323d.pth",
                 "https://download.pytorch.org/models/vgg11_bn-6002323d.pth"),
}
# Templates whose blocks carry torchvision's module names: their weights map by name
# (nn.module_weights). The older AlexNet and VGG templates use the paper's names, so their
# weights map by position, checked by these (Conv2d layers, Linear layers) counts: a file with
# other counts is not the template's weights (vgg11's file offered for vgg16, say).
_BY_NAME = frozenset(template.id for template in torchvision_nets.TEMPLATES)
_TORCHVISION_LAYERS = {"alexnet": (5, 3), "vgg11": (8, 3), "vgg16": (13, 3)}
# Where each layer class keeps its torch module inside a block (cnnstudio.nn.layers);
# tests/test_block_tables.py builds both blocks and checks the names.
_SUBMODULE = {type_id: WEIGHT_SUBMODULE[type_id] for type_id in ("Conv2D", "Dense")}
# Counted by BatchNorm but not worth refusing a block over when a source lacks it.
_OPTIONAL = ("num_batches_tracked",)
_LISTED = 8  # blocks named in a summary line before "and n more"


class TransferError(Exception):
    """Weights that cannot be loaded; the message names the file and what to do."""


@dataclass
class MatchReport:
    """What load_matching_weights did: block ids loaded, skipped (with reason) and left over.

    `mapping` pairs each torchvision module with the block it was given to (module path, block
    id), for torchvision's weights; `unused` then lists the modules no block received.
    """

    loaded: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    mapping: list[tuple[str, str]] = field(default_factory=list)

    def summary(self) -> str:
        """A few lines for the log or a status bar."""
        total = len(self.loaded) + len(self.skipped)
        line = f"loaded {len(self.loaded)} of {total} weighted block{'' if total == 1 else 's'}"
        if self.skipped:
            line += "; not loaded: " + _listing(
                [f"{block_id} ({reason})" for block_id, reason in self.skipped], "; "
            )
        lines = [line]
        if self.unused:
            lines.append("not used from the source: " + _listing(self.unused, ", "))
        return "\n".join(lines)


def _listing(items: list[str], separator: str) -> str:
    shown = separator.join(items[:_LISTED])
    return shown if len(items) <= _LISTED else f"{shown}{separator}and {len(items) - _LISTED} more"


# -- matching ------------------------------------------------------------------------------


def _group_by_block(state: Mapping[str, Any]) -> dict[str, dict[str, Tensor]]:
    """{block id: {rest of the key: tensor}} for keys 'blocks.<id>.<rest>'; others ignored."""
    groups: dict[str, dict[str, Tensor]] = {}
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            continue
        parts = _strip_wrappers(key).split(".", 2)
        if len(parts) == 3 and parts[0] == "blocks":
            groups.setdefault(parts[1], {})[parts[2]] = value
    return groups


def _shape_text(shape: torch.Size) -> str:
    return "×".join(str(d) for d in shape) if len(shape) else "a single value"


def _is_optional(rest: str) -> bool:
    return rest.rsplit(".", 1)[-1] in _OPTIONAL


def _type_of(graph: Graph | None, block_id: str) -> str | None:
    return graph.block(block_id).type if graph is not None and block_id in graph else None


def _mismatch(
    source: Mapping[str, Tensor], target: Mapping[str, Tensor], source_type: str | None,
    target_type: str | None,
) -> str | None:
    """Why the source tensors cannot go into the target block, or None when they fit."""
    if source_type and target_type and source_type != target_type:
        return f"{source_type} in the source, {target_type} here"
    required = {k for k in target if not _is_optional(k)}
    offered = {k for k in source if not _is_optional(k)}
    if required != offered:
        missing = sorted(required - offered)
        extra = sorted(offered - required)
        parts = []
        if missing:
            parts.append(f"{', '.join(missing)} missing in the source")
        if extra:
            parts.append(f"{', '.join(extra)} only in the source")
        return "different tensors: " + "; ".join(parts)
    for rest, tensor in target.items():
        if rest not in source:
            continue
        if source[rest].shape != tensor.shape:
            leaf = rest.rsplit(".", 1)[-1]
            what = "shape" if leaf == "weight" else f"{leaf} shape"
            return (f"{what} {_shape_text(source[rest].shape)} in the source, "
                    f"{_shape_text(tensor.shape)} here")
    return None


def load_matching_weights(
    model: nn.Module,
    source_state: Mapping[str, Tensor],
    source_graph: Graph | None,
    target_graph: Graph,
) -> MatchReport:
    """Copy the source's weights into every block of `model` whose tensors all fit.

    A target block is paired with the source block of the same id; failing that (ids differ when
    a network was rebuilt by hand), with the source block of the same name, provided the source
    graph is given and exactly one unpaired source block carries that name. `unused` lists the
    source blocks no target block was paired with; a pair that does not fit is reported once,
    in `skipped`.
    """
    source = _group_by_block(source_state)
    if not source:
        raise TransferError(
            "the source weights hold no CNN Studio blocks (keys like "
            "'blocks.conv1.conv.weight'); for torchvision weights use load_torchvision_weights"
        )
    target = _group_by_block(model.state_dict(keep_vars=True))
    by_name: dict[str, list[str]] = {}
    if source_graph is not None:
        for source_id in source:
            if source_id not in target and source_id in source_graph:
                by_name.setdefault(source_graph.block(source_id).name, []).append(source_id)

    report = MatchReport()
    used: set[str] = set()
    with torch.no_grad():
        for target_id, tensors in target.items():
            source_id, reason = _pair(target_id, source, by_name, used, target_graph)
            if source_id is None:
                report.skipped.append((target_id, reason))
                continue
            used.add(source_id)
            problem = _mismatch(source[source_id], tensors, _type_of(source_graph, source_id),
                                _type_of(target_graph, target_id))
            if problem is not None:
                report.skipped.append((target_id, problem))
                continue
            for rest, tensor in tensors.items():
                if rest in source[source_id]:
                    tensor.copy_(source[source_id][rest])
            report.loaded.append(target_id)
    report.unused = [source_id for source_id in source if source_id not in used]
    return report


def _pair(
    target_id: str,
    source: Mapping[str, Any],
    by_name: Mapping[str, list[str]],
    used: set[str],
    target_graph: Graph,
) -> tuple[str | None, str]:
    if target_id in source:
        return target_id, ""
    if target_id in target_graph:
        name = target_graph.block(target_id).name
        candidates = [c for c in by_name.get(name, []) if c not in used]
        if len(candidates) == 1:
            return candidates[0], ""
        if len(candidates) > 1:
            return None, f"{len(candidates)} blocks named '{name}' in the source"
    return None, "no block with this id or name in the source"


# -- files ---------------------------------------------------------------------------------


def _read_state(path: Path, what: str) -> dict[str, Tensor]:
    """A state dict from a torch file, loaded safely (tensors only); else a TransferError."""
    try:
        return read_state_dict(path, what)
    except StateFileError as err:
        raise TransferError(str(err)) from None


def load_run_weights(
    model: nn.Module, run_dir_or_model_pt: Path, target_graph: Graph
) -> MatchReport:
    """Weights from an earlier run: its model.pt, matched by id, then by the names in the
    project.cnnproj beside it (when there is one)."""
    path = Path(run_dir_or_model_pt)
    if path.is_dir():
        model_pt = path / MODEL_FILE
        if not model_pt.exists():
            raise TransferError(
                f"'{path}' holds no {MODEL_FILE}: choose the folder of a finished training run "
                f"or its {MODEL_FILE} file"
            )
    else:
        model_pt = path
    state = _read_state(model_pt, "the weights")
    if not _group_by_block(state):
        raise TransferError(
            f"'{model_pt}' holds no CNN Studio weights (keys like 'blocks.conv1.conv.weight'); "
            "for torchvision's ImageNet weights use --weights with a template built after "
            "torchvision"
        )
    source_graph = None
    project_file = model_pt.parent / PROJECT_FILE
    if project_file.exists():
        try:
            source_graph = load_project(project_file).graph
        except ProjectError as err:
            raise TransferError(
                f"{err}\nrepair or remove '{project_file}' (without it blocks match by id only)"
            ) from None
    return load_matching_weights(model, state, source_graph, target_graph)


# -- torchvision ---------------------------------------------------------------------------


def _check_template(template_id: str) -> tuple[str, str]:
    if template_id not in TORCHVISION_WEIGHTS:
        raise TransferError(
            f"no torchvision ImageNet weights for template '{template_id}': only "
            f"{', '.join(TORCHVISION_WEIGHTS)} have them"
        )
    return TORCHVISION_WEIGHTS[template_id]


def _module_order(path: str) -> tuple:
    """features.3 before features.10 before classifier.1, whatever order the keys came in."""
    section, _, rest = path.partition(".")
    rank = {"features": 0, "classifier": 1}.get(section, 2)
    return (rank, section, *(int(p) if p.isdigit() else -1 for p in rest.split(".") if rest))


@dataclass
class _TorchvisionMap:
    state: dict[str, Tensor]
    unmatched_layers: list[str]  # torchvision layers with no block to go to
    unmatched_blocks: list[str]  # weighted blocks with no torchvision layer
    pairs: list[tuple[str, str]]  # (torchvision module path, block id)


def _map_torchvision(
    template_id: str, tv_state: Mapping[str, Tensor], target_graph: Graph, origin: str
) -> _TorchvisionMap:
    file_name, _ = _check_template(template_id)
    if template_id in _BY_NAME:
        return _map_by_name(template_id, tv_state, target_graph, origin, file_name)
    modules: dict[str, dict[str, Tensor]] = {}
    for key, value in tv_state.items():
        if isinstance(key, str) and isinstance(value, Tensor):
            path, _, leaf = _strip_wrappers(key).rpartition(".")
            modules.setdefault(path, {})[leaf] = value
    convs, linears, others = [], [], []
    for path in sorted(modules, key=_module_order):
        weight = modules[path].get("weight")
        ndim = weight.dim() if weight is not None else 0
        (convs if ndim == 4 else linears if ndim == 2 else others).append(path)
    expected = _TORCHVISION_LAYERS[template_id]
    if others or (len(convs), len(linears)) != expected:
        found = f"{len(convs)} convolutions and {len(linears)} linear layers"
        if others:
            found += f" and other tensors ({', '.join(sorted(others)[:3])}, ...)"
        raise TransferError(
            f"{origin} holds {found}; torchvision's {template_id} has {expected[0]} and "
            f"{expected[1]}: these are not its ImageNet weights (expected {file_name})"
        )
    order = target_graph.topological_order()[0]
    mapped: dict[str, Tensor] = {}
    unmatched_layers: list[str] = []
    unmatched_blocks: list[str] = []
    pairs: list[tuple[str, str]] = []
    for block_type, layers in (("Conv2D", convs), ("Dense", linears)):
        blocks = [b for b in order if target_graph.block(b).type == block_type]
        for layer, block_id in zip(layers, blocks):
            for leaf, tensor in modules[layer].items():
                mapped[f"blocks.{block_id}.{_SUBMODULE[block_type]}.{leaf}"] = tensor
            pairs.append((layer, block_id))
        unmatched_layers += layers[len(blocks):]
        unmatched_blocks += blocks[len(layers):]
    return _TorchvisionMap(mapped, unmatched_layers, unmatched_blocks, pairs)


@functools.cache
def _torchvision_modules(template_id: str) -> frozenset[str]:
    """The module paths with weights in torchvision's model: the names of the template's
    weighted blocks (its blocks are named after them)."""
    graph = build_template(template_id)
    return frozenset(b.name for b in graph.blocks if b.type in WEIGHT_SUBMODULE)


def _map_by_name(
    template_id: str, tv_state: Mapping[str, Tensor], target_graph: Graph, origin: str,
    file_name: str,
) -> _TorchvisionMap:
    """Each module's tensors (BatchNorm running statistics too) go to the block named after it.

    The file must hold exactly the modules of torchvision's model (resnet18's file offered for
    resnet50 is refused); the target graph may lack some (a block removed or renamed since).
    """
    named = graph_state_from_module_state(tv_state, target_graph)
    offered = {path for path, _ in named.mapped} | set(named.unmatched_modules)
    expected = _torchvision_modules(template_id)
    if offered != expected:
        problems = []
        for what, paths in (("lacks", expected - offered), ("also holds", offered - expected)):
            if paths:
                shown = sorted(paths)
                more = f" and {len(shown) - 3} more" if len(shown) > 3 else ""
                problems.append(f"{what} {', '.join(shown[:3])}{more}")
        raise TransferError(
            f"{origin} {' and '.join(problems)}: these are not torchvision's {template_id} "
            f"ImageNet weights (expected {file_name})"
        )
    return _TorchvisionMap(named.state, named.unmatched_modules, named.unmatched_blocks,
                           named.mapped)


def torchvision_state_to_graph(
    template_id: str, tv_state: Mapping[str, Tensor], target_graph: Graph
) -> dict[str, Tensor]:
    """torchvision's keys renamed to GraphModel keys. For the templates named after torchvision's
    modules (ResNet, MobileNetV2, SqueezeNet, VGG-11-BN) by name; for AlexNet, VGG-11 and VGG-16
    by position: the k-th Conv2d goes to the k-th Conv2D block in topological order, the k-th
    Linear to the k-th Dense block. Shapes are not checked here; load_matching_weights skips
    the blocks that do not fit."""
    return _map_torchvision(template_id, tv_state, target_graph, "the torchvision state").state


def load_torchvision_weights(
    model: nn.Module,
    template_id: str,
    target_graph: Graph,
    path: Path | None = None,
    download: bool = False,
    cache_dir: Path | None = None,
) -> MatchReport:
    """torchvision's ImageNet weights for a template built after a torchvision model
    (TORCHVISION_WEIGHTS); the report's `mapping` says which module went to which block.

    From `path` when given; else from the cache folder (torch.hub's checkpoints folder unless
    `cache_dir` is given); else downloaded into it, only when `download` is true.
    """
    file_name, url = _check_template(template_id)
    cache = Path(cache_dir) if cache_dir is not None else Path(torch.hub.get_dir()) / "checkpoints"
    advice = f"download {url} and pass it with --weights, or put it in {cache}/"
    if path is not None:
        source = Path(path)
        state = _read_state(source, f"the {template_id} ImageNet weights")
    elif (cache / file_name).is_file():
        source = cache / file_name
        state = _read_state(source, f"the {template_id} ImageNet weights")
    elif download:
        source = cache / file_name
        state = _download(url, cache, file_name, advice)
    else:
        raise TransferError(
            f"the ImageNet weights of {template_id} ({file_name}) are not in {cache} and "
            f"downloading is off: {advice}"
        )
    mapping = _map_torchvision(template_id, state, target_graph, f"'{source}'")
    if not mapping.state:
        receivers = ("no block named after a module of torchvision's " + template_id
                     if template_id in _BY_NAME else "no Conv2D or Dense block")
        raise TransferError(
            f"the network has {receivers} to receive {template_id}'s ImageNet weights"
        )
    report = load_matching_weights(model, mapping.state, None, target_graph)
    no_layer = f"no counterpart in torchvision's {template_id}"
    report.skipped = [
        (block_id, no_layer if block_id in mapping.unmatched_blocks
         or reason.startswith("no block with this id") else reason)
        for block_id, reason in report.skipped
    ]
    report.unused = mapping.unmatched_layers
    report.mapping = mapping.pairs
    return report


def _download(url: str, cache: Path, file_name: str, advice: str) -> dict[str, Tensor]:
    try:
        data = torch.hub.load_state_dict_from_url(
            url, model_dir=str(cache), map_location="cpu", progress=False, check_hash=True,
            file_name=file_name, weights_only=True,
        )
    except Exception as err:  # no network, proxy, hash mismatch, full disk ...
        if isinstance(err, pickle.UnpicklingError):  # never PyTorch's "weights_only=False" advice
            reason = torch_file_problem(err)
        else:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise TransferError(f"cannot download {file_name} ({reason}): {advice}") from None
    state = state_dict_in(data)
    if state is None:
        raise TransferError(f"the downloaded {file_name} holds no state dict: {advice}")
    return state


# -- freezing ------------------------------------------------------------------------------


def _has_trainable(block: Block) -> bool:
    return registry.get(block.type).has_param("trainable")


def set_trainable(
    graph: Graph,
    predicate_or_ids: Callable[[Block], bool] | Iterable[str] | str,
    trainable: bool,
) -> list[str]:
    """Set the `trainable` parameter of the chosen blocks that have one; returns the ids that
    changed. Unknown ids raise GraphError before anything changes."""
    if callable(predicate_or_ids):
        chosen = [b for b in graph.blocks if predicate_or_ids(b)]
    else:
        ids = [predicate_or_ids] if isinstance(predicate_or_ids, str) else list(predicate_or_ids)
        chosen = [graph.block(block_id) for block_id in ids]
    changed = []
    for block in chosen:
        if _has_trainable(block) and block.params.get("trainable", True) != bool(trainable):
            graph.set_params(block.id, {"trainable": bool(trainable)})
            changed.append(block.id)
    return changed


def freeze_all_but_last(graph: Graph, n_dense: int = 1) -> list[str]:
    """Freeze every weighted block except the last `n_dense` Dense layers before the main
    output, which are made trainable: keep the feature extractor, retrain the classifier.
    Returns the ids that changed."""
    if n_dense < 0:
        raise ValueError("n_dense must be 0 or more")
    order = graph.topological_order()[0]
    feeding = _feeding_main_output(graph)
    dense = [b for b in order if graph.block(b).type == "Dense" and b in feeding]
    keep = set(dense[max(0, len(dense) - n_dense):]) if n_dense else set()
    changed = set_trainable(graph, [b for b in order if b not in keep], False)
    changed += set_trainable(graph, [b for b in order if b in keep], True)
    return [b for b in order if b in changed]


def _feeding_main_output(graph: Graph) -> set[str]:
    """Blocks the main (non-auxiliary) output depends on; every block when there is none."""
    main = graph.main_output()
    if main is None:
        return {b.id for b in graph.blocks}
    return graph.ancestors(main.id) | {main.id}


__all__ = [
    "MatchReport",
    "TORCHVISION_WEIGHTS",
    "TransferError",
    "freeze_all_but_last",
    "load_matching_weights",
    "load_run_weights",
    "load_torchvision_weights",
    "set_trainable",
    "torchvision_state_to_graph",
]
