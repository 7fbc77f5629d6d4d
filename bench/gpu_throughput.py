"""Training throughput on a GPU: the engine against the eager compute ceiling and DataLoader.

Side by side in one process, for each network:
  engine     the training engine (cnnstudio.train.engine) as a user runs it: images/s of its
             epochs (warm-up and capture excluded, as the engine reports them)
  ceiling    the eager compute ceiling: the same training-time model on one resident batch,
             bf16 autocast (CUDA), channels_last, fused Adam, cudnn.benchmark, no host read
  loader     the idiomatic loop: TensorDataset + DataLoader (pinned memory on CUDA, the best of
             0/4/8 workers), float32, `.item()` each step; with augmentation, torchvision v2
             per-sample transforms in that loop (small networks)

Networks: Keras-book (batch 64 and 512), LeNet-5, VGG-11 at 3x32x32, GoogLeNet and VGG-16 at
3x224x224 (synthetic uint8 images for all but the MNIST-sized ones). One line per case, then
`ratio over eager ceiling, smallest: X` and `ratio over DataLoader, smallest: Y`.

    python bench/gpu_throughput.py                       # any CUDA machine (default cuda)
    python bench/gpu_throughput.py --eager-too           # also the engine without capture
    python bench/gpu_throughput.py --device cpu --quick  # a smoke test: tiny, small networks
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from cnnstudio.core.templates import new_project
from cnnstudio.nn import build_model
from cnnstudio.nn.build import pool_before_relu
from cnnstudio.train import graph_step
from cnnstudio.train.data import load_dataset
from cnnstudio.train.datasets.common import LoadedDataset, channel_stats
from cnnstudio.train.engine import TrainOptions, Trainer
from cnnstudio.train.events import RunFinished
from cnnstudio.train.layout_probe import fused_supported, synchronize

AUGMENT = "rotate, translate, scale"


@dataclass(frozen=True)
class Case:
    name: str
    template: str
    shape: tuple[int, int, int]
    batch: int
    small: bool  # a small network: the 3x-ceiling goal, and the augmented comparison
    images: int  # training images (synthetic unless MNIST-sized)


CASES = (
    Case("Keras-book b64", "keras-mnist", (1, 28, 28), 64, True, 8000),
    Case("Keras-book b512", "keras-mnist", (1, 28, 28), 512, True, 8000),
    Case("LeNet-5 b64", "lenet5", (1, 28, 28), 64, True, 8000),
    Case("VGG-11 32x32 b128", "vgg11", (3, 32, 32), 128, True, 10_000),
    Case("GoogLeNet 224 b64", "googlenet", (3, 224, 224), 64, False, 1280),
    Case("VGG-16 224 b64", "vgg16", (3, 224, 224), 64, False, 1280),
)
QUICK_CASES = ("Keras-book b64", "LeNet-5 b64")


def case_data(case: Case, images: int) -> LoadedDataset:
    """The MNIST sample for 1x28x28 cases, else seeded random uint8 images."""
    if case.shape == (1, 28, 28):
        sample = load_dataset("mnist-sample", case.shape)
        x, y = sample.train_x[:images], sample.train_y[:images]
        val_x, val_y, classes = sample.val_x[:512], sample.val_y[:512], list(sample.classes)
    else:
        rng = np.random.default_rng(0)
        x = rng.integers(0, 256, (images, *case.shape), dtype=np.uint8)
        y = rng.integers(0, 10, images).astype(np.int64)
        val_x, val_y, classes = x[:256], y[:256], [str(k) for k in range(10)]
    mean, std = channel_stats(np.ascontiguousarray(x))
    return LoadedDataset(name=case.name, train_x=np.ascontiguousarray(x), train_y=y,
                         val_x=np.ascontiguousarray(val_x), val_y=val_y, classes=classes,
                         mean=mean, std=std)


def engine_rate(case: Case, data: LoadedDataset, epochs: int, device: str,
                augment: str = "", capture: bool = True) -> tuple[float, str]:
    """images/s of the engine's epochs, and its note on graph capture (if any); capture=False
    keeps the engine's step eager (the plan refuses) for a comparison."""
    if not capture:
        plan = graph_step.capture_plan
        graph_step.capture_plan = lambda facts: (False, "eager for comparison")
        try:
            return engine_rate(case, data, epochs, device, augment)
        finally:
            graph_step.capture_plan = plan
    project = new_project(case.template, case.shape, len(data.classes))
    options = TrainOptions.from_settings(project.training, epochs=epochs,
                                         batch_size=case.batch, augment=augment,
                                         device=device, seed=0, optimizer="adam",
                                         schedule="constant")
    trainer = Trainer(project, data, None, options=options)
    finished = None
    for event in trainer.run():
        if isinstance(event, RunFinished):
            finished = event
    assert finished is not None and finished.ok, finished
    capture = next((n for n in trainer.speed_notes if "graph" in n), "")
    return finished.images_per_s, capture


def ceiling_rate(case: Case, data: LoadedDataset, steps: int, device: torch.device) -> float:
    torch.manual_seed(0)
    cuda = device.type == "cuda"
    torch.backends.cudnn.benchmark = cuda
    model = build_model(new_project(case.template, case.shape, len(data.classes)).graph)
    model = model.to(device)
    pool_before_relu(model)
    model = model.to(memory_format=torch.channels_last)
    step = {"fused": True} if fused_supported("adam", device) else {"foreach": True}
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, **step)
    mean = torch.tensor(data.mean, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    std = torch.tensor(data.std, device=device, dtype=torch.float32).view(1, -1, 1, 1)
    x = torch.from_numpy(data.train_x[:case.batch]).to(device).float() / 255
    x = ((x - mean) / std).contiguous(memory_format=torch.channels_last)
    y = torch.from_numpy(data.train_y[:case.batch]).to(device).long()
    model.train()

    def one_step() -> None:
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=cuda):
            loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(3):  # kernels chosen, optimiser state made
        one_step()
    synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        one_step()
    synchronize(device)
    return steps * case.batch / (time.perf_counter() - start)


class _AugmentedImages(torch.utils.data.Dataset):
    """Per-sample torchvision v2 transforms, the usual way."""

    def __init__(self, data: LoadedDataset) -> None:
        from torchvision.transforms import v2

        self.x, self.y = torch.from_numpy(data.train_x), torch.from_numpy(data.train_y)
        self.transform = v2.Compose([
            v2.ToDtype(torch.float32, scale=True),
            v2.RandomAffine(degrees=10, translate=(0.1, 0.1), scale=(0.9, 1.1)),
            v2.Normalize(mean=list(map(float, data.mean)), std=list(map(float, data.std))),
        ])

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int):
        return self.transform(self.x[i]), self.y[i]


def loader_rate(case: Case, data: LoadedDataset, steps: int, augment: bool, workers: int,
                device: torch.device) -> float:
    torch.manual_seed(0)
    model = build_model(new_project(case.template, case.shape, len(data.classes)).graph)
    model = model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    if augment:
        dataset: torch.utils.data.Dataset = _AugmentedImages(data)
    else:
        mean = torch.tensor(data.mean, dtype=torch.float32).view(1, -1, 1, 1)
        std = torch.tensor(data.std, dtype=torch.float32).view(1, -1, 1, 1)
        x = (torch.from_numpy(data.train_x).float() / 255 - mean) / std
        dataset = torch.utils.data.TensorDataset(x, torch.from_numpy(data.train_y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=case.batch, shuffle=True,
                                         num_workers=workers, pin_memory=device.type == "cuda",
                                         persistent_workers=workers > 0, drop_last=True)
    model.train()
    done, images, start = 0, 0, time.perf_counter()
    while done < steps:
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
            done += 1
            images += len(y)
            if done == 2 and images < steps * case.batch:  # first batches: workers start
                start, images = time.perf_counter(), 0
            if done >= steps:
                break
    return images / (time.perf_counter() - start)


def best_loader(case: Case, data: LoadedDataset, steps: int, augment: bool,
                workers: tuple[int, ...], device: torch.device) -> tuple[float, int]:
    rates = {w: loader_rate(case, data, steps, augment, w, device) for w in workers}
    best = max(rates, key=rates.__getitem__)
    return rates[best], best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    parser.add_argument("--quick", action="store_true",
                        help="tiny sizes and the small networks only (a smoke test)")
    parser.add_argument("--epochs", type=int, default=3, help="engine epochs per case")
    parser.add_argument("--steps", type=int, default=200, help="timed steps of the others")
    parser.add_argument("--cases", default="", help="comma-separated case names to run")
    parser.add_argument("--eager-too", action="store_true",
                        help="also time the engine with its step eager (capture refused)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("no CUDA GPU here: run it on a CUDA machine, or --device cpu --quick")
    device = torch.device(args.device)
    epochs, steps = (1, 4) if args.quick else (args.epochs, args.steps)
    workers = (0,) if args.quick else (0, 4, 8)
    chosen = [c for c in CASES if (c.name in QUICK_CASES if args.quick else True)]
    if args.cases:
        names = {n.strip() for n in args.cases.split(",")}
        chosen = [c for c in chosen if c.name in names]
    gpu = torch.cuda.get_device_name(device) if device.type == "cuda" else "CPU"
    print(f"# {gpu}, torch {torch.__version__}, {time.strftime('%Y-%m-%d')}")
    over_ceiling, over_loader = [], []
    for case in chosen:
        images = min(case.images, 512) if args.quick else case.images
        data = case_data(case, images)
        engine, capture = engine_rate(case, data, epochs, args.device)
        ceiling = ceiling_rate(case, data, steps, device)
        loader, w = best_loader(case, data, steps, False, workers, device)
        over_ceiling.append(engine / ceiling)
        over_loader.append(engine / loader)
        line = (f"{case.name}: engine {engine:,.0f} img/s, ceiling {ceiling:,.0f} "
                f"({engine / ceiling:.2f}x), DataLoader {loader:,.0f} with {w} workers "
                f"({engine / loader:.2f}x)")
        if args.eager_too:
            eager, _ = engine_rate(case, data, epochs, args.device, capture=False)
            line += f", engine eager {eager:,.0f} (graph {engine / eager:.2f}x)"
        if case.small:
            augmented, _ = engine_rate(case, data, epochs, args.device, AUGMENT)
            aug_loader, aw = best_loader(case, data, steps, True, workers, device)
            over_loader.append(augmented / aug_loader)
            line += (f"; augmented: engine {augmented:,.0f}, DataLoader {aug_loader:,.0f} "
                     f"with {aw} workers ({augmented / aug_loader:.2f}x)")
        print(line + (f" [{capture}]" if capture else ""), flush=True)
    print(f"ratio over eager ceiling, smallest: {min(over_ceiling):.2f}")
    print(f"ratio over DataLoader, smallest: {min(over_loader):.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
