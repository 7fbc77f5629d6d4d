"""The training engine: the whole dataset resident on the device, batches cut by randperm.

No DataLoader, no PIL, no per-sample Python in the loop: images stay uint8 on the training
device, each batch is gathered by index, scaled, augmented (per sample, batched) and normalised
there. Losses and accuracies accumulate on the device and are read every `log_every` steps, so
the host does not wait for the device each step. The loop is a generator of events (events.py)
and honours pause, resume and stop between two batches.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, ContextManager, Generator, Iterator, Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from cnnstudio.core.adapt import class_mismatch_message, class_mismatches
from cnnstudio.core.analysis import Analysis, analyze, training_diagnostics
from cnnstudio.core.locks import FolderLock
from cnnstudio.core.outputs import output_kinds
from cnnstudio.core.project import Project
from cnnstudio.nn import GraphModel, ModelBuildError, build_model
from cnnstudio.nn.build import pool_before_relu
from cnnstudio.nn.probabilities import (
    class_probabilities,
    log_class_probabilities,
    predicted_classes,
)
from cnnstudio.train import extend, graph_step, warmup
from cnnstudio.train import run_folder as rf
from cnnstudio.train.augment import AugmentConfig, augment_batch
from cnnstudio.train.batches import make_batches
from cnnstudio.train import guards
from cnnstudio.train.guards import TrainingError
from cnnstudio.train.layout_probe import Layout, choose_run_layout, match_state_layout
from cnnstudio.train.optim import make_optimizer, make_schedule, pick_device
from cnnstudio.train.options import TrainOptions
from cnnstudio.train.data import DatasetError
from cnnstudio.train.events import (
    EpochEnded,
    Event,
    RunExtended,
    RunFinished,
    RunStarted,
    StateChanged,
    StepProgress,
    TrainingControl,
)
from cnnstudio.train.precision import Precision, PrecisionError, resolve_precision
from cnnstudio.train.run_folder import RunFolder, RunFolderError
from cnnstudio.train.step_timing import SAMPLE_EVERY, StepTimer
from cnnstudio.train import tensorboard_log

EVAL_BATCH = 512


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


class _TrainForward(nn.Module):
    """What one training step runs: every Output (auxiliary losses) or just the main one.

    A module of its own so that DistributedDataParallel can wrap the call that training makes.
    """

    def __init__(self, model: GraphModel, all_outputs: bool) -> None:
        super().__init__()
        self.model = model
        self.all_outputs = all_outputs

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        if self.all_outputs:
            return self.model.forward_outputs(x)
        return {self.model.main_output_id: self.model(x)}


def _output_kinds(project: Project, analysis: Analysis) -> dict[str, str]:
    """What each Output gives (logits, probabilities or one sigmoid probability; see
    core.outputs), by block id; an output that cannot be trained soundly stops the run here."""
    kinds = output_kinds(project.graph, analysis)
    for kind in kinds.values():
        if kind.problem:
            raise TrainingError(kind.problem)
    return {output_id: kind.kind for output_id, kind in kinds.items()}


class Trainer:
    """One training run. Iterate `run()` for events; `control` pauses, resumes or stops it."""

    def __init__(
        self,
        project: Project,
        data: Any,
        run_dir: str | Path | None = None,
        *,
        options: TrainOptions | None = None,
        control: TrainingControl | None = None,
        resume: bool = False,
        init_from: str | Path | None = None,
        torchvision_weights: str | Path | None = None,
        allow_other_dataset: bool = False,
        extend_by: int = 0,
    ) -> None:
        self.project = project
        self.data = data
        self.folder = RunFolder(run_dir) if run_dir is not None else None
        self.options = options or TrainOptions.from_settings(project.training)
        self.control = control or TrainingControl()
        self.resume = resume
        self.allow_other_dataset = allow_other_dataset  # resume on another dataset (--force)
        self.extend_by = extend_by  # resuming a finished or stopped run: this many more epochs
        self.extensions: list[extend.Extension] = []  # this run's, oldest first (extend.py)
        self.memory_need: guards.MemoryNeed | None = None  # estimated on the CPU only
        self.eval_batch = EVAL_BATCH
        self.init_from = init_from
        self.torchvision_weights = torchvision_weights
        self.notes: list[str] = list(getattr(data, "notes", []))
        self.speed_notes: list[str] = []  # RunStarted.speed_notes
        self.precision: Precision | None = None  # resolved with the device
        self.scaler: torch.amp.GradScaler | None = None  # float16 loss scaling
        # final.json is written only into a folder this run has taken over: a run refused at
        # set-up must not overwrite the record of the run already in the folder
        self.owns_folder = False
        self.folder_lock: FolderLock | None = None  # held while run() runs (rank 0)
        self.timing_every = SAMPLE_EVERY  # where the time goes: every k-th step timed; 0 off
        self.timer: StepTimer | None = None  # made when the epochs start
        self.warmup_steps: int | None = None  # before the clock (warmup.py); None: the device's
        self.warmup_seconds = 0.0
        self.capture = False  # the step is to be captured as a CUDA graph (graph_step.py)
        self.captured: graph_step.CapturedStep | None = None  # once it is

    # -- set-up ------------------------------------------------------------------------------

    def build(self) -> None:
        o = self.options
        if self.resume:
            if self.folder is None:
                raise TrainingError("resuming needs the run folder of the stopped run")
            if self.extend_by:  # before reading it: a clear word for a folder with no run
                extend.check_extendable(self.folder)
            self.project = self.folder.load_project()
        analysis = analyze(self.project.graph)
        try:
            model = build_model(self.project.graph)
        except ModelBuildError as err:
            raise TrainingError(str(err)) from None
        dataset = getattr(self.data, "spec", "") or getattr(self.data, "name", "")
        mismatches = class_mismatches(self.project.graph, len(self.data.classes), dataset,
                                      analysis)
        if mismatches:
            raise TrainingError(class_mismatch_message(mismatches))
        problems = training_diagnostics(self.project.graph, batch_size=o.batch_size)
        if problems:
            raise TrainingError(f"{problems[0].message}; {problems[0].fix}")
        image_shape = tuple(self.data.image_shape)
        input_shape = analysis.blocks[model.input_id].output_shape
        if image_shape != input_shape:
            raise TrainingError(
                f"the dataset's images are {image_shape} (C,H,W) but the Input block expects "
                f"{input_shape}: set the Input block to {','.join(map(str, image_shape))}"
            )
        self.device = pick_device(o.device)
        if self.device.type == "cpu":  # refuse a run the memory cannot hold (guards.py)
            self.memory_need, self.eval_batch = guards.plan_memory(
                lambda b: analysis.memory(b, o.optimizer), self.data, o.batch_size, EVAL_BATCH)
        self._setup_precision()
        torch.manual_seed(o.seed)
        model = build_model(self.project.graph)  # rebuilt after seeding: repeatable init
        if self.init_from is not None or self.torchvision_weights is not None:
            self._load_initial_weights(model)
        elif self.project.weights is not None and not self.resume:
            self._load_project_weights(model)
        self.model = model.to(self.device)
        graph = self.project.graph  # pool_before_relu: the same result, less work
        moved = [f"{graph.block(relu).label} → {graph.block(pool).label}"
                 for relu, pool in pool_before_relu(self.model)]
        if moved:
            self.speed_notes.append("max pooling runs before its ReLU in training (the same "
                                    "values): " + ", ".join(moved))
        self.frozen_norms = [m for m in self.model.modules()
                             if isinstance(m, nn.modules.batchnorm._BatchNorm)
                             and m.weight is not None and not m.weight.requires_grad]
        outputs = self.project.graph.output_blocks()
        self.aux = [b for b in outputs if b.id != model.main_output_id]
        self.loss_weights = {b.id: float(b.params.get("loss_weight", 1.0)) for b in outputs}
        self.output_kinds = _output_kinds(self.project, analysis)
        self.has_penalty = any(b.params.get("l1", 0) or b.params.get("l2", 0)
                               for b in self.project.graph.blocks)
        self._choose_layout()
        self.step_module: nn.Module = _TrainForward(self.model, bool(self.aux))
        self._setup_distributed()
        self._put_data_on_device()
        self.capture = graph_step.plan_run(self)[0]  # before the schedule: it sets the steps
        params = [p for p in self.model.parameters() if p.requires_grad]
        if not params:
            raise TrainingError("every block is frozen: nothing to train; switch 'trainable' "
                                "on for at least one block")
        self.optimizer = make_optimizer(params, o, self.device, self.layout.step)
        self.grad_blocks, self.grad_params = _gradient_groups(self.model)
        self.scheduler = make_schedule(self.optimizer, o, self.steps_per_epoch)
        try:
            self.augment = AugmentConfig.from_names(o.augment)
        except ValueError as err:
            raise TrainingError(str(err)) from None

    def _load_initial_weights(self, model: GraphModel) -> None:
        from cnnstudio.train.transfer import (
            TransferError,
            load_run_weights,
            load_torchvision_weights,
        )

        try:
            if self.torchvision_weights is not None:
                report = load_torchvision_weights(model, self.project.template or "",
                                                  self.project.graph,
                                                  path=Path(self.torchvision_weights))
            else:
                report = load_run_weights(model, Path(self.init_from), self.project.graph)
        except TransferError as err:
            raise TrainingError(str(err)) from None
        self.notes.append(report.summary())

    def _load_project_weights(self, model: GraphModel) -> None:
        """The weights the project starts from (an imported network's), matched by block id,
        then by name; blocks changed since (a new classifier) keep their fresh start."""
        from cnnstudio.train.project_weights import load_project_weights
        from cnnstudio.train.transfer import TransferError

        try:
            report = load_project_weights(model, self.project)
        except TransferError as err:
            raise TrainingError(str(err)) from None
        name = Path(self.project.weights_file() or "").name
        self.notes.append(f"started from the weights in {name}: {report.summary()}")

    def _choose_layout(self) -> None:
        """channels_last or contiguous, a fused or foreach optimiser step: the faster, timed on
        this run's model and first batch (layout_probe.py); the choice goes in the notes."""
        assert self.precision is not None
        choice = choose_run_layout(self.model, self.data, self.device, self.options,
                                   self._probe_loss, self.precision.backward)
        self.layout: Layout = choice.layout
        self.channels_last = choice.layout.channels_last
        if self.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.speed_notes.append(choice.note)

    def _probe_loss(self, model: GraphModel, x: Tensor, y: Tensor) -> Tensor:
        with self._autocast():
            return self._total_loss(_TrainForward(model, bool(self.aux))(x), y, model)

    def _total_loss(self, outputs: dict[str, Tensor], y: Tensor, model: GraphModel) -> Tensor:
        """The training loss: every Output's, weighted, and the weight penalties."""
        loss = sum(self.loss_weights[k] * self._output_loss(k, v, y, True)
                   for k, v in outputs.items())
        if self.has_penalty:
            loss = loss + model.penalty()
        return loss

    def train_step(self, images: Tensor, y: Tensor, generator: torch.Generator) -> Tensor:
        """One optimiser step on one batch, as an epoch takes it (preparation, the weighted
        losses and penalties, backward, the step), outside an epoch: the learning-rate finder's
        sweep. The loss, detached."""
        x = self._prepare(images, True, generator)
        with self._autocast():
            loss = self._total_loss(self.step_module(x), y, self.model)
        self._backward_and_step(loss)
        return loss.detach()

    def _setup_distributed(self) -> None:
        self.rank, self.world = 0, 1
        dist = torch.distributed
        if dist.is_available() and dist.is_initialized():
            self.rank, self.world = dist.get_rank(), dist.get_world_size()
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.step_module = nn.parallel.DistributedDataParallel(self.step_module,
                                                                   device_ids=ids)

    def _put_data_on_device(self) -> None:
        d, dev = self.data, self.device
        self.batches = make_batches(d, dev, self.options.batch_size, self.rank, self.world)
        channels = d.image_shape[0]
        self.mean = torch.as_tensor(d.mean, dtype=torch.float32, device=dev).view(1, channels, 1, 1)
        self.std = torch.as_tensor(d.std, dtype=torch.float32, device=dev).view(1, channels, 1, 1)
        self.steps_per_epoch = self.batches.steps_per_epoch
        if self.steps_per_epoch == 0:
            raise TrainingError(f"the training split has {self.batches.train_count} images, "
                                "fewer than two per batch: use more data or a smaller batch")

    def _prepare(self, x: Tensor, train: bool, generator: torch.Generator | None) -> Tensor:
        x = x.float().div_(255.0)
        if train and self.augment.active and generator is not None:
            x = augment_batch(x, self.augment, generator)
        x = (x - self.mean) / self.std
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x

    def _setup_precision(self) -> None:
        try:
            self.precision = resolve_precision(self.options.precision, self.device)
        except PrecisionError as err:
            raise TrainingError(str(err)) from None
        self.scaler = self.precision.grad_scaler()
        note = self.precision.note()
        if note:
            self.notes.append(note)

    def _autocast(self) -> ContextManager[Any]:
        """The forward pass's arithmetic (autocast, or strict float32 on CUDA)."""
        assert self.precision is not None
        return self.precision.forward()

    def _backward_and_step(self, loss: Tensor) -> None:
        """Gradients, then one optimiser step. Under float16 the GradScaler scales the loss and
        unscales the gradients in place before the step, so the gradient norms read from
        .grad afterwards (training health) are the true ones; a step whose gradients overflowed
        is skipped and the scale lowered (a report that meets such a step is not finite, and
        the epoch's norms leave those blocks out)."""
        assert self.precision is not None
        self.optimizer.zero_grad(set_to_none=True)
        with self.precision.backward():
            (loss if self.scaler is None else self.scaler.scale(loss)).backward()
            if self.timer is not None:
                self.timer.mark("backward")
            if self.scaler is None:
                self.optimizer.step()
                return
            self.scaler.unscale_(self.optimizer)
            self.scaler.step(self.optimizer)
            self.scaler.update()

    def _output_loss(self, output_id: str, values: Tensor, y: Tensor, train: bool) -> Tensor:
        o = self.options
        kind = self.output_kinds[output_id]  # softmax is applied once, here or in the network
        if o.loss == "mse":  # E = ½·Σ(expected − actual)², averaged over the batch
            p = class_probabilities(values, kind)
            target = F.one_hot(y, p.shape[1]).to(p.dtype)
            return 0.5 * ((target - p) ** 2).sum(dim=1).mean()
        log_p = log_class_probabilities(values, kind)
        smoothing = o.label_smoothing if train else 0.0
        return F.nll_loss(log_p, y) if not smoothing else F.cross_entropy(
            log_p, y, label_smoothing=smoothing)

    # -- the loop --------------------------------------------------------------------------

    def run(self) -> Iterator[Event]:
        started = time.perf_counter()
        history: list[EpochEnded] = []
        try:
            failure = yield from tensorboard_log.logged(  # when the setting is on
                self, self._run_until_failure(history, started))
            if failure is not None:  # out of the except clause: the tensors its frames held
                yield self._finish("failed", failure, history, started)  # are freed by now
        except Exception:
            self._leave_folder_as_found()  # after the TensorBoard log closed: its folder too
            raise
        finally:  # also when the consumer closes the generator (GeneratorExit)
            if self.folder is not None and self.folder_lock is not None:
                self.folder.unlock(self.folder_lock)
                self.folder_lock = None

    def _run_until_failure(self, history: list[EpochEnded],
                           started: float) -> Generator[Event, None, str | None]:
        """The run's events; returns the message of a failure the user can act on (a bad
        setting, a run-folder or dataset problem, running out of memory), else None."""
        try:
            self._lock_folder()
            self.build()
            start_epoch, best = self._start_state()
            warmup.prepare_run(self)  # warm-up, graph capture, validation batch: noted
            yield RunStarted(
                run_dir=str(self.folder.path) if self.folder else None,
                device=str(self.device), epochs=self.options.epochs, start_epoch=start_epoch,
                steps_per_epoch=self.steps_per_epoch, train_count=self.batches.train_count,
                val_count=self.batches.val_count, classes=tuple(self.data.classes),
                notes=tuple(self.notes), speed_notes=tuple(self.speed_notes),
            )
            yield from self._epochs(start_epoch, best, history, started)
        except (TrainingError, RunFolderError, DatasetError) as err:
            return str(err)
        except (Exception, KeyboardInterrupt) as err:
            message = guards.out_of_memory_message(err, self.options.batch_size,
                                                   guards.fitting_batch(self.memory_need))
            if message is None:
                raise  # a bug: run() takes back what this run wrote
            self._release_memory()
            return message
        return None

    def _lock_folder(self) -> None:
        """Hold the run folder for the whole run, so that a second run into the same folder is
        refused at once (with this process's id). Only the process that writes the folder
        locks it (rank 0 under torch.distributed)."""
        dist = torch.distributed
        rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
        if self.folder is not None and rank == 0:
            self.folder_lock = self.folder.lock()

    def _leave_folder_as_found(self) -> None:
        """An unexpected error (a bug) ends a fresh run without final.json: before its first
        checkpoint such a folder would neither resume nor export, so take back what this run
        wrote (releasing the lock then removes a folder that the run created)."""
        folder = self.folder
        if folder is None or self.resume or not self.owns_folder:
            return
        if folder.file(rf.CHECKPOINT).exists():
            return  # resumable from its last epoch
        for name in (rf.PROJECT, rf.DATA, rf.METRICS, rf.MODEL, rf.MARKER):
            folder.file(name).unlink(missing_ok=True)
        shutil.rmtree(folder.file(tensorboard_log.FOLDER), ignore_errors=True)

    def _release_memory(self) -> None:
        for name in ("model", "step_module", "optimizer", "batches", "captured"):
            self.__dict__.pop(name, None)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _start_state(self) -> tuple[int, dict[str, Any]]:
        best = {"val_loss": math.inf, "val_acc": None, "bad_epochs": 0}
        if self.folder is None:
            return 1, best
        writer = self.rank == 0  # under torch.distributed only rank 0 writes the run folder
        self.folder.prepare(fresh=not self.resume, create=writer)
        if not self.resume:
            if writer:
                self.owns_folder = True
                self.folder.save_project(self.project)
                self.folder.write_json(rf.DATA, self._data_record())
            return 1, best
        self._check_resumed_dataset(writer)
        if not self.folder.file(rf.CHECKPOINT).exists() and self.folder.file(rf.FINAL).exists():
            # stopped (or failed) before its first epoch ended: nothing to resume, and the
            # folder refuses a fresh run, so start again from epoch 1 in the same folder
            if writer:
                self.owns_folder = True
                self.folder.truncate_metrics(0)
            self.notes.append("no epoch had finished: training starts again from epoch 1")
            return 1, best
        if not self.folder.file(rf.CHECKPOINT).exists():  # killed before its first epoch ended
            raise TrainingError(f"no epoch of the run in {self.folder.path} had finished, so "
                                "there is nothing to resume: start it again without --resume "
                                "(the folder will be reused)")
        state = self.folder.load_tensors(rf.CHECKPOINT)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            match_state_layout(self.optimizer)  # saved in the other layout: fused steps need it
            self.scheduler.load_state_dict(state["scheduler"])
            if self.scaler is not None and "scaler" in state:  # float16: the loss scale
                self.scaler.load_state_dict(state["scaler"])
            epoch = int(state["epoch"])
            best = {"val_loss": float(state["best_val_loss"]),
                    "val_acc": float(state["best_val_acc"]),
                    "bad_epochs": int(state["bad_epochs"])}
        except (KeyError, RuntimeError, ValueError) as err:
            raise TrainingError(f"{self.folder.file(rf.CHECKPOINT)} does not match this run's "
                                f"project ({err}); start a new run instead") from None
        if writer:
            self.owns_folder = True
            self.folder.truncate_metrics(epoch)
        self.notes.append(f"resumed after epoch {epoch}")
        extend.restore(self, state, epoch)
        if self.extend_by:
            extend.apply(self, epoch, epoch + self.extend_by, best)
        else:  # --resume --epochs above the run's plan: extended by the same rule
            extend.more_epochs_on_resume(self, epoch, best)
        return epoch + 1, best

    def _check_resumed_dataset(self, writer: bool) -> None:
        """Resuming continues on the dataset the run was trained on. Another one only with
        allow_other_dataset (--force); the run folder then records it (data.json, project)."""
        try:
            recorded = str(self.folder.read_json(rf.DATA).get("spec") or "")
        except (RunFolderError, AttributeError):
            return  # an older or damaged record: nothing to compare with
        current = str(getattr(self.data, "spec", "") or "")
        if not recorded or not current or rf.same_dataset(recorded, current):
            return
        if not self.allow_other_dataset:
            raise TrainingError(guards.other_dataset_refusal(self.folder.path, recorded, current))
        self.notes.append(f"resumed on {current} with --force; the epochs before were trained "
                          f"on {recorded}")
        self.project.dataset["spec"] = current
        if writer:
            self.folder.save_project(self.project)
            self.folder.write_json(rf.DATA, self._data_record())

    def _data_record(self) -> dict[str, Any]:
        d = self.data
        return {
            "spec": self.project.dataset.get("spec", ""),
            "name": getattr(d, "name", ""),
            "classes": list(d.classes),
            "mean": [float(v) for v in d.mean],
            "std": [float(v) for v in d.std],
            "input_shape": list(d.image_shape),
            "train_count": int(self.batches.train_count),
            "val_count": int(self.batches.val_count),
            "notes": list(self.notes),
            "speed_notes": list(self.speed_notes),
        }

    def _epochs(self, start_epoch: int, best: dict[str, Any], history: list[EpochEnded],
                started: float) -> Iterator[Event]:
        o = self.options  # replaced by a run extended meanwhile (_extended)
        for record in (self.folder.read_metrics() if self.folder and self.resume else []):
            history.append(EpochEnded(**{k: record[k] for k in EpochEnded.__dataclass_fields__
                                         if k in record}))  # grad_norms are not kept
        if start_epoch > o.epochs:
            yield self._finish("completed", f"all {_plural(o.epochs, 'epoch')} were already done",
                               history, started)
            return
        self.train_seconds, self.train_images = 0.0, 0
        self.timer = StepTimer(self.device, self.timing_every, augmented=self.augment.active,
                               streamed=getattr(self.data, "streaming", False))
        # what a diverging loss is measured against: the first step's loss, or when resuming,
        # the first epoch's
        self.first_loss: float | None = history[0].train_loss if history else None
        epoch = start_epoch - 1
        while epoch < self.options.epochs:
            epoch += 1
            outcome = yield from self._train_epoch(epoch)
            if outcome is not None:
                status, message, keep_weights = outcome
                if keep_weights:
                    self._save_weights()
                yield self._finish(status, message, history, started)
                return
            val_loss, val_acc = self.evaluate()
            summary = self._epoch_summary(epoch, val_loss, val_acc)
            history.append(summary)
            improved = val_loss < best["val_loss"]
            if improved:
                best["val_loss"], best["bad_epochs"] = val_loss, 0
            else:
                best["bad_epochs"] += 1
            best["val_acc"] = max(val_acc, best["val_acc"] or 0.0)
            extended = self._extended(epoch, best)
            self._checkpoint(epoch, summary, best)
            yield summary
            if extended is not None:
                yield extended
            patience = o.early_stopping_patience
            if patience and best["bad_epochs"] >= patience and epoch < self.options.epochs:
                yield self._finish("early_stopped",
                                   f"validation loss did not improve for {patience} epochs; "
                                   f"stopped after epoch {epoch}", history, started)
                return
        yield self._finish("completed", f"trained {_plural(self.options.epochs, 'epoch')}",
                           history, started)

    def _extended(self, epoch: int, best: dict[str, Any]) -> RunExtended | None:
        """More epochs asked for while the run trains (TrainingControl.request_extension),
        applied after `epoch`, before its checkpoint: a resume then goes on to the new total."""
        added = self.control.take_extension()
        if not added:
            return None
        extension = extend.apply(self, epoch, self.options.epochs + added, best)
        return RunExtended(epochs=self.options.epochs, added=added, after_epoch=epoch,
                           message=extension.describe())

    def _train_epoch(self, epoch: int) -> Iterator[Event]:
        """Yields progress; returns None, or (status, message, keep weights) to end the run."""
        o = self.options
        model, step_module = self.model, self.step_module
        warmup.training_modes(model, self.frozen_norms)
        generator = (self.captured.generator if self.captured is not None  # the graph's own
                     else torch.Generator(device=self.device))
        generator.manual_seed(o.seed * 1_000_003 + epoch)
        torch.manual_seed(o.seed * 7_919 + epoch)  # dropout draws: repeatable, also on resume
        b, steps = o.batch_size, self.steps_per_epoch
        main = model.main_output_id
        window = torch.zeros(max(o.log_every, 1), device=self.device)
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        seen, filled = 0, 0
        grad_sq = torch.zeros(len(self.grad_blocks), device=self.device)  # summed per report
        grad_reports = 0
        timer = self.timer  # marks the phases of every k-th step (step_timing.py)
        assert timer is not None
        timer.start_epoch(steps)
        epoch_start = time.perf_counter()
        for i, (images, y) in enumerate(timer.batches(self.batches.train_batches(generator))):
            if self.control.stop_requested:
                return "stopped", f"stopped by request in epoch {epoch}", True
            if self.control.paused:
                paused_at = time.perf_counter()
                timer.discard()
                yield StateChanged("paused")
                self.control.wait_while_paused()
                epoch_start += time.perf_counter() - paused_at
                yield StateChanged("running")
                if self.control.stop_requested:
                    return "stopped", f"stopped by request in epoch {epoch}", True
            learning_rate = self.optimizer.param_groups[0]["lr"]  # the rate this step uses
            if self.captured is not None:  # full batches: the whole step is one graph replay
                detached, hits = self.captured.replay(images, y)
            else:
                x = self._prepare(images, True, generator)
                timer.mark("data")
                with self._autocast():
                    outputs = step_module(x)
                    loss = self._total_loss(outputs, y, model)
                timer.mark("forward")
                self._backward_and_step(loss)  # marks "backward" between its two halves
                detached = loss.detach()
                hits = (predicted_classes(outputs[main], self.output_kinds[main]) == y).sum()
            self.scheduler.step()
            timer.mark("optimiser")
            window[filled] = detached
            loss_sum += detached * len(y)
            correct += hits
            seen += len(y)
            filled += 1
            timer.mark("other")
            if filled == len(window) or i == steps - 1:
                grad_sq += self._block_grad_squares()
                grad_reports += 1
                values = window[:filled].tolist()  # the one host synchronisation
                if self.first_loss is None and math.isfinite(values[0]):
                    self.first_loss = values[0]
                bad = guards.diverged_at(values, self.first_loss)  # not finite, or grown 100×
                if bad is not None:
                    step = (epoch - 1) * steps + i - filled + bad + 2
                    return "failed", guards.divergence_message(
                        values[bad], self.first_loss, step, epoch, o.learning_rate), False
                elapsed = time.perf_counter() - epoch_start
                rate = seen / max(elapsed, 1e-9)
                remaining = (o.epochs - epoch) * steps + steps - i - 1
                yield StepProgress(
                    epoch=epoch, step=(epoch - 1) * steps + i + 1, epoch_step=i + 1,
                    steps_per_epoch=steps, step_losses=tuple(values),
                    train_loss=float(loss_sum) / seen, train_acc=float(correct) / seen,
                    images_per_s=rate * self.world, eta_s=remaining * b / max(rate, 1e-9),
                    learning_rate=learning_rate,
                )
                filled = 0
        self.train_seconds += time.perf_counter() - epoch_start
        self.train_images += seen
        self._epoch_train = (float(loss_sum) / max(seen, 1), float(correct) / max(seen, 1),
                             time.perf_counter() - epoch_start, seen)
        self._epoch_breakdown = timer.breakdown(
            seen * self.world / max(self._epoch_train[2], 1e-9))
        norms = (grad_sq / max(grad_reports, 1)).sqrt().tolist()
        self._epoch_grad_norms = {b: n for b, n in zip(self.grad_blocks, norms, strict=True)
                                  if math.isfinite(n)}
        return None

    def _block_grad_squares(self) -> Tensor:
        """Each block's squared gradient norm (its parameters together), on the device."""
        squares = torch.zeros(len(self.grad_blocks), device=self.device)
        grads = [(k, p.grad) for k, p in self.grad_params if p.grad is not None]
        if grads:
            norms = torch._foreach_norm([g for _, g in grads])
            index = torch.tensor([k for k, _ in grads], device=self.device)
            squares.index_add_(0, index, torch.stack(norms).float() ** 2)
        return squares

    def _epoch_summary(self, epoch: int, val_loss: float, val_acc: float) -> EpochEnded:
        loss, acc, seconds, seen = self._epoch_train
        return EpochEnded(epoch=epoch, train_loss=loss, train_acc=acc, val_loss=val_loss,
                          val_acc=val_acc, seconds=seconds,
                          images_per_s=seen * self.world / max(seconds, 1e-9),
                          grad_norms=dict(getattr(self, "_epoch_grad_norms", {})),
                          breakdown=getattr(self, "_epoch_breakdown", None))

    @torch.no_grad()
    def evaluate(self) -> tuple[float, float]:
        """Loss and accuracy of the main output on the validation split."""
        model = self.model
        model.eval()
        main = model.main_output_id
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        for images, y in self.batches.val_batches(self.eval_batch):
            x = self._prepare(images, False, None)
            with self._autocast():
                values = model(x)
            loss_sum += self._output_loss(main, values, y, False) * len(y)
            correct += (predicted_classes(values, self.output_kinds[main]) == y).sum()
        n = max(self.batches.val_count, 1)
        return float(loss_sum) / n, float(correct) / n

    # -- files -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Tensor]:
        """A CPU copy of the weights (call between two events: the run is suspended then)."""
        return self._state_dict()

    def _state_dict(self) -> dict[str, Tensor]:
        return {k: v.detach().to("cpu", copy=True).contiguous()
                for k, v in self.model.state_dict().items()}

    def _save_weights(self) -> None:
        if self.folder is not None and self.rank == 0:
            self.folder.save_tensors(rf.MODEL, self._state_dict())

    def _checkpoint(self, epoch: int, summary: EpochEnded, best: Mapping[str, Any]) -> None:
        if self.folder is None or self.rank != 0:
            return
        weights = self._state_dict()
        self.folder.save_tensors(rf.MODEL, weights)
        self.folder.save_tensors(rf.CHECKPOINT, {
            "model": weights,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": epoch,
            "best_val_loss": best["val_loss"],
            "best_val_acc": best["val_acc"] or 0.0,
            "bad_epochs": best["bad_epochs"],
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            **({"extensions": [e.to_dict() for e in self.extensions]}
               if self.extensions else {}),
        })
        self.folder.append_metrics(summary.to_dict())

    def _finish(self, status: str, message: str, history: list[EpochEnded],
                started: float) -> RunFinished:
        last = history[-1] if history else None
        images = getattr(self, "train_images", 0)
        seconds = getattr(self, "train_seconds", 0.0)
        finished = RunFinished(
            status=status, message=message, epochs_completed=last.epoch if last else 0,
            run_dir=str(self.folder.path) if self.folder else None,
            val_acc=last.val_acc if last else None, val_loss=last.val_loss if last else None,
            best_val_acc=max((h.val_acc for h in history), default=None),
            seconds=time.perf_counter() - started,
            images_per_s=images * self.world / seconds if seconds else 0.0,
            history=tuple(history), warmup_s=self.warmup_seconds,
        )
        if status in ("completed", "early_stopped"):
            finished = replace(finished, warnings=tuple(guards.learning_warnings(
                history, getattr(self, "first_loss", None), len(self.data.classes),
                self.options.learning_rate)))
        if self.folder is not None and self.owns_folder:
            try:
                self.folder.write_json(rf.FINAL, {
                    "status": status, "message": message,
                    "epochs_completed": finished.epochs_completed,
                    "epochs": self.options.epochs, "val_acc": finished.val_acc,
                    "val_loss": finished.val_loss, "best_val_acc": finished.best_val_acc,
                    "seconds": round(finished.seconds, 3),
                    "images_per_s": round(finished.images_per_s, 1),
                    "warmup_s": round(finished.warmup_s, 3),
                    "device": str(getattr(self, "device", "")),
                    "precision": self.precision.record() if self.precision else None,
                    "warnings": list(finished.warnings),
                    **({"extended": extend.extension_records(self.extensions)}
                       if self.extensions else {}),
                })
            except RunFolderError as err:
                finished = replace(finished, status="failed", message=f"{message}; {err}")
        return finished


def train(project: Project, data: Any, run_dir: str | Path | None = None,
          on_event: Callable[[Event], None] | None = None, **kwargs: Any) -> RunFinished:
    """Run to the end and return how it finished (the command line and tests use this)."""
    finished: RunFinished | None = None
    for event in Trainer(project, data, run_dir, **kwargs).run():
        if on_event is not None:
            on_event(event)
        if isinstance(event, RunFinished):
            finished = event
    assert finished is not None
    return finished


def _gradient_groups(model: nn.Module) -> tuple[list[str], list[tuple[int, nn.Parameter]]]:
    """The blocks with trainable parameters (in model order), and each such parameter with the
    index of its block: parameters are named blocks.<block id>.<...>."""
    blocks: list[str] = []
    params: list[tuple[int, nn.Parameter]] = []
    for name, parameter in model.named_parameters():
        parts = name.split(".")
        if not parameter.requires_grad or len(parts) < 3 or parts[0] != "blocks":
            continue
        if parts[1] not in blocks:
            blocks.append(parts[1])
        params.append((blocks.index(parts[1]), parameter))
    return blocks, params

