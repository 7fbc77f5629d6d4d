"""The convolution lab's computations: pure NumPy, no Qt and no torch (tested on their own)."""
