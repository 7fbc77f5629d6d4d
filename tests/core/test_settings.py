"""Training and dataset settings: declarations, normalisation and the special checkers."""

from __future__ import annotations

import pytest

from cnnstudio.core.params import ParamError, ParamSpec
from cnnstudio.core.settings import (
    AUGMENTATIONS,
    DATASET,
    TRAINING,
    SettingsGroup,
    parse_augment,
)

EXPECTED_TRAINING = {
    "epochs": 5,
    "batch_size": 64,
    "optimizer": "adam",
    "learning_rate": 0.001,
    "momentum": 0.9,
    "nesterov": False,
    "weight_decay": 0.0,
    "schedule": "constant",
    "step_size": 10,
    "gamma": 0.1,
    "label_smoothing": 0.0,
    "loss": "cross_entropy",
    "augment": "",
    "seed": 0,
    "device": "auto",
    "precision": "auto",
    "early_stopping_patience": 0,
    "tensorboard": False,
}


def test_defaults_in_declaration_order():
    assert TRAINING.defaults() == EXPECTED_TRAINING
    assert list(TRAINING.defaults()) == list(EXPECTED_TRAINING)
    assert DATASET.defaults() == {
        "spec": "mnist-sample",
        "validation_fraction": 0.2,
        "split_seed": 0,
    }
    assert all(isinstance(p, ParamSpec) for p in TRAINING.params + DATASET.params)


def test_defaults_pass_their_own_checks():
    for group in (TRAINING, DATASET):
        values, problems = group.normalize(group.defaults())
        assert problems == []
        assert values == group.defaults()


@pytest.mark.parametrize(
    ("name", "low", "high"),
    [
        ("epochs", 1, 10000),
        ("batch_size", 1, 65536),
        ("learning_rate", 1e-8, 10),
        ("momentum", 0, 1),
        ("weight_decay", 0, 1),
        ("step_size", 1, 10000),
        ("gamma", 0, 1),
        ("label_smoothing", 0, 0.99),
        ("seed", 0, 2**31 - 1),
        ("early_stopping_patience", 0, 1000),
    ],
)
def test_bounds(name, low, high):
    spec = TRAINING.param(name)
    assert (spec.minimum, spec.maximum) == (low, high)
    assert TRAINING.normalize({name: low})[1] == []
    assert TRAINING.normalize({name: high})[1] == []
    assert TRAINING.normalize({name: high * 2 + 1})[1][0][0] == name


@pytest.mark.parametrize(
    ("name", "choices"),
    [
        ("optimizer", ("sgd", "rmsprop", "adam", "adamw")),
        ("schedule", ("constant", "step", "cosine", "one_cycle")),
        ("loss", ("cross_entropy", "mse")),
        ("device", ("auto", "cpu", "cuda", "mps")),
        ("precision", ("auto", "float32", "float16", "bf16")),
    ],
)
def test_choices(name, choices):
    assert TRAINING.param(name).choices == choices
    for choice in choices:
        assert TRAINING.normalize({name: choice}) == ({**EXPECTED_TRAINING, name: choice}, [])


def test_problems_name_the_setting_and_keep_the_default():
    values, problems = TRAINING.normalize(
        {"batch_size": 0, "optimizer": "lbfgs", "nesterov": "yes", "epochs": 7, "colour": 1}
    )
    assert values == {**EXPECTED_TRAINING, "epochs": 7}
    assert problems == [
        ("batch_size", "expected an integer from 1 to 65,536, got 0"),
        ("optimizer", "expected one of 'sgd', 'rmsprop', 'adam', 'adamw', got 'lbfgs'"),
        ("nesterov", "expected true or false, got 'yes'"),
        ("colour", "unknown training setting"),
    ]


def test_integers_written_as_floats_and_numbers_as_ints_are_normalised():
    values, problems = TRAINING.normalize({"epochs": 3.0, "learning_rate": 1})
    assert problems == []
    assert values["epochs"] == 3 and isinstance(values["epochs"], int)
    assert values["learning_rate"] == 1.0 and isinstance(values["learning_rate"], float)


def test_augment_is_normalised_from_text_or_list():
    assert TRAINING.normalize({"augment": " Flip,rotate , flip,,"})[0]["augment"] == "flip, rotate"
    assert TRAINING.normalize({"augment": ["scale", "channel-permute"]})[0]["augment"] == (
        "scale, channel_permute"
    )
    assert TRAINING.normalize({"augment": ""})[0]["augment"] == ""
    assert parse_augment("translate, grayscale") == ["translate", "grayscale"]
    assert parse_augment(", ".join(AUGMENTATIONS)) == list(AUGMENTATIONS)


def test_unknown_augmentation_lists_the_allowed_names():
    _, problems = TRAINING.normalize({"augment": "flip, blur"})
    assert problems == [
        (
            "augment",
            "unknown augmentation 'blur'; the allowed names are flip, translate, rotate, scale, "
            "channel_permute, grayscale (separated by commas)",
        )
    ]
    with pytest.raises(ParamError, match="unknown augmentations 'blur', 'noise'"):
        parse_augment("blur, noise")
    with pytest.raises(ParamError, match="separated by commas"):
        parse_augment(3)


@pytest.mark.parametrize(
    ("spec", "normalised"),
    [
        ("mnist-sample", "mnist-sample"),
        ("  MNIST-Sample ", "mnist-sample"),
        ("mnist:/data/mnist", "mnist:/data/mnist"),
        ("Fashion-MNIST:data", "fashion-mnist:data"),
        ("cifar10:C:\\data\\cifar", "cifar10:C:\\data\\cifar"),
        ("cifar100:x", "cifar100:x"),
        ("idx:train-images.idx3-ubyte,train-labels.idx1-ubyte",
         "idx:train-images.idx3-ubyte,train-labels.idx1-ubyte"),
        ("folder:photos", "folder:photos"),
        ("npz:data.npz", "npz:data.npz"),
    ],
)
def test_dataset_specs_accepted(spec, normalised):
    values, problems = DATASET.normalize({"spec": spec})
    assert problems == []
    assert values["spec"] == normalised


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("", "no dataset given; the accepted forms are mnist-sample (the MNIST sample"),
        ("   ", "no dataset given; the accepted forms are"),
        ("imagenet:/data", "unknown dataset 'imagenet:/data'; the accepted forms are"),
        ("mnist", "'mnist' needs DIR after the colon, as in mnist:DIR; got 'mnist'"),
        ("C:\\data", "unknown dataset 'C:\\\\data'"),
        ("folder:", "'folder' needs DIR after the colon"),
        ("idx: ", "'idx' needs IMAGES,LABELS after the colon"),
        ("idx:a.gz", "'idx' needs two paths separated by one comma (IMAGES, LABELS"),
        ("mnist-sample:x", "'mnist-sample' takes no path"),
        (17, "got 17; the accepted forms are"),
        (None, "got None"),
        ("npz:" + "x" * 1000, "a dataset spec has at most 1,000 characters, this one 1,004"),
    ],
)
def test_dataset_specs_refused(spec, message):
    values, problems = DATASET.normalize({"spec": spec})
    assert values["spec"] == "mnist-sample"
    assert len(problems) == 1 and problems[0][0] == "spec"
    assert message in problems[0][1]


def test_dataset_spec_is_stored_in_the_normal_form_of_core_sources():
    values, problems = DATASET.normalize({"spec": " IDX: a.gz , b.gz "})
    assert problems == [] and values["spec"] == "idx:a.gz,b.gz"
    values, _ = DATASET.normalize({"spec": "folder:a:b"})
    assert values["spec"] == "folder:a:b"
    assert "folder:DIR (one subfolder per class)" in DATASET.param("spec").help


def test_dataset_numbers():
    _, problems = DATASET.normalize({"validation_fraction": 0.95, "split_seed": -1})
    assert problems == [
        ("validation_fraction", "expected a number from 0.01 to 0.9, got 0.95"),
        ("split_seed", "expected an integer from 0 to 2,147,483,647, got -1"),
    ]


def test_relevance_for_forms():
    assert not TRAINING.is_relevant("momentum", {"optimizer": "adam"})
    assert TRAINING.is_relevant("momentum", {"optimizer": "sgd"})
    assert TRAINING.is_relevant("nesterov", {"optimizer": "sgd"})
    assert not TRAINING.is_relevant("nesterov", {"optimizer": "rmsprop"})
    assert not TRAINING.is_relevant("gamma", {})
    assert TRAINING.is_relevant("step_size", {"schedule": "step"})
    assert TRAINING.is_relevant("epochs", {})


def test_group_declaration_mistakes_are_caught():
    spec = ParamSpec("a", "int", 1)
    with pytest.raises(ValueError, match="duplicate"):
        SettingsGroup("g", "g", (spec, spec))
    with pytest.raises(ValueError, match="no setting 'b'"):
        SettingsGroup("g", "g", (spec,), relevant_when={"b": ("a", (1,))})
