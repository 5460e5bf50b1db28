"""The ImageNet path on a tiny generated ImageFolder tree of JPEG files: DataLoader workers decode,
the paper's augmentation runs batched on the device, and the whole command trains on it."""

import json

import pandas as pd
import pytest
import torch
from torchvision.io import write_jpeg

from alexnet_book import data, train
from alexnet_book.augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Normalize, TrainTransform
from alexnet_book.loaders import FolderLoader
from alexnet_book.timing import loader_throughput

CLASSES = ("n01440764", "n01443537")
SIZES = [(40, 60), (64, 48), (50, 50), (80, 30), (33, 77), (90, 64)]  # (height, width): shorter side varies


@pytest.fixture
def tree(tmp_path):
    """data root/imagenet/{train,val}/<wnid>/*.JPEG: 2 classes x 6 training and 3 validation images."""
    g = torch.Generator().manual_seed(0)
    for split, per_class in (("train", 6), ("val", 3)):
        for wnid in CLASSES:
            folder = tmp_path / "imagenet" / split / wnid
            folder.mkdir(parents=True)
            for i, size in enumerate(SIZES[:per_class]):
                image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=g)
                write_jpeg(image, str(folder / f"{wnid}_{i}.JPEG"), quality=90)
    return tmp_path


def augmenting(tree, **options) -> FolderLoader:
    dataset = data.ImageFolderDataset(tree / "imagenet", "train")
    mean, std = torch.full((3,), 120.0), torch.full((3,), 60.0)
    transform = TrainTransform(Normalize(mean, std), crop=224, lighting=(IMAGENET_EIGVAL, IMAGENET_EIGVEC))
    return FolderLoader(dataset, 4, shuffle=True, seed=1, transform=transform, **options)


def test_workers_decode_and_the_device_augments_paper_patches(tree):
    loader = augmenting(tree, workers=2)
    loader.set_epoch(0)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    for x, y in batches:
        assert x.shape == (4, 3, 224, 224) and x.dtype == torch.float32 and set(y.tolist()) <= {0, 1}
    assert abs(torch.cat([x for x, _ in batches]).mean().item()) < 1.5  # normalized, not 0-255
    speed = loader_throughput(loader, batches=10)
    assert speed["images"] == 8 and speed["img_per_s"] > 0  # two timed batches after the first
    print(f"\nloader on the tiny tree (2 workers): {speed['img_per_s']:.0f} img/s")


def test_a_resumed_epoch_continues_with_the_same_images_and_draws(tree):
    straight = augmenting(tree, workers=0)
    straight.set_epoch(1)
    batches = iter(straight)
    next(batches)
    position = straight.state_dict()  # after the first of three batches
    rest = list(batches)
    resumed = augmenting(tree, workers=0)
    resumed.set_epoch(1)
    resumed.load_state_dict(position)
    again = list(resumed)
    assert len(again) == len(rest) == 2
    for (x, y), (x2, y2) in zip(rest, again):
        assert torch.equal(x, x2) and torch.equal(y, y2)


def test_ranks_share_the_epoch_and_the_validation_set(tree):
    shards = [list(augmenting(tree, workers=0, rank=r, world_size=2).sampler) for r in (0, 1)]
    assert len(shards[0]) == len(shards[1]) == 6 and sorted(shards[0] + shards[1]) == list(range(12))
    val = data.ImageFolderDataset(tree / "imagenet", "val")
    labels = [y for r in (0, 1) for _, y in FolderLoader(val, 2, rank=r, world_size=2, workers=0)]
    assert sorted(torch.cat(labels).tolist()) == sorted(val.labels)  # every image once


def test_the_command_trains_on_an_image_folder_end_to_end(tree, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--profile", "imagenet", "--data-root", str(tree), "--epochs", "1", "--batch-size", "4",
            "--width", "0.0625", "--fc-size", "32", "--workers", "2", "--amp", "float32", "--out", str(out)]
    assert train.main(args) == 2  # the profile holds out 10,000 training images: not in a tree of 12
    assert "validation set of 10,000 images cannot come from 12 training images" in capsys.readouterr().err
    assert train.main([*args, "--val-size", "2"]) == 0  # one image of each class held out, 10 trained on
    history = pd.read_csv(out / "history.csv")
    assert len(history) == 1 and history["img_per_s"].iloc[0] > 0
    record = json.loads((out / "run.json").read_text())
    assert record["profile"] == "imagenet" and record["config"]["workers"] == 2
    assert set(record["final"]) == {"centre_top1", "centre_top5", "ten_top1", "ten_top5"}
    assert record["final"]["centre_top5"] == 0  # two classes: the label is always in the top 5
    assert list((tmp_path / "cache").glob("imagenet-stats-*.pt"))  # channel statistics, computed once


def test_workers_share_the_node_cores_and_the_file_list_is_flat(tree, monkeypatch):
    from alexnet_book.loaders import default_workers

    monkeypatch.setattr("os.cpu_count", lambda: 64)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
    assert default_workers() == 8
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "16")
    assert default_workers() == 4
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    assert default_workers() == 1
    dataset = data.ImageFolderDataset(tree / "imagenet", "train")
    # two arrays, no Path objects; names as bytes relative to the split, one byte a character
    assert dataset.files.dtype.kind == "S" and dataset.labels.dtype == "int64"
    assert dataset.files[0] == b"n01440764/n01440764_0.JPEG" and dataset.files.itemsize == len(dataset.files[0])
    assert dataset.path(0) == tree / "imagenet" / "train" / "n01440764" / "n01440764_0.JPEG"
    image, label = dataset[0]
    assert image.shape == (3, 256, 256) and isinstance(label, int)


def test_only_the_training_loader_keeps_its_worker_pool(tree):
    dataset = data.ImageFolderDataset(tree / "imagenet", "train")
    assert FolderLoader(dataset, 2, shuffle=True, workers=1).loader.persistent_workers
    assert not FolderLoader(dataset, 2, workers=1).loader.persistent_workers  # test and ten-patch: once an epoch
