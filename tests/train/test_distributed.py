"""Data-parallel training under torch.distributed (DistributedDataParallel, gloo on the CPU).

Under torchrun every process runs the same Trainer: it sees torch.distributed initialised,
wraps its step module in DistributedDataParallel and takes the shard order[rank::world] of
the same per-epoch permutation, with batch_size meaning the batch of ONE process. So two
processes with batch B train exactly like one process with batch 2B and the same seed: at
step i the two shards together are the single process's batch i, and DDP averages the two
gradients (each the mean over B images) into the mean over the 2B images. Only rank 0 writes
the run folder.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cnnstudio.train import run_folder as rf
from cnnstudio.train.batches import ResidentBatches
from cnnstudio.train.engine import TrainOptions
from tests.train.conftest import mnist_slice, run, tiny_project

ROOT = Path(__file__).resolve().parents[2]
WORLD = 2
PER_PROCESS_BATCH = 32  # B; the single-process equivalent uses 2B = 64
TRAIN, VAL = 512, 128  # 512 = 8 steps of 2B: every shard has 256 images, 8 batches of B
# no dropout, no BatchNorm, no augmentation: nothing random but the shared permutation; float32
# (no bf16 autocast on a GPU), so that the two ways of computing the same steps agree to 1e-5
SETTINGS = {"epochs": 2, "optimizer": "sgd", "momentum": 0.0, "learning_rate": 0.05,
            "seed": 3, "log_every": 4, "precision": "float32"}
TIMEOUT_S = 240

WORKER = r"""
import json, os, sys
from datetime import timedelta
import torch
torch.set_num_threads(1)
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from cnnstudio.train.data import load_dataset
from cnnstudio.train.engine import Trainer, TrainOptions
from cnnstudio.train.events import RunFinished, StepProgress
from tests.train.conftest import mnist_slice, tiny_project

job = json.loads(sys.argv[1])
rank = int(os.environ["RANK"])
dist.init_process_group("gloo", rank=rank, world_size=int(os.environ["WORLD_SIZE"]),
                        timeout=timedelta(seconds=120))
try:
    data = mnist_slice(load_dataset("mnist-sample", (1, 28, 28)), job["train"], job["val"])
    options = TrainOptions(batch_size=job["batch"], **job["settings"])
    trainer = Trainer(tiny_project(), data, job["run_dirs"][rank], options=options)
    events = list(trainer.run())
    finished = events[-1]
    assert isinstance(finished, RunFinished)
    out = job["out"]
    torch.save({k: v.detach().cpu() for k, v in trainer.model.state_dict().items()},
               os.path.join(out, f"rank{rank}.pt"))
    steps = [e for e in events if isinstance(e, StepProgress)]
    report = {
        "status": finished.status, "message": finished.message,
        "world": trainer.world, "rank": trainer.rank,
        "ddp": isinstance(trainer.step_module, DistributedDataParallel),
        "steps_per_epoch": trainer.steps_per_epoch,
        "steps": sum(len(s.step_losses) for s in steps),
        "val_loss": finished.val_loss,
    }
    with open(os.path.join(out, f"rank{rank}.json"), "w") as stream:
        json.dump(report, stream)
finally:
    dist.destroy_process_group()
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(job: dict, world: int) -> list[str]:
    """Start `world` worker processes with the environment torchrun would give them; returns
    what each printed."""
    port = free_port()
    out = Path(job["out"])
    processes, logs = [], []
    for rank in range(world):
        env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port),
               "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": str(world),
               "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                           os.environ.get("PYTHONPATH")]))}
        log = out / f"rank{rank}.log"
        logs.append(log)
        with log.open("w") as stream:  # a file, not a pipe: a chatty worker cannot block
            processes.append(subprocess.Popen(
                [sys.executable, "-c", WORKER, json.dumps(job)], cwd=ROOT, env=env,
                stdout=stream, stderr=subprocess.STDOUT))
    try:
        for process in processes:
            process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"the workers did not finish in {TIMEOUT_S} s:\n"
                    + "\n".join(log.read_text()[-2000:] for log in logs))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
    printed = [log.read_text() for log in logs]
    for rank, (process, text) in enumerate(zip(processes, printed)):
        assert process.returncode == 0, f"rank {rank} failed:\n{text[-4000:]}"
    return printed


@pytest.fixture(scope="module")
def distributed_run(tmp_path_factory):
    if not torch.distributed.is_available() or not torch.distributed.is_gloo_available():
        pytest.skip("torch.distributed with gloo is not available")
    base = tmp_path_factory.mktemp("ddp")
    out = base / "out"
    out.mkdir()
    # rank 1 gets a folder of its own only to show that it writes nothing there
    run_dirs = [str(base / "run"), str(base / "rank1-run")]
    job = {"train": TRAIN, "val": VAL, "batch": PER_PROCESS_BATCH, "settings": SETTINGS,
           "run_dirs": run_dirs, "out": str(out)}
    printed = launch(job, WORLD)
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(WORLD)]
    weights = [torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(WORLD)]
    return SimpleNamespace(reports=reports, weights=weights, printed=printed,
                           run_dirs=[Path(p) for p in run_dirs])


def single_process(data, batch: int):
    result = run(tiny_project(), data, options=TrainOptions(batch_size=batch, **SETTINGS))
    assert result.finished.status == "completed"
    return result


@pytest.mark.slow
def test_every_process_trains_its_shard_under_ddp(distributed_run):
    for rank, report in enumerate(distributed_run.reports):
        assert report["status"] == "completed", report["message"]
        assert (report["rank"], report["world"]) == (rank, WORLD)
        assert report["ddp"]
        assert report["steps_per_epoch"] == TRAIN // WORLD // PER_PROCESS_BATCH
        assert report["steps"] == SETTINGS["epochs"] * report["steps_per_epoch"]


@pytest.mark.slow
def test_both_ranks_hold_the_same_weights(distributed_run):
    first, second = distributed_run.weights
    assert first.keys() == second.keys()
    for name in first:
        assert torch.equal(first[name], second[name]), name


@pytest.mark.slow
def test_two_processes_with_batch_b_train_like_one_with_batch_2b(distributed_run,
                                                                 mnist_sample):
    data = mnist_slice(mnist_sample, TRAIN, VAL)
    single = single_process(data, 2 * PER_PROCESS_BATCH)
    reference, distributed = single.weights(), distributed_run.weights[0]
    assert distributed.keys() == reference.keys()
    for name in reference:
        assert torch.allclose(distributed[name], reference[name], atol=1e-5), name
    assert distributed_run.reports[0]["val_loss"] == pytest.approx(single.finished.val_loss,
                                                                   rel=1e-4)
    # the comparison tells batch sizes apart: one process with batch B ends elsewhere
    other = single_process(data, PER_PROCESS_BATCH).weights()
    assert any(not torch.allclose(distributed[k], other[k], atol=1e-3) for k in other)


@pytest.mark.slow
def test_only_rank_0_writes_the_run_folder(distributed_run):
    folder, other = distributed_run.run_dirs
    for name in (rf.PROJECT, rf.DATA, rf.MODEL, rf.CHECKPOINT, rf.METRICS, rf.FINAL):
        assert (folder / name).exists(), name
    assert not other.exists()
    records = [json.loads(x) for x in (folder / rf.METRICS).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]
    assert json.loads((folder / rf.FINAL).read_text())["status"] == "completed"
    saved = torch.load(folder / rf.MODEL, weights_only=True)
    for name, tensor in distributed_run.weights[0].items():
        assert torch.equal(saved[name], tensor)


# -- the sharding itself, without processes ---------------------------------------------------


def _indexed(n: int):
    """A dataset whose labels are the image indices, so batches show which images they hold."""
    return SimpleNamespace(train_x=np.zeros((n, 1, 2, 2), np.uint8),
                           train_y=np.arange(n), val_x=np.zeros((2, 1, 2, 2), np.uint8),
                           val_y=np.arange(2))


def _epoch(data, batch: int, rank: int, world: int, seed: int = 11) -> list[list[int]]:
    generator = torch.Generator()
    generator.manual_seed(seed)
    batches = ResidentBatches(data, torch.device("cpu"), batch, rank, world)
    found = [y.tolist() for _, y in batches.train_batches(generator)]
    assert len(found) == batches.steps_per_epoch
    return found


@pytest.mark.parametrize("world", [2, 3])
def test_shards_together_are_the_single_process_batches(world):
    data, b = _indexed(6 * 4 * world), 4
    single = _epoch(data, world * b, 0, 1)
    shards = [_epoch(data, b, rank, world) for rank in range(world)]
    assert all(len(s) == len(single) for s in shards)
    for i, batch in enumerate(single):
        assert sorted(sum((s[i] for s in shards), [])) == sorted(batch)


@pytest.mark.parametrize("count", [515, 513, 514])
def test_uneven_counts_give_every_process_the_same_steps_and_batch_sizes(count):
    data = _indexed(count)
    shards = [_epoch(data, 64, rank, 2) for rank in range(2)]
    assert [len(b) for b in shards[0]] == [len(b) for b in shards[1]]
    assert all(len(b) >= 2 for s in shards for b in s)  # no single-image batch (BatchNorm)
    together = [i for s in shards for b in s for i in b]
    # at most a one-image remainder per process is left out of the epoch
    assert len(together) == len(set(together)) >= count - 3
