"""Where training batches come from: resident on the device (the fast path) or streamed.

Both hand out uint8 image batches (B, C, H, W) on the training device with int64 labels; the
engine scales, augments and normalises them there.
"""

from __future__ import annotations

from typing import Any, Iterator

import torch
from torch import Tensor

from cnnstudio.core.analysis import MIN_NORM_BATCH
from cnnstudio.train.data import DatasetError

Batch = tuple[Tensor, Tensor]


def train_steps(count: int, batch_size: int) -> int:
    """Full batches plus the last partial one, unless it holds fewer than MIN_NORM_BATCH
    images: that remainder is dropped (a different one each epoch, as the order is drawn
    anew), so no BatchNorm ever trains on a batch of one. A batch size of 1 itself is refused
    before training by core.analysis.training_diagnostics when the network has BatchNorm."""
    return count // batch_size + (1 if count % batch_size >= MIN_NORM_BATCH else 0)


class ResidentBatches:
    """The whole dataset as uint8 tensors on the device; batches cut with torch.randperm."""

    def __init__(self, data: Any, device: torch.device, batch_size: int, rank: int = 0,
                 world: int = 1) -> None:
        self.train_x = torch.from_numpy(data.train_x.copy()).to(device)
        self.train_y = torch.as_tensor(data.train_y, dtype=torch.long).to(device)
        self.val_x = torch.from_numpy(data.val_x.copy()).to(device)
        self.val_y = torch.as_tensor(data.val_y, dtype=torch.long).to(device)
        self.batch_size, self.rank, self.world = batch_size, rank, world
        self.train_count, self.val_count = len(self.train_x), len(self.val_x)
        # every process gets a shard of the same size (the last train_count % world images of
        # each epoch's order are left out), so all take the same steps with the same batch sizes
        self.shard_count = self.train_count // world
        self.steps_per_epoch = train_steps(self.shard_count, batch_size)

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        order = torch.randperm(self.train_count, generator=generator, device=self.train_x.device)
        if self.world > 1:  # every process draws the same order and takes its own shard
            order = order[self.rank:self.shard_count * self.world:self.world]
        b = self.batch_size
        for i in range(self.steps_per_epoch):
            index = order[i * b:(i + 1) * b]
            yield self.train_x[index], self.train_y[index]

    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        for start in range(0, self.val_count, batch_size):
            yield self.val_x[start:start + batch_size], self.val_y[start:start + batch_size]


class StreamingBatches:
    """A folder too large for memory: decoded by DataLoader workers, moved to the device."""

    def __init__(self, data: Any, device: torch.device, batch_size: int, workers: int = 2) -> None:
        self.data, self.device = data, device
        self.batch_size, self.workers = batch_size, workers
        self.train_count, self.val_count = data.num_train, data.num_val
        self.steps_per_epoch = train_steps(self.train_count, batch_size)

    def _loader(self, dataset: Any, batch_size: int, generator: torch.Generator | None):
        return torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=generator is not None, generator=generator,
            num_workers=self.workers, pin_memory=self.device.type == "cuda",
            drop_last=False, persistent_workers=False,
        )

    def _moved(self, loader) -> Iterator[Batch]:
        try:
            for x, y in loader:
                yield (x.to(self.device, non_blocking=True),
                       y.to(self.device, dtype=torch.long, non_blocking=True))
        except DatasetError:
            raise
        except Exception as err:  # a worker's error arrives wrapped with its traceback text
            raise DatasetError(str(err).strip().splitlines()[0]) from None

    def train_batches(self, generator: torch.Generator) -> Iterator[Batch]:
        cpu = torch.Generator()
        cpu.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=generator,
                                          device=generator.device)))
        for i, batch in enumerate(self._moved(self._loader(self.data.train_set(),
                                                           self.batch_size, cpu))):
            if i >= self.steps_per_epoch:
                break
            yield batch

    def val_batches(self, batch_size: int) -> Iterator[Batch]:
        yield from self._moved(self._loader(self.data.val_set(), batch_size, None))


def make_batches(data: Any, device: torch.device, batch_size: int, rank: int = 0,
                 world: int = 1):
    if getattr(data, "streaming", False):
        if world > 1:
            raise DatasetError("distributed training needs a dataset that fits in memory")
        return StreamingBatches(data, device, batch_size)
    return ResidentBatches(data, device, batch_size, rank, world)
