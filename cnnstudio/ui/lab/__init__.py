"""The convolution lab page: filters on photographs, worked examples step by step, activations."""

from cnnstudio.ui.lab.page import LabPage

__all__ = ["LabPage"]
