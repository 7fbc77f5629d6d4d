"""Training throughput: the engine against the idiomatic PyTorch loop, side by side.

Both train the Keras-book MNIST network on the bundled mnist-sample with batch 64, the same
seed and the same number of steps:
  (a) the engine: uint8 data resident on the device, randperm batches, per-sample batched
      augmentation on the device, losses read every few steps;
  (b) TensorDataset + DataLoader(batch_size=64, shuffle=True) + loss.item() every step; with
      augmentation, torchvision v2 transforms per sample inside the Dataset, timed with
      num_workers=0 and num_workers=2, the faster taken.
Augmentation: rotation ±10°, translation 10 %, scale 0.9–1.1. Goals on the 2-core CPU: ratio
≥ 1.3 plain and ≥ 2.0 augmented (≥ 4 on a GPU). Then ONNX Runtime against PyTorch at batch 1.

    python bench/train_throughput.py [--epochs 3] [--rounds 3] [--device auto]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from cnnstudio.core.templates import new_project
from cnnstudio.nn import build_model
from cnnstudio.train.data import load_dataset
from cnnstudio.train.engine import TrainOptions, pick_device, train

BATCH = 64
AUGMENT = "rotate, translate, scale"


def engine_rate(data, epochs: int, augment: str, device: str) -> tuple[float, int]:
    project = new_project("keras-mnist", (1, 28, 28), 10)
    options = TrainOptions.from_settings(project.training, epochs=epochs, batch_size=BATCH,
                                         augment=augment, device=device, seed=0)
    finished = train(project, data, None, options=options)
    assert finished.ok, finished.message
    steps = epochs * (len(data.train_x) // BATCH + (1 if len(data.train_x) % BATCH >= 2 else 0))
    return finished.images_per_s, steps


class _AugmentedImages(torch.utils.data.Dataset):
    """Per-sample torchvision v2 transforms, the usual way."""

    def __init__(self, x, y, mean, std):
        from torchvision.transforms import v2

        self.x, self.y = torch.from_numpy(x), torch.from_numpy(y)
        self.transform = v2.Compose([
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            v2.Normalize(mean=list(map(float, mean)), std=list(map(float, std))),
        ])

    def __len__(self):
        return len(self.x)

    def __getitem__(self, i):
        return self.transform(self.x[i]), self.y[i]


def baseline_rate(data, steps: int, augment: bool, workers: int, device: torch.device) -> float:
    torch.manual_seed(0)
    project = new_project("keras-mnist", (1, 28, 28), 10)
    model = build_model(project.graph).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    mean = torch.tensor(data.mean).view(1, -1, 1, 1)
    std = torch.tensor(data.std).view(1, -1, 1, 1)
    if augment:
        dataset = _AugmentedImages(data.train_x, data.train_y, data.mean, data.std)
    else:
        x = (torch.from_numpy(data.train_x).float() / 255 - mean) / std
        dataset = torch.utils.data.TensorDataset(x, torch.from_numpy(data.train_y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=BATCH, shuffle=True,
                                         num_workers=workers, persistent_workers=workers > 0)
    model.train()
    done, images, start = 0, 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            done += 1
            images += len(y)
            if done >= steps:
                break
    return images / (time.perf_counter() - start)


def onnx_latency(data) -> tuple[float, float]:
    from cnnstudio.nn.export import export_run
    from cnnstudio.train.engine import train as run_training

    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        project = new_project("keras-mnist", (1, 28, 28), 10)
        options = TrainOptions.from_settings(project.training, epochs=1, device="cpu")
        run_training(project, data, run_dir, options=options)
        report = export_run(run_dir, "onnx", Path(tmp) / "model.onnx")
    return report.ort_ms, report.torch_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    device = pick_device(args.device)
    data = load_dataset("mnist-sample", (1, 28, 28))
    print(f"device: {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, "
          f"{len(data.train_x):,} training images, batch {BATCH}")

    # interleaved rounds, best of each: a busy moment of this shared machine hits both sides
    best = {"engine": 0.0, "base": 0.0, "engine_aug": 0.0, "base_aug0": 0.0, "base_aug2": 0.0}
    for round_ in range(1, args.rounds + 1):
        engine_plain, steps = engine_rate(data, args.epochs, "", args.device)
        base_plain = baseline_rate(data, steps, False, 0, device)
        engine_aug, _ = engine_rate(data, args.epochs, AUGMENT, args.device)
        base_aug0 = baseline_rate(data, steps, True, 0, device)
        base_aug2 = baseline_rate(data, steps, True, 2, device)
        print(f"round {round_}: plain engine {engine_plain:,.0f} / DataLoader {base_plain:,.0f} "
              f"img/s; augmented engine {engine_aug:,.0f} / DataLoader {base_aug0:,.0f} "
              f"(0 workers), {base_aug2:,.0f} (2 workers) img/s")
        for key, value in (("engine", engine_plain), ("base", base_plain),
                           ("engine_aug", engine_aug), ("base_aug0", base_aug0),
                           ("base_aug2", base_aug2)):
            best[key] = max(best[key], value)
    engine_plain, base_plain, engine_aug = best["engine"], best["base"], best["engine_aug"]
    base_aug = max(best["base_aug0"], best["base_aug2"])
    print(f"best plain      engine {engine_plain:8,.0f} img/s   DataLoader {base_plain:8,.0f} img/s "
          f"({steps} steps each)")
    print(f"best augmented  engine {engine_aug:8,.0f} img/s   DataLoader {base_aug:8,.0f} img/s")

    ort_ms, torch_ms = onnx_latency(data)
    print(f"batch-1 latency: onnxruntime {ort_ms:.3f} ms, PyTorch {torch_ms:.3f} ms, "
          f"speed-up {torch_ms / ort_ms:.2f}x")
    print(f"ratio plain: {engine_plain / base_plain:.2f}")
    print(f"ratio augmented: {engine_aug / base_aug:.2f}")


if __name__ == "__main__":
    main()
