"""Reading .pt files without running their code: the one message for a file that
`torch.load(weights_only=True)` refuses.

weights_only=True loads tensors and plain containers only. A file that pickles a class or a
function (a whole model saved with `torch.save(model)`, a checkpoint with an object in it) is
refused, and PyTorch's message then advises loading it with weights_only=False, which runs
whatever code the file holds. CNN Studio never gives that advice: every reader of a .pt file
(run folders, transfer, export and inspection, and the generated Python file, which carries
these texts as its own) says the same thing instead.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

# In torch's UnpicklingError for a class or function, whatever its case: "Unsupported global:
# GLOBAL argparse.Namespace ..." for most, "unsupported GLOBAL posix.mkdir whose module posix is
# blocked" for the modules that run commands or touch files.
UNSUPPORTED_GLOBAL = "unsupported global"
NOT_PLAIN_CHECKPOINT = ("it is not a plain checkpoint (it holds Python objects besides tensors), "
                        "so it will not be loaded: only files of tensors are opened, for safety")
NOT_A_TORCH_FILE = "it is damaged or truncated, or it is not a PyTorch file"


def holds_python_objects(err: BaseException) -> bool:
    """torch.load(weights_only=True) met a class or function in the file (not junk)."""
    return isinstance(err, pickle.UnpicklingError) and UNSUPPORTED_GLOBAL in str(err).lower()


def torch_file_problem(err: BaseException) -> str:
    """Why torch.load(weights_only=True) refused a file, without PyTorch's advice to load it
    with weights_only=False (that runs whatever code the file holds)."""
    return NOT_PLAIN_CHECKPOINT if holds_python_objects(err) else NOT_A_TORCH_FILE


class StateFileError(Exception):
    """A weights file that cannot be read as a state dict; the message names the file and
    what to do. Callers re-raise it as their own error (TransferError, ImportRefused)."""


def read_state_dict(path: Path, what: str) -> dict[str, Tensor]:
    """The state dict in a torch file, loaded safely (tensors only), or one nested in a
    checkpoint under a usual key; raises StateFileError saying why not."""
    summary = f"cannot read {what} '{path}'"
    if not path.exists():
        raise StateFileError(f"{summary}: the file does not exist")
    if path.is_dir():
        raise StateFileError(f"{summary}: it is a folder, not a weights file")
    try:
        data = torch.load(path, weights_only=True, map_location="cpu")
    except PermissionError:
        raise StateFileError(f"{summary}: permission denied") from None
    except Exception as err:  # torch raises many kinds for a truncated or foreign file
        if holds_python_objects(err):
            reason = f"{torch_file_problem(err)}; save the model's state_dict() instead"
        else:
            reason = f"{torch_file_problem(err)}; save or download it again"
        raise StateFileError(f"{summary}: {reason}") from None
    state = state_dict_in(data)
    if state is None:
        raise StateFileError(f"{summary}: it holds no state dict (a mapping of names to tensors)")
    return state


def state_dict_in(data: Any) -> dict[str, Tensor] | None:
    """The state dict itself, or one nested in a checkpoint under a usual key."""
    if isinstance(data, Mapping):
        tensors = {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, Tensor)}
        if tensors:
            return tensors
        for key in ("model", "model_state", "model_state_dict", "state_dict"):
            if isinstance(data.get(key), Mapping):
                return state_dict_in(data[key])
    return None
