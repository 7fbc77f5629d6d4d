"""The fixed text of the 'python' export; nn/codegen.py fills in the values.

HELPERS: layer classes torch lacks, emitted only when a network uses them. PROBABILITY_CODE: how
the network's outputs become class probabilities, one text per output kind (core.outputs), so
that softmax is applied exactly once. TRAINING_CODE: weight loading (refusing, with
nn/torch_files.py's messages, a file that is not plain tensors), predict(), offline data
reading (an .npz archive or an image folder, never a download) and the training loop.
"""

from __future__ import annotations

from cnnstudio.core.outputs import BINARY, LOGITS, PROBABILITIES
from cnnstudio.nn.probabilities import MIN_PROBABILITY

HELPERS = {
    "Conv2dSame": '''
class Conv2dSame(nn.Conv2d):
    """nn.Conv2d after zero padding (left, right, top, bottom): Keras-style 'same' padding puts
    the odd pixel at the bottom/right, which the symmetric padding of nn.Conv2d cannot."""

    def __init__(self, *args, pads: tuple[int, int, int, int], **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.pads = pads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pads))
''',
    "WindowPool2d": '''
class WindowPool2d(nn.Module):
    """Pooling over windows after padding (left, right, top, bottom), as Keras 'same' pads."""

    def __init__(self, kernel_size, stride, pads: tuple[int, int, int, int] = (0, 0, 0, 0)):
        super().__init__()
        self.kernel_size, self.stride, self.pads = kernel_size, stride, pads
        size = kernel_size if isinstance(kernel_size, tuple) else (kernel_size, kernel_size)
        self.area = float(size[0] * size[1])

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """The mean of each zero-padded window."""
        return F.avg_pool2d(F.pad(x, self.pads), self.kernel_size, self.stride)
''',
    "MaxPool2dSame": '''
class MaxPool2dSame(WindowPool2d):
    """Max pooling; the padding is -inf, so it never wins."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, self.pads, value=float("-inf"))
        return F.max_pool2d(x, self.kernel_size, self.stride)
''',
    "AvgPool2dSame": '''
class AvgPool2dSame(WindowPool2d):
    """The average of each window over the pixels it counts: the real ones, and the part
    `counted` (left, right, top, bottom) of the padding; by default none (as Keras)."""

    def __init__(self, kernel_size, stride, pads: tuple[int, int, int, int] = (0, 0, 0, 0),
                 counted: tuple[int, int, int, int] = (0, 0, 0, 0)):
        super().__init__(kernel_size, stride, pads)
        self.counted = counted
        self.uncounted = tuple(p - c for p, c in zip(pads, counted))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ones = F.pad(torch.ones_like(x[:1, :1]), self.counted, value=1.0)
        ones = F.pad(ones, self.uncounted)
        return self.mean(x) / F.avg_pool2d(ones, self.kernel_size, self.stride)
''',
    "SumPool2d": '''
class SumPool2d(WindowPool2d):
    """The sum of each window."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean(x) * self.area
''',
    "L2Pool2d": '''
class L2Pool2d(WindowPool2d):
    """The L2 norm of each window, sqrt(sum of x^2); the floor keeps the gradient finite."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sqrt(torch.clamp(self.mean(x * x) * self.area, min=1e-30))
''',
    "GlobalAvgPool2d": '''
class GlobalAvgPool2d(nn.Module):
    """The mean of each channel: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.mean(x, dim=[2, 3])
''',
    "GlobalMaxPool2d": '''
class GlobalMaxPool2d(nn.Module):
    """The maximum of each channel: (N, C, H, W) -> (N, C)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.amax(x, dim=(2, 3))
''',
}


PROBABILITY_CODE = {
    LOGITS: '''
def class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs are class scores (logits): softmax gives the probabilities."""
    return torch.softmax(outputs, dim=1)


def log_class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """log of class_probabilities, for the loss (log_softmax: exact and stable)."""
    return F.log_softmax(outputs, dim=1)
''',
    PROBABILITIES: f'''
def class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """The model's outputs are class probabilities already: the network ends in a softmax, so
    no second softmax is applied."""
    return outputs


def log_class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """log of class_probabilities, for the loss; floored at {MIN_PROBABILITY!r} (log 0 is -inf)."""
    return torch.log(outputs.clamp_min({MIN_PROBABILITY!r}))
''',
    BINARY: f'''
def class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """[1 - p, p]: the single sigmoid unit gives p, the probability of the second class."""
    return torch.cat([1 - outputs, outputs], dim=1)


def log_class_probabilities(outputs: torch.Tensor) -> torch.Tensor:
    """log of class_probabilities, for the loss; floored at {MIN_PROBABILITY!r} (log 0 is -inf)."""
    return torch.log(class_probabilities(outputs).clamp_min({MIN_PROBABILITY!r}))
''',
}

TRAINING_CODE = '''
def predict(model: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Class probabilities (N, len(CLASSES)), each row summing to 1, for images
    (N, *INPUT_SHAPE) with pixel values in [0, 1] (8-bit pixels divided by 255)."""
    model.eval()
    with torch.no_grad():
        return class_probabilities(model(images))


def convert_cnnstudio_state_dict(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A CNN Studio state dict with its keys renamed to the attributes of this file's model."""
    converted = {{}}
    for key, tensor in state_dict.items():
        for prefix, attribute in CNNSTUDIO_NAMES.items():
            if key.startswith(prefix):
                converted[attribute + key[len(prefix):]] = tensor
                break
    return converted


{file_messages}


def load_cnnstudio_weights(model: nn.Module, path: str) -> nn.Module:
    """Load the weights of a CNN Studio training run (its model.pt) into the model. Only a file
    of tensors is read: one holding Python objects is refused (loading it would run its code).
    ValueError says why a file cannot be read."""
    try:
        state_dict = torch.load(path, map_location="cpu", weights_only=True)
    except OSError:
        raise  # a missing or unreadable file: its own message says so
    except Exception as err:  # torch raises many kinds for a file it will not read
        found = {unsupported_global} in str(err).lower()  # a class or function in the file
        reason = NOT_PLAIN_CHECKPOINT if found else NOT_A_TORCH_FILE
        raise ValueError(f"cannot read {{path}}: {{reason}}") from None
    model.load_state_dict(convert_cnnstudio_state_dict(state_dict))
    return model


# -- training data, read from disk (nothing is downloaded) ---------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
LUMA = (0.299, 0.587, 0.114)  # grey from colour, as Pillow converts


def as_model_input(images: torch.Tensor) -> torch.Tensor:
    """Float images (N, C, H, W) in [0, 1] with the model's channels and size: grey and colour
    converted, alpha dropped or made opaque, resized (bilinear)."""
    channels, height, width = INPUT_SHAPE
    have = images.shape[1]
    if have != channels:
        if have >= 3:
            colour = images[:, :3]
            grey = (colour * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
        else:
            grey = images[:, :1]
            colour = grey.expand(-1, 3, -1, -1)
        if channels == 1:
            images = grey
        elif channels == 3:
            images = colour
        elif channels == 4:
            images = torch.cat([colour, torch.ones_like(grey)], dim=1)
        else:
            raise SystemExit(f"cannot turn {{have}}-channel images into the {{channels}} "
                             "channels this network takes")
    if tuple(images.shape[2:]) != (height, width):
        images = F.interpolate(images, size=(height, width), mode="bilinear",
                               align_corners=False, antialias=True)
    return images.contiguous()


def images_from_array(array) -> torch.Tensor:
    """An array of images, N x H x W, N x H x W x C or N x C x H x W, uint8 (0..255) or float
    (0..1 or 0..255), as float (N, C, H, W) in [0, 1]."""
    images = torch.as_tensor(array)
    if images.dim() == 3:
        images = images.unsqueeze(1)
    elif images.dim() == 4 and images.shape[3] in (1, 3, 4):
        images = images.permute(0, 3, 1, 2)  # channels last
    if images.dim() != 4:
        raise SystemExit(f"images of shape {{tuple(images.shape)}}: expected N x H x W, "
                         "N x H x W x C or N x C x H x W")
    integer = not images.is_floating_point()
    images = images.float()
    if integer or (images.numel() and float(images.max()) > 1.0):
        images = images / 255
    return images


def read_image(path: Path) -> torch.Tensor:
    """An image file (Pillow) as float (C, H, W) in [0, 1]; 16-bit and float images are scaled
    by their range, not clipped."""
    import numpy as np
    from PIL import Image, ImageOps

    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
            values = np.asarray(image, dtype=np.float32)
            top = float(values.max()) if values.size else 0.0
            scale = 1.0 if top <= 1.0 else 255.0 if top <= 255.0 else 65535.0
            return torch.from_numpy(values / scale).clamp(0, 1)[None]
        mode = {{1: "L", 4: "RGBA"}}.get(INPUT_SHAPE[0], "RGB")
        pixels = np.asarray(image.convert(mode), dtype=np.float32) / 255
    return torch.from_numpy(pixels.reshape(*pixels.shape[:2], -1)).permute(2, 0, 1)


def read_folder(root: Path) -> tuple[torch.Tensor, torch.Tensor]:
    """The images of a folder with one subfolder per class, named as CLASSES (other names: as
    many subfolders as classes, in sorted order)."""
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    names = [p.name for p in folders]
    if names and set(names) <= set(CLASSES):
        labels = {{name: CLASSES.index(name) for name in names}}
    elif len(names) == len(CLASSES):
        labels = {{name: index for index, name in enumerate(names)}}
    else:
        raise SystemExit(f"{{root}} has {{len(names)}} class subfolders but this network has "
                         f"{{len(CLASSES)}} classes: give it one subfolder per class")
    files = [(path, labels[folder.name]) for folder in folders
             for path in sorted(folder.rglob("*")) if path.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        raise SystemExit(f"{{root}} holds no PNG, JPEG or BMP images in class subfolders")
    images = torch.stack([as_model_input(read_image(path)[None])[0] for path, _ in files])
    return images, torch.tensor([label for _, label in files])


def read_npz(path: Path) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(images, labels) of an .npz archive: x and y, or x_train and y_train, then x_test and
    y_test when it has them."""
    import numpy as np

    with np.load(path, allow_pickle=False) as archive:
        keys = set(archive.files)
        pairs = [("x", "y")] if {{"x", "y"}} <= keys else [("x_train", "y_train")]
        if pairs[0] == ("x_train", "y_train") and {{"x_test", "y_test"}} <= keys:
            pairs.append(("x_test", "y_test"))  # the validation set
        if not set(pairs[0]) <= keys:
            raise SystemExit(f"{{path}} has no arrays x and y (nor x_train and y_train); save "
                             "it with numpy.savez(FILE, x=images, y=labels)")
        parts = []
        for x, y in pairs:
            labels = torch.as_tensor(archive[y])
            if labels.dim() == 2 and labels.shape[1] > 1:  # one-hot rows
                labels = labels.argmax(dim=1)
            parts.append((as_model_input(images_from_array(archive[x])),
                          labels.reshape(-1).long()))
        return parts


def load_data(path: Path, seed: int = 0) -> tuple[torch.utils.data.Dataset, ...]:
    """Training and validation sets from an .npz archive or an image folder; data without a
    validation part gives a random 10 % of its images to validation."""
    if not path.exists():
        raise SystemExit(f"no training data: {{path}} does not exist; give --data with an .npz "
                         "archive or a folder of class subfolders")
    try:
        parts = read_npz(path) if path.is_file() else [read_folder(path)]
    except (OSError, ValueError, EOFError) as err:
        raise SystemExit(f"cannot read the training data {{path}}: {{err}}") from None
    for images, labels in parts:
        if len(images) != len(labels):
            raise SystemExit(f"{{path}}: {{len(images)}} images but {{len(labels)}} labels")
        if len(labels) and (int(labels.min()) < 0 or int(labels.max()) >= len(CLASSES)):
            raise SystemExit(f"{{path}}: labels must be class numbers 0 to {{len(CLASSES) - 1}}")
    if len(parts) == 1:
        images, labels = parts[0]
        if len(labels) < 2:
            raise SystemExit(f"{{path}} holds {{len(labels)}} images; training needs at least 2")
        order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
        cut = max(1, len(labels) // 10)
        parts = [(images[order[cut:]], labels[order[cut:]]),
                 (images[order[:cut]], labels[order[:cut]])]
    return tuple(torch.utils.data.TensorDataset(*part) for part in parts)


def default_data() -> Path:
    """Training data saved next to this file: <its name>.npz, else the folder <its name>_data."""
    here = Path(__file__).resolve()
    archive, folder = here.with_suffix(".npz"), here.with_name(here.stem + "_data")
    return folder if folder.is_dir() and not archive.exists() else archive


# -- training ------------------------------------------------------------------------------------


def train_one_epoch(model: nn.Module, loader, optimizer: torch.optim.Optimizer) -> float:
    """One pass over the loader; returns the mean training loss."""
    device = next(model.parameters()).device
    model.train()
    total, count = 0.0, 0
    for images, labels in loader:
        images, labels = images.to(device), labels.to(device)
        optimizer.zero_grad()
        loss = F.nll_loss(log_class_probabilities(model(images)), labels){penalty}
        loss.backward()
        optimizer.step()
        total += loss.item() * len(labels)
        count += len(labels)
    return total / max(count, 1)


def evaluate(model: nn.Module, loader) -> float:
    """Accuracy on the loader, between 0 and 1."""
    device = next(model.parameters()).device
    model.eval()
    correct, count = 0, 0
    with torch.no_grad():
        for images, labels in loader:
            guesses = class_probabilities(model(images.to(device))).argmax(dim=1)
            correct += (guesses == labels.to(device)).sum().item()
            count += len(labels)
    return correct / max(count, 1)


def train(model: nn.Module, data: str | Path, epochs: int = {epochs},
          batch_size: int = {batch_size}, lr: float = {lr}) -> nn.Module:
    """Train with Adam on the data (see load_data); prints the validation accuracy after each
    epoch."""
    model.to(torch.device("cuda" if torch.cuda.is_available() else "cpu"))
    train_set, val_set = load_data(Path(data))
    train_loader = torch.utils.data.DataLoader(train_set, batch_size=batch_size, shuffle=True)
    val_loader = torch.utils.data.DataLoader(val_set, batch_size=batch_size)
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for epoch in range(1, epochs + 1):
        loss = train_one_epoch(model, train_loader, optimizer)
        accuracy = evaluate(model, val_loader)
        print(f"epoch {{epoch}}/{{epochs}}: loss {{loss:.4f}}, "
              f"validation accuracy {{accuracy:.2%}}")
    return model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="an .npz archive (arrays x and y, or x_train, y_train, "
                        "x_test, y_test) or a folder with one subfolder of images per class; "
                        "default: this file's name with .npz, or with _data (a folder)")
    parser.add_argument("--weights", help="model.pt of a CNN Studio run to start from")
    parser.add_argument("--epochs", type=int, default={epochs})
    parser.add_argument("--batch-size", type=int, default={batch_size})
    parser.add_argument("--lr", type=float, default={lr})
    parser.add_argument("--save", help="write the trained weights (a state dict) to this file")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else default_data()
    if not data.exists():
        parser.error(f"no training data: {{data}} does not exist; give --data with an .npz "
                     "archive or a folder of class subfolders")
    model = {model}()
    if args.weights:
        try:
            load_cnnstudio_weights(model, args.weights)
        except (OSError, ValueError) as err:
            parser.error(str(err))
    train(model, data, args.epochs, args.batch_size, args.lr)
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
'''
