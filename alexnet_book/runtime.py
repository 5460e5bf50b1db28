"""One setup call per notebook: profile, seed, device and results folder, printed for the reader."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import numpy as np
import torch

from .profiles import Budget, Profile, get_profile
from .results import Results
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


def setup(notebook: str, profile: str | None = None, device: str | None = None) -> Run:
    """Resolve the profile, seed everything, pick the device, open results/<profile>/<notebook>/."""
    check_versions()  # the first cell of every notebook: say early if the environment is not the verified one
    prof = get_profile(profile)
    dev = pick_device(device)
    budget = prof.budget(notebook, dev.type)
    seed_everything(prof.seed)
    results = Results(notebook, prof.name, dev, seeds=budget.seeds)
    run = Run(notebook, prof, budget, dev, prof.seed, results)
    print(f"profile  {prof.name}: {prof.description}")
    print(f"budget   {budget}")
    print(f"device   {results.record['device']}")
    print(f"seed     {prof.seed}")
    print(f"results  {results.dir}")
    return run
