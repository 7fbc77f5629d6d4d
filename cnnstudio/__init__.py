"""CNN Studio: design, train and export convolutional neural networks visually.

Importing this package is instant: it pulls in neither PyTorch nor Qt.
"""

__version__ = "0.1.0"
