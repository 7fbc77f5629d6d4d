"""A briefly trained Keras-book network (template keras-mnist) for the Grad-CAM and saliency
tests: the first 4,000 images of the bundled MNIST sample, 3 epochs through `cnnstudio train`
(about 90 % validation accuracy, a few seconds)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

TRAIN_IMAGES = 4000
EPOCHS = 3


def train_keras_run(folder: Path) -> Path:
    """Train the Keras-book network into `folder`/run and return the run folder."""
    import torch

    from cnnstudio.cli import main
    from cnnstudio.train.data import load_dataset

    sample = load_dataset("mnist-sample", (1, 28, 28))
    data = folder / "digits.npz"
    np.savez(data, x=sample.train_x[:TRAIN_IMAGES, 0], y=sample.train_y[:TRAIN_IMAGES])
    out = folder / "run"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a busy small machine: OpenMP threads only wait for each other
    try:
        code = main(["train", "--template", "keras-mnist", "--dataset", f"npz:{data}",
                     "--epochs", str(EPOCHS), "--seed", "0", "--out", str(out)])
    finally:
        torch.set_num_threads(threads)
    assert code == 0, "training the Keras-book network failed"
    return out
