"""Your own images: any folder of labelled photos, made ready for the paper's AlexNet (`alexnet-book-train --images DIR`).

Two layouts: DIR/train/<class>/ beside DIR/val/<class>/, or one DIR/<class>/ tree that `stratified_split`
divides into training and validation images (seeded, and recorded in the run's split.json). Every image is
resized the paper's way (shorter side to `side`, then the centre side x side) and decoded once into a cached
uint8 tensor, like CIFAR-10 (data.py): a few thousand photos at 256 take a few GB, and batches, crops, flips
and lighting then run as tensor ops with no decoding per epoch. The class names, the channel mean and std
and the PCA of the pixels for the lighting noise all come from the user's training images, not ImageNet's.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torchvision.io import encode_png
from torchvision.transforms import v2 as T

from . import data
from .augment import rgb_pca
from .data import DataError, ImageSet

with warnings.catch_warnings():  # as in engine.py: text bars without ipywidgets, and no warning about it
    warnings.filterwarnings("ignore", "IProgress not found")
    from tqdm.auto import tqdm

SIDE = 256  # the paper's: shorter side to 256, then the central 256x256
VAL_FRACTION = 0.2
STATS_IMAGES = 1000  # training images sampled for the mean, std and PCA, as for ImageNet (train.STATS_IMAGES)
LAYOUTS = "DIR/<class>/<image>.jpg (split into train and val here), or DIR/train/<class>/ beside DIR/val/<class>/"


@dataclass(frozen=True)
class OwnImages:
    """A user's folder, decoded: training and validation images, the statistics the run normalizes and
    lights them with, and what to record of where they came from (layout, split)."""

    train: ImageSet
    val: ImageSet
    stats: dict[str, torch.Tensor]  # mean, std (0-255 scale), eigval, eigvec (rgb_pca's [0, 1] scale)
    record: dict
    split: dict


# ---------------------------------------------------------------- layout and checks


def layout(root: str | os.PathLike) -> str:
    """"train/val" when root holds both train/ and val/, "one tree" when it holds class folders."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root} is not a folder; expected {LAYOUTS}")
    train, val = (root / "train").is_dir(), (root / "val").is_dir()
    if train != val:
        have, missing = ("train", "val") if train else ("val", "train")
        raise DataError(f"{root} has {have}/ but no {missing}/ beside it; expected {LAYOUTS}")
    return "train/val" if train else "one tree"


def check_classes(folder: Path) -> tuple[str, ...]:
    """The class folders of `folder`, sorted; one line of error for fewer than two or an empty one."""
    classes = tuple(sorted(d.name for d in folder.iterdir() if d.is_dir()))
    if len(classes) < 2:
        found = f"one class folder ({classes[0]})" if classes else "no class folders"
        raise DataError(f"{folder} has {found}; a classifier needs two or more: {folder}/<class>/<image>.jpg")
    empty = [name for name in classes
             if not any(p.suffix.lower() in data.IMAGE_SUFFIXES for p in (folder / name).iterdir())]
    if empty:
        raise DataError(f"class folder {folder / empty[0]} has no images ({', '.join(sorted(data.IMAGE_SUFFIXES))})"
                        + (f"; nor have {len(empty) - 1} more" if len(empty) > 1 else ""))
    return classes


def same_classes(train: tuple[str, ...], val: tuple[str, ...], where: str) -> None:
    if train != val:
        only_train, only_val = sorted(set(train) - set(val)), sorted(set(val) - set(train))
        raise DataError(f"{where}: the training and validation classes differ (only in train: "
                        f"{', '.join(only_train) or 'none'}; only in val: {', '.join(only_val) or 'none'})")


# ---------------------------------------------------------------- decoding


def decode_tree(folder: str | os.PathLike, side: int = SIDE, classes: tuple[str, ...] | None = None) -> tuple[ImageSet, list[str]]:
    """A <class>/<image> tree as an ImageSet of uint8 side x side images (shorter side to `side`, then the
    centre), and each image's path relative to `folder`; decoded once, then read from the cache.
    `classes` (a trained run's) must be the tree's own."""
    folder = Path(folder)
    found = check_classes(folder)
    if classes is not None:
        same_classes(tuple(classes), found, str(folder))
    listing = data.ImageFolderDataset(folder.parent, folder.name, size=side)  # the paper's resize, as for ImageNet
    need = len(listing) * 3 * side * side
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    if need > memory / 2:
        raise DataError(f"{len(listing):,} images at {side}x{side} need {need / 2**30:.1f} GiB in memory, over half of "
                        f"this machine's {memory / 2**30:.0f} GiB; pass a smaller --image-size")

    def build() -> dict:
        images = torch.empty(len(listing), 3, side, side, dtype=torch.uint8)
        for i in tqdm(range(len(listing)), desc=f"decoding {folder.name}", unit="img", mininterval=2):
            images[i] = listing[i][0]
        return {"images": images, "labels": torch.from_numpy(listing.labels), "classes": listing.classes,
                "files": [os.fsdecode(f) for f in listing.files]}

    decoded = data.cached(f"images-{side}", folder, build)
    return ImageSet(decoded["images"], decoded["labels"], tuple(decoded["classes"])), decoded["files"]


def load_images(paths, side: int = SIDE) -> torch.Tensor:
    """Image files (any size) as one uint8 N x 3 x side x side tensor, resized as in training."""
    missing = [str(p) for p in paths if not Path(p).is_file()]
    if missing:
        raise DataError(f"no such image file: {', '.join(missing)}")
    resize = T.Compose([T.Resize(side, antialias=True), T.CenterCrop(side)])  # data.ImageFolderDataset's
    return torch.stack([resize(data.decode_file(Path(p))) for p in paths])


# ---------------------------------------------------------------- split and statistics


def stratified_split(labels: torch.Tensor, fraction: float = VAL_FRACTION, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, validation) indices, sorted: `fraction` of every class (at least one image, and never
    all of a class's images) drawn at random with `seed`, so every class keeps its share in both."""
    if not 0 < fraction < 1:
        raise ValueError(f"the validation fraction must be between 0 and 1, not {fraction}")
    generator = torch.Generator().manual_seed(seed)
    val = []
    for c in labels.unique().tolist():
        index = (labels == c).nonzero().flatten()
        k = min(max(1, round(fraction * len(index))), len(index) - 1)
        val.append(index[torch.randperm(len(index), generator=generator)[:k]])
    val = torch.cat(val).sort().values
    keep = torch.ones(len(labels), dtype=torch.bool)
    keep[val] = False
    return keep.nonzero().flatten(), val


def image_stats(train: ImageSet, source: Path, files: list[Path]) -> dict[str, torch.Tensor]:
    """The channel mean and std and the pixels' PCA (augment.rgb_pca) of up to STATS_IMAGES training images
    spread over every class, cached by those files like ImageNet's statistics."""
    sample = data.evenly_spaced(len(train), STATS_IMAGES)

    def build() -> dict:
        images = train.images[sample]
        mean, std = data.channel_stats(images)
        eigval, eigvec = rgb_pca(images)
        return {"mean": mean, "std": std, "eigval": eigval, "eigvec": eigvec, "images": len(sample)}

    side = train.images.shape[-1]
    return data.cached(f"image-stats-{side}", source, build, files=[files[i] for i in sample])


def load(root: str | os.PathLike, side: int = SIDE, val_fraction: float = VAL_FRACTION, split_seed: int = 0) -> OwnImages:
    """A user's labelled folder in either layout, decoded at `side`, split (one tree) and measured."""
    root = Path(root)
    kind = layout(root)
    if kind == "train/val":
        train, train_files = decode_tree(root / "train", side)
        val, val_files = decode_tree(root / "val", side)
        same_classes(train.classes, val.classes, str(root))
        train_files = [root / "train" / f for f in train_files]
        split = {"layout": kind, "val_files": [f"val/{f}" for f in val_files]}
    else:
        whole, files = decode_tree(root, side)
        train_index, val_index = stratified_split(whole.labels, val_fraction, split_seed)
        train = ImageSet(whole.images[train_index], whole.labels[train_index], whole.classes)
        val = ImageSet(whole.images[val_index], whole.labels[val_index], whole.classes)
        train_files = [root / files[i] for i in train_index.tolist()]
        split = {"layout": kind, "seed": split_seed, "val_fraction": val_fraction,
                 "val_files": [files[i] for i in val_index.tolist()]}
    stats = image_stats(train, root, train_files)
    counts = {name: {"train": int((train.labels == c).sum()), "val": int((val.labels == c).sum())}
              for c, name in enumerate(train.classes)}
    record = {"root": str(root.resolve()), "layout": kind, "image_size": side, "classes": list(train.classes),
              "images": counts, "stats_images": int(stats["images"]),
              **{k: stats[k].tolist() for k in ("mean", "std", "eigval", "eigvec")}}
    return OwnImages(train, val, stats, record, split)


# ---------------------------------------------------------------- example folders (notebook 12, tests)


def write_tree(images: ImageSet, folder: str | os.PathLike, per_class: int, classes: int | None = None) -> Path:
    """The first `per_class` images of each of the first `classes` classes as folder/<class>/NNNNN.png:
    a labelled photo folder made from a dataset in memory."""
    folder = Path(folder)
    for c, name in enumerate(images.classes[:classes]):
        index = (images.labels == c).nonzero().flatten()[:per_class]
        if len(index) < per_class:
            raise DataError(f"{name} has {len(index)} images, fewer than the {per_class} asked for")
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in index.tolist():
            (folder / name / f"{i:05d}.png").write_bytes(encode_png(images.images[i]).numpy().tobytes())
    return folder


def stand_in_photos(profile, folder: str | os.PathLike, photos: int, held_out: int, classes: int = 5) -> tuple[Path, Path]:
    """Notebook 12's stand-in for a user's photos: `photos` labelled images of `classes` classes in
    folder/photos/<class>/ (one tree, to be split), and `held_out` others of the same classes in
    folder/held_out/<class>/ to predict on. The smoke profile draws synthetic shapes (data.synthetic);
    the others take CIFAR-10's first classes, training images for the photos and test images held out."""
    if profile.dataset == "synthetic":
        pool = data.synthetic(4 * (photos + held_out), profile.image_size, classes, profile.seed)  # enough of each class
        half = len(pool) // 2
        train = ImageSet(pool.images[:half], pool.labels[:half], pool.classes)
        test = ImageSet(pool.images[half:], pool.labels[half:], pool.classes)
    else:
        train, test = data.load_cifar10("train"), data.load_cifar10("test")
    folder = Path(folder)
    return (write_tree(train, folder / "photos", photos // classes, classes),
            write_tree(test, folder / "held_out", held_out // classes, classes))
