"""What the inspection views look at: one trained model and its data.

The context follows a TrainingSession (the dataset when it is loaded, the weights at the end of
each epoch) or reads a finished run folder. It keeps a single GraphModel on the CPU in
evaluation mode and loads each epoch's state dict into it, so the views always see the latest
weights without rebuilding anything.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal, Slot

from cnnstudio.core.analysis import analyze
from cnnstudio.core.graph import Graph
from cnnstudio.core.outputs import OutputKind, output_kind
from cnnstudio.core.project import Project
from cnnstudio.nn.build import GraphModel, build_model
from cnnstudio.train.inspect import InspectionError, read_run
from cnnstudio.ui.document import Document


class InspectionContext(QObject):
    """The model and data behind the Feature maps, Filters, Confusion matrix and Predict tabs.

    Signals: model_changed() after new weights or a new model (or none), data_changed() after
    new data (or none)."""

    model_changed = Signal()
    data_changed = Signal()

    def __init__(self, session: Any, document: Document | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        from cnnstudio.ui import torch_threads

        torch_threads.single_threaded()  # its model runs on the GUI thread (see torch_threads)
        self.session = session
        self.document = document
        self._project: Project | None = None
        self._model: GraphModel | None = None
        self._main_output = OutputKind()  # of _project's main output, worked out once
        self._data: Any = None
        self._classes: list[str] = []
        self._mean = np.zeros(1, np.float32)
        self._std = np.ones(1, np.float32)
        self._epoch = 0
        self._source = ""
        self._data_problem = ""
        self._revision = 0
        self._from_session = False
        if session is not None:
            session.data_ready.connect(self._on_data_ready)
            session.weights_ready.connect(self._on_weights_ready)

    # -- what the views read ---------------------------------------------------------------

    @property
    def model(self) -> GraphModel | None:
        return self._model

    @property
    def data(self) -> Any:
        """The run's dataset (LoadedDataset, or StreamingDataset for big folders) or None."""
        return self._data

    @property
    def project(self) -> Project | None:
        return self._project

    @property
    def graph(self) -> Graph | None:
        """The graph that was trained (a snapshot: the editor's graph may have changed since)."""
        return self._project.graph if self._project is not None else None

    @property
    def classes(self) -> list[str]:
        return list(self._classes)

    @property
    def mean(self) -> np.ndarray:
        return self._mean

    @property
    def std(self) -> np.ndarray:
        return self._std

    @property
    def ready(self) -> bool:
        """A trained model and its data: every view can show something."""
        return self._model is not None and self._data is not None

    @property
    def has_model(self) -> bool:
        return self._model is not None

    @property
    def epoch(self) -> int:
        return self._epoch

    @property
    def revision(self) -> int:
        """Counts model changes, so a view can tell whether what it shows is current."""
        return self._revision

    @property
    def data_problem(self) -> str:
        return self._data_problem

    @property
    def input_shape(self) -> tuple[int, int, int] | None:
        if self._model is None or self._project is None:
            return None
        shape = analyze(self._project.graph).blocks[self._model.input_id].output_shape
        if shape is None or len(shape) != 3:
            return None
        return (int(shape[0]), int(shape[1]), int(shape[2]))

    @property
    def main_output(self) -> OutputKind:
        """What the trained network's main output gives (logits, or probabilities when it ends
        in a softmax): the views pass `.kind` on, so that softmax is applied exactly once."""
        return self._main_output

    def description(self) -> str:
        """Where the weights come from, to follow 'Weights ': 'after epoch 3 of the current
        run', 'from run mnist-1 (epoch 5)'."""
        if self._model is None:
            return ""
        if self._from_session:
            return (f"after epoch {self._epoch} of the current run" if self._epoch
                    else "of the current run")
        return self._source

    def edited_since(self) -> bool:
        """The editor's network changed after this run started (the views show the run's)."""
        session_revision = getattr(self.session, "graph_revision", -1)
        if not self._from_session or self.document is None or session_revision < 0:
            return False
        return self.document.graph.revision != session_revision

    def model_copy(self) -> GraphModel | None:
        """A private copy for work on another thread (the next epoch reloads this model)."""
        return copy.deepcopy(self._model) if self._model is not None else None

    # -- following a session ---------------------------------------------------------------

    @Slot(object)
    def _on_data_ready(self, data: Any) -> None:
        project = getattr(self.session, "project", None)
        if project is not self._project:
            self._set_model(None, project)
        self._from_session = True
        self._data, self._data_problem = data, ""
        self._classes = list(data.classes)
        channels = data.image_shape[0]
        self._mean = _per_channel(data.mean, channels)
        self._std = _per_channel(data.std, channels)
        self.data_changed.emit()

    @Slot(object, int)
    def _on_weights_ready(self, state: dict[str, Any], epoch: int) -> None:
        project = getattr(self.session, "project", None)
        if project is None:
            return
        self._from_session = True
        if project is not self._project or self._model is None:
            model = build_model(project.graph)
            model.eval()
            self._set_model(model, project, emit=False)
        assert self._model is not None
        self._model.load_state_dict(state)
        self._model.eval()
        self._epoch = int(epoch)
        self._revision += 1
        self.model_changed.emit()

    # -- a finished run --------------------------------------------------------------------

    def load_run(self, run_dir: str | Path) -> None:
        """Inspect a finished run from its folder; raises InspectionError with a message.

        A dataset that cannot be loaded any more leaves `data` None and says why in
        `data_problem`: the filters and predictions still work."""
        contents = read_run(run_dir)
        self._from_session = False
        self._set_model(contents.model, contents.project, emit=False)
        self._epoch = _epochs_completed(Path(run_dir))
        name = Path(run_dir).name
        self._source = f"from run {name}" + (f" (epoch {self._epoch})" if self._epoch else "")
        self._classes = contents.classes
        self._mean, self._std = contents.mean, contents.std
        self._data, self._data_problem = contents.data, contents.data_problem
        self._revision += 1
        self.data_changed.emit()
        self.model_changed.emit()

    def clear(self) -> None:
        self._set_model(None, None, emit=False)
        self._data, self._classes, self._data_problem = None, [], ""
        self.data_changed.emit()
        self.model_changed.emit()

    def _set_model(self, model: GraphModel | None, project: Project | None,
                   emit: bool = True) -> None:
        self._model, self._project = model, project
        self._main_output = (output_kind(project.graph, model.main_output_id)
                             if model is not None and project is not None else OutputKind())
        self._revision += 1
        if emit:
            self.model_changed.emit()


def _per_channel(values: Any, channels: int) -> np.ndarray:
    array = np.asarray(values, np.float32).reshape(-1)
    return np.repeat(array, channels) if array.size == 1 else array


def _epochs_completed(folder: Path) -> int:
    try:
        final = json.loads((folder / "final.json").read_text(encoding="utf-8"))
        return int(final.get("epochs_completed", 0))
    except (OSError, ValueError, TypeError, AttributeError):
        return 0


__all__ = ["InspectionContext", "InspectionError"]
