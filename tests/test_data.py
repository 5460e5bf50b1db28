import os
from pathlib import Path

import pytest
import torch
from torchvision.io import write_jpeg

from alexnet_book import data
from alexnet_book.augment import Normalize
from alexnet_book.data import CIFAR10_CLASSES, DataError
from alexnet_book.loaders import TensorLoader


def write_folder(root: Path, split: str, classes=CIFAR10_CLASSES, per_class=2, size=(32, 32), seed=0):
    g = torch.Generator().manual_seed(seed)
    for c in classes:
        (root / split / c).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            image = torch.randint(0, 256, (3, *size), dtype=torch.uint8, generator=g)
            write_jpeg(image, str(root / split / c / f"{i:04d}.jpg"), quality=95)


# ------------------------------------------------------------------ synthetic


def test_synthetic_is_deterministic_and_seeded():
    a, b, c = data.synthetic(64, seed=3), data.synthetic(64, seed=3), data.synthetic(64, seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert not torch.equal(a.images, c.images)


def test_synthetic_any_resolution_and_all_classes():
    s = data.synthetic(500, size=64, num_classes=10)
    assert s.images.shape == (500, 3, 64, 64) and s.images.dtype == torch.uint8
    assert set(s.labels.tolist()) == set(range(10)) and len(s.classes) == 10


def test_synthetic_colour_carries_class_information():
    s = data.synthetic(2000)
    warm, cool = s.images[s.labels < 5].float(), s.images[s.labels >= 5].float()
    # the shape colour is red-dominant for warm classes and blue-dominant for cool ones
    assert (warm[:, 0] - warm[:, 2]).mean() > (cool[:, 0] - cool[:, 2]).mean() + 5


def test_synthetic_rejects_too_many_classes():
    with pytest.raises(ValueError, match="1 to 10 classes"):
        data.synthetic(10, num_classes=11)


# ------------------------------------------------------------------ CIFAR-10 from files


def test_missing_cifar_says_where_it_looked_and_how_to_get_it(tmp_path):
    with pytest.raises(DataError) as error:
        data.load_cifar10("train", root=tmp_path)
    message = str(error.value)
    assert str(tmp_path / "cifar-10-batches-py") in message
    assert str(tmp_path / "cifar10-jpeg") in message
    assert "ALEXNET_BOOK_DOWNLOAD=1" in message and "ALEXNET_BOOK_DATA" in message


def test_cifar_image_folder_is_decoded_once_and_cached(tmp_path, monkeypatch):
    write_folder(tmp_path / "cifar10-jpeg", "train", per_class=3)
    first = data.load_cifar10("train", root=tmp_path)
    assert first.images.shape == (30, 3, 32, 32) and first.images.dtype == torch.uint8
    assert first.labels.bincount().tolist() == [3] * 10 and first.classes == CIFAR10_CLASSES
    monkeypatch.setattr(data, "decode_files", lambda files: pytest.fail("decoded twice"))
    again = data.load_cifar10("train", root=tmp_path)
    assert torch.equal(first.images, again.images)


def test_data_root_from_environment(tmp_path, monkeypatch):
    write_folder(tmp_path / "cifar10", "test", per_class=1)
    monkeypatch.setenv("ALEXNET_BOOK_DATA", str(tmp_path))
    assert len(data.load_cifar10("test")) == 10


def test_corrupt_image_is_named(tmp_path):
    write_folder(tmp_path / "cifar10-jpeg", "train", per_class=2)
    bad = tmp_path / "cifar10-jpeg" / "train" / "cat" / "0001.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is not really a jpeg")
    with pytest.raises(DataError, match=f"cannot decode image file {bad}"):
        data.load_cifar10("train", root=tmp_path)


def test_wrong_layout_shows_expected_layout(tmp_path):
    write_folder(tmp_path / "cifar10-jpeg" / "oops", "train", per_class=1)  # one level too deep
    with pytest.raises(DataError, match=r"no test/ folder\. Expected the layout:\n.*/train/<class>/<image>\.jpg"):
        data.load_cifar10("test", root=tmp_path)


def test_wrong_classes_are_reported(tmp_path):
    write_folder(tmp_path / "cifar10-jpeg", "train", classes=("cat", "dog"), per_class=1)
    with pytest.raises(DataError, match="CIFAR-10's are"):
        data.load_cifar10("train", root=tmp_path)


def test_empty_class_folders_show_expected_layout(tmp_path):
    (tmp_path / "cifar10-jpeg" / "train" / "cat").mkdir(parents=True)
    with pytest.raises(DataError, match="no images found.*Expected the ImageFolder layout"):
        data.load_cifar10("train", root=tmp_path)


def test_unknown_split():
    with pytest.raises(ValueError, match="'train' and 'test'"):
        data.load_cifar10("val")


def test_torchvision_binary_format_is_converted_to_nchw(tmp_path, monkeypatch):
    (tmp_path / "cifar-10-batches-py").mkdir()
    pixels = torch.randint(0, 256, (4, 32, 32, 3), dtype=torch.uint8)

    class FakeCIFAR10:  # torchvision's CIFAR10 keeps NHWC numpy arrays and a list of targets
        def __init__(self, root, train, download):
            assert root == str(tmp_path) and train and not download
            self.data, self.targets, self.classes = pixels.numpy(), [0, 1, 2, 3], list(CIFAR10_CLASSES)

    monkeypatch.setattr(data.torchvision.datasets, "CIFAR10", FakeCIFAR10)
    loaded = data.load_cifar10("train", root=tmp_path)
    assert torch.equal(loaded.images, pixels.permute(0, 3, 1, 2))
    assert loaded.labels.tolist() == [0, 1, 2, 3]


@pytest.mark.skipif(not (Path(os.environ.get("ALEXNET_BOOK_DATA", "/nonexistent")) / "cifar10-jpeg").is_dir(),
                    reason="real CIFAR-10 not available (set ALEXNET_BOOK_DATA)")
def test_real_cifar10_matches_its_readme():
    train, test = data.load_cifar10("train"), data.load_cifar10("test")
    assert train.images.shape == (50_000, 3, 32, 32) and test.images.shape == (10_000, 3, 32, 32)
    assert train.labels.bincount().tolist() == [5000] * 10 and test.labels.bincount().tolist() == [1000] * 10
    mean, _ = data.channel_stats(train.images)
    assert torch.allclose(mean, torch.tensor([125.3, 122.9, 113.9], dtype=torch.float64), atol=0.1)


# ------------------------------------------------------------------ ImageFolder (ImageNet layout)


def test_image_folder_dataset_applies_paper_preprocessing(tmp_path):
    write_folder(tmp_path, "train", classes=("n01", "n02"), per_class=2, size=(300, 400))
    ds = data.ImageFolderDataset(tmp_path, "train")
    assert len(ds) == 4 and ds.classes == ("n01", "n02")
    image, label = ds[3]
    assert image.shape == (3, 256, 256) and image.dtype == torch.uint8 and label == 1
    batch = next(iter(torch.utils.data.DataLoader(ds, batch_size=4, num_workers=2)))
    assert batch[0].shape == (4, 3, 256, 256) and batch[1].tolist() == [0, 0, 1, 1]


def test_image_folder_centre_crop_keeps_the_centre(tmp_path):
    (tmp_path / "val" / "n01").mkdir(parents=True)
    image = torch.zeros(3, 256, 512, dtype=torch.uint8)
    image[:, :, 128:384] = 200  # a bright centre square; the sides are dark and must be cropped away
    write_jpeg(image, str(tmp_path / "val" / "n01" / "a.jpg"), quality=100)
    out, _ = data.ImageFolderDataset(tmp_path, "val")[0]
    assert out[:, :, 8:-8].float().mean() > 190


def test_image_folder_missing_split_shows_layout(tmp_path):
    with pytest.raises(DataError, match=r"does not exist\. Expected the ImageFolder layout of ILSVRC-2012"):
        data.ImageFolderDataset(tmp_path, "val")


# ------------------------------------------------------------------ tensors, batches, normalization


def test_channel_stats_match_torch():
    images = torch.randint(0, 256, (50, 3, 8, 8), dtype=torch.uint8)
    mean, std = data.channel_stats(images, chunk=7)
    x = images.double().permute(1, 0, 2, 3).reshape(3, -1)
    assert torch.allclose(mean, x.mean(1)) and torch.allclose(std, x.std(1, unbiased=False))


def test_normalize_centres_and_resizes():
    images = data.synthetic(200).images
    mean, std = data.channel_stats(images)
    assert Normalize(mean, std, size=64)(images).shape == (200, 3, 64, 64)
    x = Normalize(mean, std)(images)
    assert x.shape == (200, 3, 32, 32)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 0.05 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 0.05


def test_tensor_loader_shuffles_per_epoch_and_repeats_exactly():
    s = data.synthetic(100)
    loader = TensorLoader(s, 32, shuffle=True, seed=1)
    assert len(loader) == 4 and len(TensorLoader(s, 32, drop_last=True)) == 3
    epoch0 = torch.cat([y for _, y in loader])
    loader.set_epoch(1)
    epoch1 = torch.cat([y for _, y in loader])
    loader.set_epoch(0)
    assert torch.equal(torch.cat([y for _, y in loader]), epoch0)  # a resumed epoch sees the same batches
    assert not torch.equal(epoch0, epoch1)
    assert sorted(epoch0.tolist()) == sorted(s.labels.tolist())  # every image exactly once


def test_subset_is_fixed_and_sized():
    s = data.synthetic(100)
    a, b = s.subset(30, seed=5), s.subset(30, seed=5)
    assert len(a) == 30 and torch.equal(a.images, b.images)
    assert s.subset(None) is s and s.subset(1000) is s


def test_cache_key_follows_the_folder_contents_and_a_stray_temp_file_does_no_harm(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "cache"))
    source = tmp_path / "images"
    (source / "a").mkdir(parents=True)
    (source / "a" / "1.jpg").write_bytes(b"x" * 10)
    builds = []
    build = lambda: builds.append(1) or {"n": len(builds)}  # noqa: E731
    first = data.fingerprint(source)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / f"thing-{first}.999.tmp").write_bytes(b"half-written by another process")
    assert data.cached("thing", source, build) == {"n": 1}
    assert data.cached("thing", source, build) == {"n": 1} and len(builds) == 1  # read back, not rebuilt
    (source / "a" / "2.jpg").write_bytes(b"y")
    assert data.fingerprint(source) != first
    assert data.cached("thing", source, build) == {"n": 2}  # a changed folder is not read from the stale cache
    (source / "a" / "2.jpg").write_bytes(b"yy")  # same names, another size
    assert data.cached("thing", source, build) == {"n": 3}
    assert not list((tmp_path / "cache").glob(f"*.{os.getpid()}.tmp"))


def test_a_cache_built_from_some_files_is_keyed_by_those_files_alone(tmp_path):
    source = tmp_path / "images"
    (source / "a").mkdir(parents=True)
    sample, other = source / "a" / "1.jpg", source / "a" / "2.jpg"
    sample.write_bytes(b"x")
    other.write_bytes(b"y")
    first = data.fingerprint(source, files=[sample])
    other.write_bytes(b"yyy")  # not read by the build: the same key
    assert data.fingerprint(source, files=[sample]) == first
    sample.write_bytes(b"xx")  # read by the build: a new key
    assert data.fingerprint(source, files=[sample]) != first
    assert data.fingerprint(source) == data.fingerprint(source, files=[sample, other])  # all files: the same walk


def test_a_cache_built_by_a_download_is_keyed_by_what_was_downloaded(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "cache"))
    source, builds = tmp_path / "cifar-10-batches-py", []

    def download():
        source.mkdir(exist_ok=True)
        (source / "data_batch_1").write_bytes(b"z" * 5)
        builds.append(1)
        return {"n": len(builds)}

    assert data.cached("thing", source, download) == {"n": 1}  # the folder did not exist before the build
    assert [p.name for p in (tmp_path / "cache").iterdir()] == [f"thing-{data.fingerprint(source)}.pt"]
    assert data.cached("thing", source, download) == {"n": 1} and len(builds) == 1  # found on the next run


def test_validation_never_meets_training_and_keeps_the_old_subsets():
    full = data.ImageSet(torch.zeros(100, 3, 2, 2, dtype=torch.uint8), torch.arange(100), ())
    train, val = data.split_validation(full, val_size=30, train_size=40, seed=0)
    assert len(train) == 40 and len(val) == 30
    assert not set(train.labels.tolist()) & set(val.labels.tolist())
    assert train.labels.tolist() == full.subset(40, seed=0).labels.tolist()  # the same 40 images as before
    again, val_again = data.split_validation(full, val_size=30, train_size=None, seed=0)
    assert torch.equal(val_again.labels, val.labels) and len(again) == 70  # one validation set per profile


def test_a_listing_too_big_for_memory_holds_out_every_class_share():
    """An ImageFolder listing sorted by class (4 classes of 25): 8 held out, 2 of each class, none trained on."""
    train, held_out = data.split_listing(100, 8)
    assert len(held_out) == 8 and sorted(train + held_out) == list(range(100))
    assert [i // 25 for i in held_out] == [0, 0, 1, 1, 2, 2, 3, 3]
    for size in (0, 100, 150):
        with pytest.raises(ValueError, match="validation"):
            data.split_listing(100, size)


@pytest.mark.parametrize("val_size, train_size", [(0, 10), (100, None), (30, 71)])
def test_a_validation_split_that_cannot_be_had_says_why(val_size, train_size):
    full = data.ImageSet(torch.zeros(100, 3, 2, 2, dtype=torch.uint8), torch.arange(100), ())
    with pytest.raises(ValueError, match="validation"):
        data.split_validation(full, val_size=val_size, train_size=train_size, seed=0)


def test_a_section_experiment_gets_three_splits_and_the_validation_set_is_the_same_for_every_budget():
    from alexnet_book.profiles import PROFILES, Budget

    smoke = PROFILES["smoke"]
    small, whole = (data.experiment_data(smoke, Budget(train_size=n)) for n in (500, None))
    train, val, test = small
    assert (len(train), len(val), len(test)) == (500, smoke.val_size, smoke.synthetic_sizes[1])
    assert len(whole.train) == smoke.synthetic_sizes[0] - smoke.val_size  # all but the validation set
    assert torch.equal(whole.val.images, val.images)
    assert torch.equal(train.images, data.load_dataset(smoke, "train", limit=500).images)  # the old subset
    seen = {bytes(image.numpy()) for image in whole.train.images}
    assert not any(bytes(image.numpy()) in seen for image in val.images)  # validation never trains
    assert PROFILES["cifar"].val_size == 5_000 and "300 validation" in small.sizes()
