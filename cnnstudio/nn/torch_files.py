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
