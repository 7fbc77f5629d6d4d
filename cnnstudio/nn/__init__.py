"""Torch side of CNN Studio: compile a core Graph into a runnable nn.Module.

Importing this package imports torch; cnnstudio.core never does.
"""

from cnnstudio.nn.build import GraphModel, ModelBuildError, build_model, running_stat_count

__all__ = ["GraphModel", "ModelBuildError", "build_model", "running_stat_count"]
