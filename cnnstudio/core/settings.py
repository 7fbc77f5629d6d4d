"""Training and dataset settings of a project, declared with ParamSpec.

Each group is a tuple of ParamSpec, so the window can build a form from it exactly as it builds a
block inspector, plus `normalize(mapping) -> (values, problems)` with the same contract as
BlockType.normalize. Two settings do not fit a ParamSpec kind and get their own checker (the
ParamSpec still describes them for forms, as a text field):

- `augment` is a comma-separated list of augmentation names;
- the dataset `spec` is a string like "mnist:DIR" of up to 1000 characters (the text kind
  allows 200), read by `core.sources.parse_spec`, the one parser of dataset specs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from cnnstudio.core.params import ParamError, ParamSpec
from cnnstudio.core.sources import SAMPLE_SOURCE, SpecError, forms_text, format_spec, parse_spec

AUGMENTATIONS = ("flip", "translate", "rotate", "scale", "channel_permute", "grayscale")
MAX_DATASET_SPEC = 1000
MAX_SEED = 2**31 - 1
# auto: bf16 autocast on CUDA, float32 elsewhere (cnnstudio.train.engine.resolve_precision)
PRECISIONS = ("auto", "float32", "float16", "bf16")

Coercer = Callable[[ParamSpec, Any], Any]


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def parse_augment(value: Any) -> list[str]:
    """Augmentation names from 'flip, rotate' or ['flip', 'rotate']: lower case, no repeats.

    Raises ParamError naming the unknown names and listing the allowed ones.
    """
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
        parts = list(value)
    else:
        raise ParamError(
            "expected augmentation names separated by commas (for example 'flip, translate'), "
            f"got {_show(value)}"
        )
    names: list[str] = []
    unknown: list[str] = []
    for part in parts:
        name = part.strip().lower().replace("-", "_").replace(" ", "_")
        if not name:
            continue
        if name not in AUGMENTATIONS:
            unknown.append(part.strip())
        elif name not in names:
            names.append(name)
    if unknown:
        listed = ", ".join(_show(u) for u in unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        noun = "augmentation" if len(unknown) == 1 else "augmentations"
        raise ParamError(
            f"unknown {noun} {listed}; the allowed names are {', '.join(AUGMENTATIONS)} "
            "(separated by commas)"
        )
    return names


def _coerce_augment(spec: ParamSpec, value: Any) -> str:
    return ", ".join(parse_augment(value))


def _coerce_dataset_spec(spec: ParamSpec, value: Any) -> str:
    """The spec in its normal form (kind in lower case, paths stripped); ParamError if bad."""
    if isinstance(value, str) and len(value) > MAX_DATASET_SPEC:
        raise ParamError(
            f"a dataset spec has at most {MAX_DATASET_SPEC:,} characters, this one {len(value):,}"
        )
    try:
        return format_spec(parse_spec(value))
    except SpecError as err:
        raise ParamError(str(err)) from None


@dataclass(frozen=True)
class SettingsGroup:
    """A named group of settings: declarations, special checkers and when each one matters.

    coercers: name -> checker used instead of ParamSpec.coerce (it raises ParamError).
    relevant_when: name -> (other setting, values of it that make this setting matter), so a
    form can grey out momentum unless the optimizer is SGD or RMSprop.
    """

    name: str
    title: str
    params: tuple[ParamSpec, ...]
    coercers: Mapping[str, Coercer] = field(default_factory=dict)
    relevant_when: Mapping[str, tuple[str, tuple[Any, ...]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: duplicate setting names")
        for name in (*self.coercers, *self.relevant_when):
            if name not in names:
                raise ValueError(f"{self.name}: no setting {name!r}")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.params)

    def param(self, name: str) -> ParamSpec:
        for spec in self.params:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def has_param(self, name: str) -> bool:
        return name in self.names

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.params}

    def coerce(self, name: str, value: Any) -> Any:
        """The normalised value of one setting, or ParamError saying what is wrong."""
        spec = self.param(name)
        coercer = self.coercers.get(name)
        return coercer(spec, value) if coercer else spec.coerce(value)

    def normalize(self, values: Mapping[str, Any]) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        """Defaults filled in and every value checked, as BlockType.normalize.

        Returns (settings in declaration order, [(setting name, problem)]). Invalid values keep
        their default; unknown names are reported.
        """
        result = self.defaults()
        problems: list[tuple[str, str]] = []
        for name, value in values.items():
            if not self.has_param(name):
                problems.append((str(name), f"unknown {self.title} setting"))
                continue
            try:
                result[name] = self.coerce(name, value)
            except ParamError as err:
                problems.append((name, str(err)))
        return result, problems

    def is_relevant(self, name: str, values: Mapping[str, Any]) -> bool:
        """Whether a setting has any effect given the others (for greying out form fields)."""
        condition = self.relevant_when.get(name)
        if condition is None:
            return True
        other, allowed = condition
        return values.get(other, self.param(other).default) in allowed


TRAINING = SettingsGroup(
    name="training",
    title="training",
    params=(
        ParamSpec("epochs", "int", 5, minimum=1, maximum=10000,
                  help="Passes over the whole training set."),
        ParamSpec("batch_size", "int", 64, minimum=1, maximum=65536,
                  help="Images per gradient step."),
        ParamSpec("optimizer", "choice", "adam", choices=("sgd", "rmsprop", "adam", "adamw"),
                  help="How the weights follow the gradient."),
        ParamSpec("learning_rate", "float", 0.001, minimum=1e-8, maximum=10.0,
                  help="Size of each step (the initial one when a schedule is used)."),
        ParamSpec("momentum", "float", 0.9, minimum=0.0, maximum=1.0,
                  help="Fraction of the previous step kept (SGD and RMSprop)."),
        ParamSpec("nesterov", "bool", False, help="Nesterov momentum (SGD only)."),
        ParamSpec("weight_decay", "float", 0.0, minimum=0.0, maximum=1.0,
                  help="Shrinks every weight a little at each step (decoupled for AdamW)."),
        ParamSpec("schedule", "choice", "constant",
                  choices=("constant", "step", "cosine", "one_cycle"),
                  help=(
                      "How the learning rate changes: constant; step (× gamma every step_size "
                      "epochs); cosine (down to zero); one_cycle (up, then down)."
                  )),
        ParamSpec("step_size", "int", 10, minimum=1, maximum=10000,
                  help="Epochs between learning-rate drops (step schedule)."),
        ParamSpec("gamma", "float", 0.1, minimum=0.0, maximum=1.0,
                  help="Factor applied to the learning rate at each drop (step schedule)."),
        ParamSpec("label_smoothing", "float", 0.0, minimum=0.0, maximum=0.99,
                  help="Moves this much of each target's probability onto the other classes."),
        ParamSpec("loss", "choice", "cross_entropy", choices=("cross_entropy", "mse"),
                  help="cross_entropy for classification; mse compares softmax with one-hot."),
        ParamSpec("augment", "text", "", label="Augmentation",
                  help=(
                      "Random changes to training images, separated by commas: "
                      + ", ".join(AUGMENTATIONS) + "."
                  )),
        ParamSpec("seed", "int", 0, minimum=0, maximum=MAX_SEED,
                  help="Seed of every random choice in training, for repeatable runs."),
        ParamSpec("device", "choice", "auto", choices=("auto", "cpu", "cuda", "mps"),
                  help="Where to train; auto picks a GPU when there is one."),
        ParamSpec("precision", "choice", "auto", choices=PRECISIONS,
                  help=(
                      "Arithmetic of training: auto (bf16 mixed precision on a CUDA GPU, "
                      "float32 elsewhere); float32 (full precision, also on a GPU); float16 "
                      "(mixed precision with loss scaling, CUDA GPUs only); bf16 (mixed "
                      "precision on a CUDA GPU or the CPU, usually slower there)."
                  )),
        ParamSpec("early_stopping_patience", "int", 0, minimum=0, maximum=1000,
                  help="Stop after this many epochs without a better validation loss (0: off)."),
        ParamSpec("tensorboard", "bool", False, label="TensorBoard log",
                  help=(
                      "Also log the run for TensorBoard in the run folder's tensorboard "
                      "subfolder: losses, accuracies, learning rate, speed, the network's "
                      "graph and the first convolution's filters each epoch. Open it with "
                      "tensorboard --logdir RUN_FOLDER/tensorboard."
                  )),
    ),
    coercers={"augment": _coerce_augment},
    relevant_when={
        "momentum": ("optimizer", ("sgd", "rmsprop")),
        "nesterov": ("optimizer", ("sgd",)),
        "step_size": ("schedule", ("step",)),
        "gamma": ("schedule", ("step",)),
        "label_smoothing": ("loss", ("cross_entropy",)),
    },
)

DATASET = SettingsGroup(
    name="dataset",
    title="dataset",
    params=(
        ParamSpec("spec", "text", SAMPLE_SOURCE, label="Dataset", help=forms_text() + "."),
        ParamSpec("validation_fraction", "float", 0.2, minimum=0.01, maximum=0.9,
                  help="Share of the training images held out to measure generalisation."),
        ParamSpec("split_seed", "int", 0, minimum=0, maximum=MAX_SEED,
                  help="Seed of the train/validation split."),
    ),
    coercers={"spec": _coerce_dataset_spec},
)

# the project's settings groups by name (Project.dataset, Project.training)
GROUPS: dict[str, SettingsGroup] = {group.name: group for group in (DATASET, TRAINING)}
