"""Checkpoints: where a run's file lives, and what it holds to resume bit for bit.

engine.fit saves one after every epoch (and when stopped mid-epoch) and resumes from it. A file holds
the plain module's weights (`unwrap`), so a run resumes with any number of processes, compiled or not,
and every rank's RNG state (`rng_state`), so a resumed run draws on as before.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import replace
from pathlib import Path

import torch

from . import distributed


def file_name(name: str) -> str:
    """A run's name as one file-name part: runs of characters that a path or a shell would read
    ("/", ":", spaces, brackets, commas) become one "-". "He: N(0, 2/fan_in), bias 0" -> "He-N-0-2-fan_in-bias-0"."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", name).strip("-") or "run"


def run_path(folder: str | Path, name: str, seed: int, model: torch.nn.Module, recipe, n_train: int,
             n_val: int | None = None) -> Path:
    """One file per (variant, seed) in `folder`, keyed by the model and recipe so a changed experiment starts afresh.
    The epoch count and the early ends (stop_at_train_top1, give_up_after) are left out of the key: they end a
    run, never change its course, so a longer budget or a lower line continues the finished runs; on CPU 25
    epochs extended to 40 equal 40 trained at once. The key
    holds the name as given, so two names that read alike as files ("wd 0", "wd-0") still get two files.
    `n_val`, the validation images the schedule reads, is in the key when given: a run scheduled on the test
    set (before validation splits) never resumes as one scheduled on validation."""
    split = f"val{n_val}" if n_val is not None else ""
    key = hashlib.sha1(f"{name}{model!r}{replace(recipe, epochs=0, stop_at_train_top1=None, give_up_after=None)!r}{n_train}{split}".encode()).hexdigest()[:8]
    return Path(folder) / f"{file_name(name)}-seed{seed}-{key}.pt"


def save(path: Path, **state) -> None:
    """Write atomically, so an interrupted save never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def rng_state(device: torch.device) -> dict:
    """The generators this process draws from: the CPU's, and its own GPU's when it trains on one
    (only its own, so a checkpoint resumes on any number of GPUs, and a CPU run never starts CUDA)."""
    state = {"cpu": torch.get_rng_state()}
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def set_rng_state(state: dict, device: torch.device) -> None:
    torch.set_rng_state(state["cpu"])
    if device.type == "cuda" and state.get("cuda") is not None:
        torch.cuda.set_rng_state(state["cuda"], device)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DistributedDataParallel and torch.compile: checkpoints hold its
    weights, so a run can resume with any number of processes, compiled or not."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's wrapper
            model = model._orig_mod
        else:
            return model


class CheckpointMismatch(RuntimeError):
    """A checkpoint that cannot resume in this run."""


def check_world_size(state: dict) -> None:
    """A checkpoint taken in the middle of an epoch resumes only with the world size that took it:
    with another, the ranks' shards of the epoch differ, and images would repeat or be skipped."""
    saved = len(state["loader"]) if isinstance(state.get("loader"), list) else 1
    if state.get("partial") is not None and saved != distributed.world_size():
        raise CheckpointMismatch(f"the checkpoint was taken in the middle of an epoch by {saved} process(es); resume it with "
                         f"{saved} (torchrun --nproc_per_node={saved}), or with any number after its epoch's end: "
                         f"this run has {distributed.world_size()}")


def restore(path: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer, scheduler,
            device: torch.device) -> dict:
    """Load the checkpoint at `path` into the model, optimizer, scheduler and this rank's generators;
    returns the whole state (history, epoch, and a mid-epoch position if it holds one)."""
    state = torch.load(path, map_location="cpu", weights_only=False)
    check_world_size(state)
    unwrap(model).load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None:
        scheduler.load_state_dict(state["scheduler"])
    if (saved_rng := distributed.own(state["rng"])) is not None:  # else this rank keeps its fresh seed
        set_rng_state(saved_rng, device)
    return state
