"""Datasets as uint8 tensors: synthetic shapes, CIFAR-10 and ImageFolder trees (ImageNet).

Images are decoded once into a cached uint8 tensor (N x 3 x H x W). Batching, shuffling and
augmentation then run as tensor ops (loaders.TensorLoader), with no PIL per epoch. ImageNet is too big to
hold in memory, so ImageFolderDataset decodes in DataLoader workers with the paper's
preprocessing (shorter side to 256, centre 256x256).

Where data is looked for: the `root` argument, else $ALEXNET_BOOK_DATA, else ~/.cache/alexnet-book/data.
Decoded caches go to $ALEXNET_BOOK_CACHE, else ~/.cache/alexnet-book/cache.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file
from torchvision.transforms import v2 as T

# torchvision 0.29 deprecates its image codecs in favour of torchcodec; they work, and we avoid the extra dependency.
warnings.filterwarnings("ignore", message="The image decoding and encoding capabilities of TorchVision")

DATA_ENV = "ALEXNET_BOOK_DATA"
CACHE_ENV = "ALEXNET_BOOK_CACHE"
DOWNLOAD_ENV = "ALEXNET_BOOK_DOWNLOAD"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SYNTHETIC_SHAPES = ("disk", "square", "hbar", "vbar", "ring")
SYNTHETIC_COLOURS = ((0.85, 0.25, 0.2), (0.2, 0.45, 0.9))  # warm, cool


class DataError(RuntimeError):
    """Data that is missing, corrupt or laid out wrongly; the message says what to do."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    return Path(root or os.environ.get(DATA_ENV) or Path.home() / ".cache" / "alexnet-book" / "data").expanduser()


def cache_dir() -> Path:
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "alexnet-book" / "cache").expanduser()


@dataclass(frozen=True)
class ImageSet:
    """A labelled image set held in memory: images uint8 N x 3 x H x W, labels int64 N."""

    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, index: torch.Tensor) -> ImageSet:
        """The images at `index`, in that order."""
        return ImageSet(self.images[index], self.labels[index], self.classes)

    def subset(self, n: int | None, seed: int = 0) -> ImageSet:
        """A fixed random subset of n images (all of them when n is None or too large)."""
        if n is None or n >= len(self):
            return self
        return self.take(torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))[:n])


# ---------------------------------------------------------------- synthetic shapes


def synthetic(n: int, size: int = 32, num_classes: int = 10, seed: int = 0) -> ImageSet:
    """Coloured shapes on noisy backgrounds, deterministic from `seed`, at any resolution.

    Class c draws shape c % 5 (disk, square, horizontal bar, vertical bar, ring) in colour c // 5
    (warm, cool), at a random position and scale: learnable structure, so a smoke run's loss falls.
    """
    limit = len(SYNTHETIC_SHAPES) * len(SYNTHETIC_COLOURS)
    if not 1 <= num_classes <= limit:
        raise ValueError(f"synthetic data has 1 to {limit} classes, not {num_classes}")
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(num_classes, (n,), generator=g)
    shape, colour = labels % len(SYNTHETIC_SHAPES), labels // len(SYNTHETIC_SHAPES)

    centre = 0.3 + 0.4 * torch.rand(n, 2, 1, 1, generator=g)
    radius = 0.15 + 0.15 * torch.rand(n, 1, 1, generator=g)
    grid = (torch.arange(size) + 0.5) / size
    dy, dx = grid.view(1, -1, 1) - centre[:, 0], grid.view(1, 1, -1) - centre[:, 1]
    dist = (dx**2 + dy**2).sqrt()
    masks = torch.stack([
        dist < radius,
        torch.maximum(dx.abs(), dy.abs()) < radius * 0.85,
        (dy.abs() < radius / 3) & (dx.abs() < radius * 1.3),
        (dx.abs() < radius / 3) & (dy.abs() < radius * 1.3),
        (dist < radius) & (dist > radius * 0.6),
    ], dim=1)  # n x shapes x H x W
    mask = masks[torch.arange(n), shape].unsqueeze(1)

    palette = torch.tensor(SYNTHETIC_COLOURS)[colour] + 0.1 * torch.randn(n, 3, generator=g)
    background = 0.2 + 0.4 * torch.rand(n, 3, 1, 1, generator=g)
    image = torch.where(mask, palette.view(n, 3, 1, 1), background)
    image = image + 0.08 * torch.randn(n, 3, size, size, generator=g)
    images = (image.clamp(0, 1) * 255).round().to(torch.uint8)
    names = tuple(f"{c}-{s}" for c in ("warm", "cool") for s in SYNTHETIC_SHAPES)[:num_classes]
    return ImageSet(images, labels, names)


# ---------------------------------------------------------------- image files


def list_image_folder(split_dir: Path) -> tuple[list[Path], list[int], tuple[str, ...]]:
    """Files and labels of an ImageFolder split: split_dir/<class>/<image>, classes sorted by name."""
    classes = tuple(sorted(d.name for d in split_dir.iterdir() if d.is_dir())) if split_dir.is_dir() else ()
    files, labels = [], []
    for label, name in enumerate(classes):
        found = sorted(p for p in (split_dir / name).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        files += found
        labels += [label] * len(found)
    if not files:
        raise DataError(
            f"no images found in {split_dir}. Expected the ImageFolder layout:\n"
            f"  {split_dir}/<class name>/<image>.jpg   (one folder per class, e.g. {split_dir}/cat/0001.jpg)"
        )
    return files, labels, classes


def decode_file(path: Path) -> torch.Tensor:
    """One image file as uint8 3 x H x W RGB; a file that will not decode is named in the error."""
    try:
        return decode_image(read_file(str(path)), mode=ImageReadMode.RGB)
    except Exception as error:  # torchvision raises RuntimeError or ValueError, depending on the codec
        raise DataError(f"cannot decode image file {path}: {error}") from error


def decode_files(files: list[Path], chunk: int = 2048) -> torch.Tensor:
    """Decode equally sized image files into one uint8 tensor; JPEGs in batches (about 4x faster)."""
    images = []
    for start in range(0, len(files), chunk):
        part = files[start : start + chunk]
        try:
            if not all(p.suffix.lower() in {".jpg", ".jpeg"} for p in part):
                raise ValueError("not all JPEG")
            images += decode_jpeg([read_file(str(p)) for p in part], mode=ImageReadMode.RGB)
        except Exception:  # find and name the bad file, or decode the mixed formats one by one
            images += [decode_file(p) for p in part]
    shapes = {tuple(x.shape) for x in images}
    if len(shapes) > 1:
        raise DataError(f"images differ in size ({sorted(shapes)[:3]} ...); expected one size, e.g. 32x32 for CIFAR-10")
    return torch.stack(images)


def fingerprint(source: Path, files: list[Path] | None = None) -> str:
    """The source's resolved path and every file below it (or only `files`, when the cache is built from
    those: a sample of ImageNet, not 1.28M stat calls per process) with its size: a changed data folder (a
    file added, removed or rewritten to another size) gets a new cache entry instead of a stale one."""
    digest = hashlib.sha1(str(source.resolve()).encode())
    if files is None:
        files = [Path(folder, name) for folder, _, names in sorted(os.walk(source)) for name in sorted(names)]
    for file in files:
        digest.update(f"{Path(file).relative_to(source)}:{os.path.getsize(file)}\n".encode())
    return digest.hexdigest()[:10]


def cache_path(name: str, source: Path, files: list[Path] | None = None) -> Path:
    return cache_dir() / f"{name}-{fingerprint(source, files) if source.exists() else 'missing'}.pt"


def cached(name: str, source: Path, build, files: list[Path] | None = None) -> dict:
    """Load `build()`'s result from the cache, keyed by the source's `fingerprint` (of `files` alone, when
    given: the files `build` reads); build it once.

    Each process writes its own temporary file and renames it into place (atomic), so processes that
    build the same cache at once (torchrun on a cold cache) never read a half-written one."""
    path = cache_path(name, source, files)
    if path.exists():
        return torch.load(path)
    value = build()
    path = cache_path(name, source, files)  # a download in build() may have just created the source
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    torch.save(value, tmp)
    os.replace(tmp, path)
    return value


# ---------------------------------------------------------------- CIFAR-10


def load_cifar10(split: str = "train", root: str | os.PathLike | None = None, download: bool | None = None) -> ImageSet:
    """CIFAR-10's train or test split, from torchvision's binary batches or an ImageFolder tree.

    Looks in `root` (or $ALEXNET_BOOK_DATA) for cifar-10-batches-py/, cifar10-jpeg/{train,test}/ or
    cifar10/{train,test}/; with download=True (or ALEXNET_BOOK_DOWNLOAD=1) torchvision fetches it.
    """
    if split not in ("train", "test"):
        raise ValueError(f"CIFAR-10 has the splits 'train' and 'test', not {split!r}")
    root = data_root(root)
    download = download if download is not None else os.environ.get(DOWNLOAD_ENV) == "1"
    binary = root / "cifar-10-batches-py"
    if binary.is_dir() or download:
        return ImageSet(**cached(f"cifar10-binary-{split}", binary, lambda: _read_cifar10_binary(root, split, download)))
    for folder in (root / "cifar10-jpeg", root / "cifar10"):
        if folder.is_dir():
            return ImageSet(**cached(f"cifar10-folder-{split}", folder, lambda: _read_cifar10_folder(folder, split)))
    looked = "\n".join([f"  {binary}   (torchvision's binary batches)",
                        f"  {root / 'cifar10-jpeg'}/{{train,test}}/<class>/*.jpg   (ImageFolder)",
                        f"  {root / 'cifar10'}/{{train,test}}/<class>/*.jpg   (ImageFolder)"])
    raise DataError(
        f"CIFAR-10 not found. Looked in:\n{looked}\n"
        f"To get it: set {DOWNLOAD_ENV}=1 (or pass download=True) and torchvision downloads it to {root},\n"
        f"or point {DATA_ENV} at a folder holding one of the above."
    )


def _read_cifar10_binary(root: Path, split: str, download: bool) -> dict:
    data = torchvision.datasets.CIFAR10(str(root), train=split == "train", download=download)
    images = torch.from_numpy(data.data).permute(0, 3, 1, 2).contiguous()
    return {"images": images, "labels": torch.tensor(data.targets), "classes": tuple(data.classes)}


def _read_cifar10_folder(folder: Path, split: str) -> dict:
    if not (folder / split).is_dir():
        raise DataError(
            f"{folder} has no {split}/ folder. Expected the layout:\n"
            f"  {folder}/train/<class>/<image>.jpg\n  {folder}/test/<class>/<image>.jpg"
        )
    files, labels, classes = list_image_folder(folder / split)
    if classes != CIFAR10_CLASSES:
        raise DataError(f"{folder / split} has classes {classes}; CIFAR-10's are {CIFAR10_CLASSES}")
    return {"images": decode_files(files), "labels": torch.tensor(labels), "classes": classes}


def load_dataset(profile, split: str = "train", root: str | os.PathLike | None = None,
                 limit: int | None = None) -> ImageSet:
    """A profile's dataset in memory: synthetic shapes (smoke) or CIFAR-10 (cifar), cut to a fixed
    random subset of `limit` images; for imagenet, `limit` images spread evenly over an
    ImageFolder split (data root/imagenet/{train,val})."""
    if profile.dataset == "synthetic":
        train, test = profile.synthetic_sizes
        n, seed = (train, profile.seed) if split == "train" else (test, profile.seed + 1)
        return synthetic(n, profile.image_size, profile.num_classes, seed).subset(limit, profile.seed)
    if profile.dataset == "cifar10":
        return load_cifar10(split, root).subset(limit, profile.seed)
    if limit is None:
        raise ValueError(f"profile {profile.name!r} is too big to hold in memory: pass limit=, or use ImageFolderDataset")
    folder = ImageFolderDataset(data_root(root) / "imagenet", "train" if split == "train" else "val")
    images, labels = zip(*(folder[i] for i in evenly_spaced(len(folder), limit)))
    return ImageSet(torch.stack(images), torch.tensor(labels), folder.classes)


@dataclass(frozen=True)
class Splits:
    """A section experiment's three sets: `train` trains, `val` (held-out training images) drives every
    decision (the learning-rate schedule, the early end, sweeps, regime checks), `test` only reports."""

    train: ImageSet
    val: ImageSet
    test: ImageSet | None  # None where nothing may be reported (a learning-rate sweep)

    def __iter__(self):  # train, val, test = splits
        return iter((self.train, self.val, self.test))

    def sizes(self) -> str:
        return (f"{len(self.train):,} training, {len(self.val):,} validation (held-out training images) and "
                f"{len(self.test or ()):,} test images")


def split_validation(full: ImageSet, val_size: int, train_size: int | None, seed: int) -> tuple[ImageSet, ImageSet]:
    """(train, val) from one training split: one seeded permutation of it, validation its last `val_size`
    images, training its first `train_size` (all the rest when None). Validation is the same set for every
    run of a profile and never meets a training subset; a subset of n images is the same n images as
    ImageSet.subset(n, seed) takes, so runs of a given size train on what they trained on before."""
    if not 0 < val_size < len(full):
        raise ValueError(f"a validation set of {val_size:,} images cannot come from {len(full):,} training images")
    order = torch.randperm(len(full), generator=torch.Generator().manual_seed(seed))
    rest, val = order[: len(full) - val_size], order[len(full) - val_size :]
    if train_size is not None:
        if train_size > len(rest):
            raise ValueError(f"{train_size:,} training images asked for; {len(rest):,} are left beside a "
                             f"validation set of {val_size:,}")
        rest = rest[:train_size]
    return full.take(rest), full.take(val)


def split_listing(total: int, val_size: int) -> tuple[list[int], list[int]]:
    """(training, validation) indices of a training split too big to hold in memory (an ImageFolder listing):
    validation `val_size` indices spread evenly over it, so each class of a sorted listing gives its share."""
    held_out = evenly_spaced(total, val_size)
    if not 0 < len(held_out) < total:
        raise ValueError(f"a validation set of {val_size:,} images cannot come from {total:,} training images")
    return sorted(set(range(total)) - set(held_out)), held_out


def evenly_spaced(total: int, n: int) -> list[int]:
    """n indices spread evenly over range(total) (all of them when n >= total): every class of a sorted
    ImageFolder listing is represented."""
    return torch.linspace(0, total - 1, min(n, total)).long().tolist()


def experiment_data(profile, budget) -> Splits:
    """Training, validation and test sets of a section experiment (notebooks 02-07, 09, 10), cut to the budget.

    Validation is the profile's `val_size` training images outside every run's training subset
    (split_validation); the training subset is the budget's `train_size` of the rest (all of it when None, so a
    notebook that trains on every image trains on all but the validation set). These are CIFAR-scale
    experiments in every real profile: the imagenet profile runs them on CIFAR-10 too (with cifar's validation
    set), and measures the ImageNet claims with the full training (notebook 08).
    """
    if profile.dataset == "imagenet":
        from .profiles import PROFILES

        profile = PROFILES["cifar"]
    train, val = split_validation(load_dataset(profile, "train"), profile.val_size, budget.train_size, profile.seed)
    return Splits(train, val, load_dataset(profile, "test", limit=budget.test_size))


# ---------------------------------------------------------------- ImageFolder (ImageNet, Imagenette)


class ImageFolderDataset(torch.utils.data.Dataset):
    """An ImageFolder split with the paper's preprocessing: shorter side to 256, then the centre 256x256.

    Yields (uint8 3 x 256 x 256, label); random crops, flips and lighting run later, batched on the device.
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", size: int = 256):
        self.dir = Path(root) / split
        if not self.dir.is_dir():
            raise DataError(
                f"{self.dir} does not exist. Expected the ImageFolder layout of ILSVRC-2012:\n"
                f"  {root}/train/<wnid>/<image>.JPEG   (e.g. train/n01440764/n01440764_10026.JPEG)\n"
                f"  {root}/val/<wnid>/<image>.JPEG     (the validation images sorted into class folders; see README)"
            )
        files, labels, self.classes = list_image_folder(self.dir)
        # Two flat numpy arrays, not 1.28M Path objects: forked workers share their pages instead of
        # copying every page that Python's reference counts write to. Names relative to the split, as
        # bytes (1 byte a character, not numpy's 4 for str): ~40 MB for ImageNet's training set.
        self.files = np.array([os.fsencode(f.relative_to(self.dir)) for f in files])
        self.labels = np.array(labels, dtype=np.int64)
        self.resize = T.Compose([T.Resize(size, antialias=True), T.CenterCrop(size)])

    def __len__(self) -> int:
        return len(self.files)

    def path(self, i: int) -> Path:
        return self.dir / os.fsdecode(self.files[i])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        return self.resize(decode_file(self.path(i))), int(self.labels[i])


# ---------------------------------------------------------------- statistics


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean and std of uint8 images on the 0-255 scale (float64, chunked to save memory)."""
    total = torch.zeros(3, dtype=torch.float64)
    squares = torch.zeros(3, dtype=torch.float64)
    for start in range(0, len(images), chunk):
        x = images[start : start + chunk].to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        squares += (x**2).sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    return mean, (squares / count - mean**2).sqrt()
