"""One setup call per notebook: profile, seed, device and results folder, printed for the reader."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .backend import amp_dtype, dtype_name, pick_device, seed_everything
from .data import Splits, experiment_data
from .optim import PAPER_LR, Recipe
from .profiles import Budget, Profile, get_profile
from .results import Results, shown
from .versions import check_versions

@dataclass
class Run:
    """What a notebook needs to know about its run."""

    notebook: str
    profile: Profile
    budget: Budget
    device: torch.device
    seed: int
    results: Results
    amp_dtype: torch.dtype | None  # autocast dtype of training and evaluation: None is fp32 (backend.amp_dtype)

    def data(self) -> Splits:
        """The section experiment's training, validation and test sets, cut to the budget (data.experiment_data):
        `train, val, test = run.data()`. Validation drives every decision; the test set only reports."""
        splits = experiment_data(self.profile, self.budget)
        print(splits.sizes())
        return splits

    def recipe(self, **changes) -> Recipe:
        """Section 5's SGD at its starting rate ε = 0.01, for the budget's epochs and batch; `changes` override."""
        return Recipe(**{"lr": PAPER_LR, "epochs": self.budget.epochs, "batch_size": self.budget.batch_size, **changes})

    def train_options(self, train_transform=None, test_transform=None) -> dict:
        """What experiment.train_seeds needs from the run: device, autocast dtype, checkpoint folder, the profile's
        eval-mode training subset, and the transforms given (the test transform, which every evaluation uses,
        defaults to the training one, e.g. one Normalize for both)."""
        transforms = {"train_transform": train_transform, "test_transform": test_transform or train_transform}
        return {**{k: v for k, v in transforms.items() if v is not None}, "device": self.device,
                "amp_dtype": self.amp_dtype, "checkpoints": self.results.dir / "checkpoints",
                "train_eval_images": self.profile.train_eval_images}


def setup(notebook: str, profile: str | None = None, device: str | None = None) -> Run:
    """Resolve the profile, seed everything, pick the device, open results/<profile>/<notebook>/."""
    check_versions()  # the first cell of every notebook: say early if the environment is not the verified one
    prof = get_profile(profile)
    dev = pick_device(device)
    budget = prof.budget(notebook, dev.type)
    dtype = amp_dtype(dev, prof.amp)
    seed_everything(prof.seed)
    results = Results(notebook, prof.name, dev, seeds=budget.seeds, budget=vars(budget), dtype=dtype_name(dtype))
    run = Run(notebook, prof, budget, dev, prof.seed, results, dtype)
    print(f"profile  {prof.name}: {prof.description}")
    print(f"budget   {budget}")
    print(f"device   {results.record['device']}")
    print(f"dtype    {dtype_name(dtype)} (profile setting {prof.amp!r})")
    print(f"seed     {prof.seed}")
    print(f"results  {shown(results.dir)}")
    return run
