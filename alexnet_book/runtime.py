"""One setup call per notebook: profile, seed, device and results folder, printed for the reader."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .data import ImageSet, experiment_data
from .optim import PAPER_LR, Recipe
from .profiles import Budget, Profile, get_profile
from .results import Results, shown
from .versions import check_versions

DEVICE_ENV = "ALEXNET_BOOK_DEVICE"


def seed_everything(seed: int) -> None:
    """The one seed helper: Python, NumPy and torch (CPU and every GPU)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)  # seeds CUDA and MPS too


def pick_device(name: str | None = None) -> torch.device:
    """The argument, else $ALEXNET_BOOK_DEVICE, else cuda, then mps, then cpu."""
    name = name or os.environ.get(DEVICE_ENV)
    if name:
        return torch.device(name)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@dataclass
class Run:
    """What a notebook needs to know about its run."""

    notebook: str
    profile: Profile
    budget: Budget
    device: torch.device
    seed: int
    results: Results

    def data(self) -> tuple[ImageSet, ImageSet]:
        """The section experiment's training and test sets, cut to the budget (data.experiment_data)."""
        train, test = experiment_data(self.profile, self.budget)
        print(f"{len(train):,} training and {len(test):,} test images")
        return train, test

    def recipe(self, **changes) -> Recipe:
        """Section 5's SGD at its starting rate ε = 0.01, for the budget's epochs and batch; `changes` override."""
        return Recipe(**{"lr": PAPER_LR, "epochs": self.budget.epochs, "batch_size": self.budget.batch_size, **changes})

    def train_options(self, train_transform=None, test_transform=None) -> dict:
        """What experiment.train_seeds needs from the run: device, autocast dtype, checkpoint folder, and the
        transforms given (the test transform defaults to the training one, e.g. one Normalize for both)."""
        transforms = {"train_transform": train_transform, "test_transform": test_transform or train_transform}
        return {**{k: v for k, v in transforms.items() if v is not None}, "device": self.device,
                "amp_dtype": self.profile.amp_dtype, "checkpoints": self.results.dir / "checkpoints"}


def setup(notebook: str, profile: str | None = None, device: str | None = None) -> Run:
    """Resolve the profile, seed everything, pick the device, open results/<profile>/<notebook>/."""
    check_versions()  # the first cell of every notebook: say early if the environment is not the verified one
    prof = get_profile(profile)
    dev = pick_device(device)
    budget = prof.budget(notebook, dev.type)
    seed_everything(prof.seed)
    results = Results(notebook, prof.name, dev, seeds=budget.seeds, budget=vars(budget))
    run = Run(notebook, prof, budget, dev, prof.seed, results)
    print(f"profile  {prof.name}: {prof.description}")
    print(f"budget   {budget}")
    print(f"device   {results.record['device']}")
    print(f"seed     {prof.seed}")
    print(f"results  {shown(results.dir)}")
    return run
