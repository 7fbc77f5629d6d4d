"""The dataset readers behind `cnnstudio.train.data`: one module per file format (idx, npz,
folder, torchvision) and the array steps they share (common).

Nothing is imported here: `torchvision` costs seconds to import and loads only when a
torchvision dataset is chosen (`data._load_mnist_like`, `data._load_cifar`).
"""
