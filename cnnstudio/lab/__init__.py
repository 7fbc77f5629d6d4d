"""The convolution lab's computations and its one edit of the network (`network.py`): pure
NumPy and the core, no Qt and no torch (tested on their own)."""
