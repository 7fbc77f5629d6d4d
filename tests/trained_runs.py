"""A real finished run for the inspection and export tests: the Keras-book network (template
keras-mnist), one epoch on the first 640 images of the bundled MNIST sample, saved as an npz
dataset so that the run's data can be read back from its project."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cnnstudio.core.project import Project
from cnnstudio.train.datasets.common import LoadedDataset

SAMPLE_IMAGES = 640


def train_one_epoch_keras_run(folder: Path) -> tuple[Project, LoadedDataset, Path]:
    """Train into `folder`/run; return (project, loaded dataset, run folder)."""
    from cnnstudio.core.templates import new_project
    from cnnstudio.train.data import load_dataset
    from cnnstudio.train.engine import TrainOptions, train

    sample = load_dataset("mnist-sample", (1, 28, 28))
    npz = folder / "digits.npz"
    np.savez(npz, x=sample.train_x[:SAMPLE_IMAGES, 0], y=sample.train_y[:SAMPLE_IMAGES])
    project = new_project("keras-mnist", dataset={"spec": f"npz:{npz}"})
    data = load_dataset(f"npz:{npz}", (1, 28, 28))
    finished = train(project, data, folder / "run",
                     options=TrainOptions(epochs=1, batch_size=64, seed=0))
    assert finished.status == "completed", finished.message
    return project, data, folder / "run"
