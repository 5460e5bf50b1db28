"""Your own images (folders.py, `alexnet-book-train --images`, `alexnet-book-predict`): generated image trees
in both layouts, the split, the class names, the statistics, each bad input, a resumed run and the top-5."""

import json
import re

import pandas as pd
import pytest
import torch
from torchvision.io import encode_jpeg, encode_png

from alexnet_book import data, folders, predict, train
from alexnet_book.augment import IMAGENET_EIGVEC, rgb_pca
from alexnet_book.data import DataError

# A tiny AlexNet (kernels 6-16-24-24-16, fc 32) at the paper's 224 input: seconds an epoch on the CPU.
TINY = ["--profile", "smoke", "--batch-size", "8", "--width", "0.0625", "--fc-size", "32", "--lr", "0.02",
        "--device", "cpu", "--image-size", "40"]


def shapes(n: int, classes: int, seed: int = 0) -> data.ImageSet:
    return data.synthetic(n, 48, classes, seed)


def one_tree(root, classes: int = 3, per_class: int = 10):
    return folders.write_tree(shapes(40 * classes, classes), root, per_class)


def train_val_tree(root, classes: int = 3, per_class: int = 8):
    folders.write_tree(shapes(40 * classes, classes, seed=0), root / "train", per_class)
    folders.write_tree(shapes(40 * classes, classes, seed=1), root / "val", per_class // 2)
    return root


def cli_error(capsys, argv) -> str:
    """The one line train.main prints for a usage error (exit 2)."""
    assert train.main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip() and "img/s]" not in line]  # no bars
    assert len(err) == 1 and err[0].startswith("alexnet-book-train: error: "), err
    return err[0]


# ---------------------------------------------------------------- layouts, split, names, resizing


def test_both_layouts_are_recognised(tmp_path):
    assert folders.layout(one_tree(tmp_path / "one")) == "one tree"
    assert folders.layout(train_val_tree(tmp_path / "two")) == "train/val"
    (tmp_path / "half" / "train" / "a").mkdir(parents=True)
    with pytest.raises(DataError, match="has train/ but no val/ beside it"):
        folders.layout(tmp_path / "half")


def test_split_is_stratified_seeded_and_recorded(tmp_path):
    labels = torch.tensor([0] * 10 + [1] * 20 + [2] * 5)
    train_index, val_index = folders.stratified_split(labels, 0.2, seed=3)
    assert sorted(train_index.tolist() + val_index.tolist()) == list(range(35))  # disjoint, and nothing lost
    assert torch.bincount(labels[val_index]).tolist() == [2, 4, 1]  # every class its share
    assert torch.equal(folders.stratified_split(labels, 0.2, seed=3)[1], val_index)
    assert not torch.equal(folders.stratified_split(labels, 0.2, seed=4)[1], val_index)
    with pytest.raises(ValueError, match="between 0 and 1"):
        folders.stratified_split(labels, 1.0)

    own = folders.load(one_tree(tmp_path / "one", per_class=10), side=32, val_fraction=0.3, split_seed=5)
    assert own.split == {"layout": "one tree", "seed": 5, "val_fraction": 0.3, "val_files": own.split["val_files"]}
    assert len(own.split["val_files"]) == len(own.val) == 9 and len(own.train) == 21
    assert {f.split("/")[0] for f in own.split["val_files"]} == set(own.train.classes)
    assert own.record["images"]["warm-disk"] == {"train": 7, "val": 3}


def test_class_names_come_from_the_folders(tmp_path):
    own = folders.load(train_val_tree(tmp_path / "two"), side=32)
    assert own.train.classes == own.val.classes == ("warm-disk", "warm-hbar", "warm-square")  # sorted folder names
    assert own.record["classes"] == list(own.train.classes) and own.record["layout"] == "train/val"
    assert len(own.train) == 24 and len(own.val) == 12
    assert own.split["val_files"][0].startswith("val/warm-disk/")


def test_images_of_any_size_are_resized_the_papers_way(tmp_path):
    """Shorter side to the side asked for, then the centre: a 32x64 image with red side bands and a green
    middle half becomes a green 16x16 square; JPEG and PNG, portrait and landscape, one size out."""
    wide = torch.zeros(3, 32, 64, dtype=torch.uint8)
    wide[0, :, :16], wide[0, :, 48:], wide[1, :, 16:48] = 255, 255, 255
    for name, image in {"a": wide, "b": wide.transpose(1, 2).contiguous()}.items():
        (tmp_path / "tree" / name).mkdir(parents=True)
        (tmp_path / "tree" / name / "x.png").write_bytes(encode_png(image).numpy().tobytes())
        (tmp_path / "tree" / name / "y.jpg").write_bytes(encode_jpeg(image, quality=100).numpy().tobytes())
    images, files = folders.decode_tree(tmp_path / "tree", side=16)
    assert images.images.shape == (4, 3, 16, 16) and files == ["a/x.png", "a/y.jpg", "b/x.png", "b/y.jpg"]
    centre = images.images.float().mean(dim=(0, 2, 3))
    assert centre[1] > 240 and centre[0] < 15  # green only: the red bands were cut off
    assert torch.equal(folders.load_images([tmp_path / "tree" / "a" / "x.png"], 16)[0], images.images[0])


def test_statistics_come_from_the_users_images_and_are_cached(tmp_path):
    """Red and blue photos: a mean of half red and half blue, and a first PCA direction along red-blue,
    nothing like ImageNet's (near grey); a second load reads the cache."""
    for name, colour in {"blue": (0, 0, 255), "red": (255, 0, 0)}.items():
        (tmp_path / "tree" / name).mkdir(parents=True)
        image = torch.tensor(colour, dtype=torch.uint8).view(3, 1, 1).expand(3, 20, 30).contiguous()
        for i in range(5):
            (tmp_path / "tree" / name / f"{i}.png").write_bytes(encode_png(image).numpy().tobytes())
    own = folders.load(tmp_path / "tree", side=16, val_fraction=0.2)
    mean, std = data.channel_stats(own.train.images)
    assert torch.allclose(own.stats["mean"], torch.tensor([127.5, 0.0, 127.5], dtype=torch.float64))
    assert torch.allclose(own.stats["std"], std) and torch.allclose(own.stats["mean"], mean)
    first = own.stats["eigvec"][:, 0]
    assert torch.allclose(first.abs(), torch.tensor([0.7071, 0.0, 0.7071]), atol=1e-3)
    assert (first @ IMAGENET_EIGVEC[:, 0]).abs() < 0.1  # not ImageNet's lighting
    assert torch.allclose(own.stats["eigval"], rgb_pca(own.train.images)[0])
    assert own.record["mean"] == own.stats["mean"].tolist() and own.record["stats_images"] == len(own.train)
    cache = sorted(p.name.split("-")[0] + "-" + p.name.split("-")[1] for p in data.cache_dir().glob("*.pt"))
    assert cache == ["image-stats", "images-16"]
    assert folders.load(tmp_path / "tree", side=16, val_fraction=0.2).stats["images"] == own.stats["images"]


# ---------------------------------------------------------------- bad input: one clear line each


def test_a_folder_with_one_class(tmp_path, capsys):
    folders.write_tree(shapes(40, 1), tmp_path / "one", 5)
    line = cli_error(capsys, ["--images", str(tmp_path / "one"), *TINY])
    assert "has one class folder (warm-disk); a classifier needs two or more" in line


def test_a_class_with_no_images(tmp_path, capsys):
    root = one_tree(tmp_path / "one")
    (root / "empty").mkdir()
    (root / "empty" / "notes.txt").write_text("no photos here")
    line = cli_error(capsys, ["--images", str(root), *TINY])
    assert f"class folder {root / 'empty'} has no images" in line


def test_an_unreadable_image_is_named(tmp_path, capsys):
    root = one_tree(tmp_path / "one")
    (root / "warm-hbar" / "broken.jpg").write_bytes(b"not a jpeg at all")
    line = cli_error(capsys, ["--images", str(root), *TINY])
    assert f"cannot decode image file {root / 'warm-hbar' / 'broken.jpg'}" in line


def test_train_and_val_with_other_classes(tmp_path, capsys):
    root = train_val_tree(tmp_path / "two")
    (root / "val" / "warm-square").rename(root / "val" / "warm-ring")
    line = cli_error(capsys, ["--images", str(root), *TINY])
    assert "the training and validation classes differ (only in train: warm-square; only in val: warm-ring)" in line


# ---------------------------------------------------------------- a run, resumed, and its predictions


def test_a_run_on_one_tree_writes_its_record_and_resumes(tmp_path, capsys):
    root, out = one_tree(tmp_path / "photos"), tmp_path / "run"
    assert train.main(["--images", str(root), *TINY, "--epochs", "1", "--out", str(out)]) == 0
    first = pd.read_csv(out / "history.csv")
    assert train.main(["--images", str(root), *TINY, "--epochs", "2", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"resuming {out / 'checkpoint.pt'}" in err and re.search(r"training: [\d.]+ img/s", err)
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == [1, 2]  # the second run continued; it did not start again
    pd.testing.assert_frame_equal(history.iloc[:1], first)
    assert (out / "learning_curves.png").stat().st_size > 0
    record, split = (json.loads((out / name).read_text()) for name in ("images.json", "split.json"))
    assert record["classes"] == ["warm-disk", "warm-hbar", "warm-square"] and record["image_size"] == 40
    assert split["layout"] == "one tree" and len(split["val_files"]) == 6
    config = json.loads((out / "config.json").read_text())
    assert config["images"] == str(root.resolve()) and config["train_size"] is None  # every image, not a budget's
    with pytest.raises(SystemExit):  # --images needs a folder
        train.main([*TINY, "--images"])


def test_predict_prints_the_top5_names_with_probabilities(tmp_path, capsys):
    root, out = train_val_tree(tmp_path / "photos", classes=6, per_class=4), tmp_path / "run"
    assert train.main(["--images", str(root), *TINY, "--epochs", "1", "--out", str(out)]) == 0
    capsys.readouterr()
    photos = sorted((root / "val").glob("*/*.png"))[:2]
    for extra in ([], ["--ten-patch"]):
        assert predict.main(["--run", str(out), *map(str, photos), "--device", "cpu", *extra]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert lines[0] == str(photos[0]) and lines[6] == str(photos[1])
        shown = [re.fullmatch(r"\s+([\d.]+)%  (\S+)", line).groups() for line in lines[1:6]]
        probs = [float(p) for p, _ in shown]
        assert probs == sorted(probs, reverse=True) and 0 < sum(probs) <= 100.05
        assert {name for _, name in shown} < set(json.loads((out / "images.json").read_text())["classes"])
    trained = predict.load_run(out, "cpu")
    images = folders.load_images(photos, trained.image_size)
    probs, classes = trained.top5(images)
    assert probs.shape == classes.shape == (2, 5)
    assert torch.allclose(trained.probabilities(images, ten_patch=True).sum(dim=1), torch.ones(2))
    assert predict.main(["--run", str(tmp_path), str(photos[0])]) == 2
    assert "is not a finished `alexnet-book-train --images` run" in capsys.readouterr().err


def test_confusion_counts_true_against_predicted_classes():
    probs = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1], [0.1, 0.1, 0.8]])
    table = predict.confusion(probs, torch.tensor([0, 1, 1, 2]), ("a", "b", "c"))
    assert table.values.tolist() == [[1, 0, 0], [1, 1, 0], [0, 0, 1]]
    assert list(table.index) == list(table.columns) == ["a", "b", "c"]


def test_a_run_on_images_takes_epochs_and_batch_from_its_budget_and_every_image(tmp_path):
    args = train.parse_args(["--images", str(one_tree(tmp_path / "photos")), "--profile", "smoke"])
    config = train.resolve_config(args, torch.device("cpu"))
    budget = train.get_profile("smoke").budget(train.OWN_IMAGES)
    assert (config["epochs"], config["batch_size"]) == (budget.epochs, budget.batch_size)
    assert config["train_size"] is None and config["test_size"] is None  # not notebook 12's folder sizes
    assert config["image_size"] == 256 and config["val_fraction"] == 0.2 and config["out"].endswith("smoke/images-photos")
    plain = train.resolve_config(train.parse_args(["--profile", "smoke"]), torch.device("cpu"))
    assert not {"images", "image_size", "val_fraction", "split_seed"} & plain.keys()  # old runs' configs unchanged
    # your own images were always scheduled on their validation photos, so their checkpoints keep resuming; a
    # profile's run now holds training images out, and one scheduled on test images is refused (test_cli)
    assert config["schedule_split"] == "val" and config["val_size"] is None
    assert plain["schedule_split"] == "held-out training images" and plain["val_size"] == 300


def test_notebook_12s_stand_in_folder_and_notebook_09s_top5_share_the_code(tmp_path):
    photos, held_out = folders.stand_in_photos(train.get_profile("smoke"), tmp_path, photos=20, held_out=10)
    assert folders.layout(photos) == "one tree" and folders.check_classes(photos) == folders.check_classes(held_out)
    assert [len(list(c.iterdir())) for c in sorted(photos.iterdir())] == [4] * 5
    assert [len(list(c.iterdir())) for c in sorted(held_out.iterdir())] == [2] * 5
    from alexnet_book import qualitative

    assert qualitative.top5 is predict.top5  # Figure 4's labels and alexnet-book-predict: one code path
