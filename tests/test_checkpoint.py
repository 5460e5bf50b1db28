from pathlib import Path

from torch import nn

from alexnet_book import checkpoint
from alexnet_book.optim import Recipe

# notebook 07's run names: before checkpoint.file_name, the "/" in them made subdirectories
NOTEBOOK_07_NAMES = ["paper: N(0, 0.01), bias 1", "Caffe: bias 0.1, fc6/fc7 std 0.005", "He: N(0, 2/fan_in), bias 0"]


def test_a_run_name_becomes_one_plain_file_in_the_folder():
    assert checkpoint.file_name("He: N(0, 2/fan_in), bias 0") == "He-N-0-2-fan_in-bias-0"
    assert checkpoint.file_name("z=3") == "z=3" and checkpoint.file_name("relu-pytorch-lr0.01") == "relu-pytorch-lr0.01"
    for name in NOTEBOOK_07_NAMES:
        path = checkpoint.run_path(Path("runs"), name, 0, nn.Linear(2, 2), Recipe(lr=0.1, epochs=2), 10)
        assert path.parent == Path("runs") and " " not in path.name and ":" not in path.name


def test_names_that_read_alike_as_files_keep_two_files():
    def path(name):
        return checkpoint.run_path("runs", name, 0, nn.Linear(2, 2), Recipe(lr=0.1, epochs=2), 10)

    assert path("wd 0") != path("wd-0")
    assert path("wd 0") == path("wd 0")
    assert path("wd 0") == checkpoint.run_path("runs", "wd 0", 0, nn.Linear(2, 2), Recipe(lr=0.1, epochs=40), 10)  # epochs left out
    # a run scheduled on a validation split never resumes a checkpoint that was scheduled on the test set
    assert path("wd 0") != checkpoint.run_path("runs", "wd 0", 0, nn.Linear(2, 2), Recipe(lr=0.1, epochs=2), 10, 5000)
