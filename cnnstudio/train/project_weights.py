"""The weights a project starts from (Project.weights): an imported network's, kept beside it.

Matched by block id, then by block name, as weights from an earlier run are: a block the user
changed since the import (a classifier with another number of classes) no longer fits and keeps
its fresh start, and the report says so.
"""

from __future__ import annotations

from pathlib import Path

from torch import nn

from cnnstudio.core.project import Project
from cnnstudio.train.transfer import (
    MatchReport,
    TransferError,
    _group_by_block,
    _read_state,
    load_matching_weights,
)


def load_project_weights(model: nn.Module, project: Project) -> MatchReport:
    """Copy the project's weights file into `model`; raises TransferError with what to do."""
    path = project.weights_file()
    if path is None:
        raise TransferError("the project has no weights file to start from")
    source = Path(path)
    if not source.exists():
        raise TransferError(
            f"the project starts from the weights in '{source}', which does not exist: put the "
            "file back beside the project, or choose 'Start from random weights' (command line: "
            "--random-start)"
        )
    state = _read_state(source, "the project's weights")
    if not _group_by_block(state):
        raise TransferError(
            f"'{source}' holds no CNN Studio weights (keys like 'blocks.conv1.conv.weight'); "
            "import the network again to write its weights file"
        )
    return load_matching_weights(model, state, None, project.graph)


__all__ = ["load_project_weights"]
