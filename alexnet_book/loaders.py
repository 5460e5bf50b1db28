"""Batches for training and evaluation, on CPU or CUDA alike, resumable in the middle of an epoch.

- TensorLoader: a dataset held in memory as uint8 (data.ImageSet), shuffled and augmented as
  tensor ops on the device; no PIL, no worker processes.
- FolderLoader: a dataset too big for memory (data.ImageFolderDataset, ImageNet): DataLoader
  workers decode, the augmentation then runs batched on the device.

Both take a `rank` and `world_size` and yield only their process's `shard` of every epoch.
"""

from __future__ import annotations

import itertools
import math
import os
import signal
import warnings

import torch


def shard(order: torch.Tensor, rank: int, world_size: int, drop_last: bool) -> torch.Tensor:
    """Rank `rank`'s share of an epoch's order: every world_size-th index from position `rank`.

    With drop_last (training) the order is first cut to a multiple of world_size, as torch's
    DistributedSampler(drop_last=True) does, so every rank takes the same number of steps; then
    the ranks' k-th batches together are exactly the k-th batch of one process at the global batch.
    Without it (evaluation) the shares are an exact partition: every image counts once.
    """
    if world_size == 1:
        return order
    if drop_last:
        order = order[: len(order) - len(order) % world_size]
    return order[rank::world_size]


class EpochPosition:
    """Where a loader is: its epoch, the batches it has yielded in that epoch and the generator that
    draws that epoch's augmentation, so a checkpoint can resume in the middle of an epoch.

    `state_dict()` after the k-th batch, and `load_state_dict()` before the next pass, makes that
    pass start at batch k with the generator where it was: the same batches, the same draws.
    """

    epoch, step, generator, _resume = 0, 0, None, None

    def set_epoch(self, epoch: int) -> None:
        self.epoch, self._resume = epoch, None

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "step": self.step,
                "generator": self.generator.get_state() if self.generator is not None else None,
                "generator_device": self.generator.device.type if self.generator is not None else None}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self._resume = state["epoch"], state

    def _begin_epoch(self, device: torch.device, seed: int, rank: int) -> int:
        """Seed this epoch's generator (or restore it, when resuming) and return the first step."""
        # rank 0 keeps the single-process seed; other ranks draw their own crops and flips
        self.generator = torch.Generator(device).manual_seed(seed * 1_000_003 + self.epoch + 7_919 * rank)
        resume, self._resume = self._resume, None
        self.step = resume["step"] if resume is not None else 0
        if resume is not None and resume["generator"] is not None:
            saved_on = resume.get("generator_device", "cpu")  # checkpoints before this key were all CPU runs
            if saved_on == self.generator.device.type:
                self.generator.set_state(resume["generator"])
            else:
                # a CPU and a CUDA generator hold different algorithms' states: the draws cannot continue, so the
                # rest of this epoch draws from a generator seeded by its position instead
                self.generator.manual_seed(seed * 1_000_003 + self.epoch + 7_919 * rank + 104_729 * self.step)
                warnings.warn(f"resuming epoch {self.epoch} at batch {self.step} on {self.generator.device.type}, "
                              f"saved on {saved_on}: the rest of this epoch's augmentation draws differ from an "
                              "uninterrupted run's", stacklevel=3)
        return self.step


class TensorLoader(EpochPosition):
    """Batches of an ImageSet as tensors on `device`: shuffled per (seed, epoch), transformed on the device.

    `transform(x_uint8, generator)` maps a uint8 batch to the model's float input (augmentation
    included); the generator makes its randomness repeatable per epoch, so a resumed run sees the
    same batches. The whole set moves to the device once. In a distributed run each process passes
    its `rank` and the `world_size` and takes its `shard` of every epoch's order.
    """

    def __init__(self, data: ImageSet, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                 transform=None, device: str | torch.device = "cpu", drop_last: bool = False,
                 rank: int = 0, world_size: int = 1):
        self.dataset = data
        self.images, self.labels = data.images.to(device), data.labels.to(device)
        self.batch_size, self.shuffle, self.seed, self.drop_last = batch_size, shuffle, seed, drop_last
        self.transform, self.device, self.epoch = transform, torch.device(device), 0
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        n = len(shard(torch.arange(len(self.labels)), self.rank, self.world_size, self.drop_last)) / self.batch_size
        return math.floor(n) if self.drop_last else math.ceil(n)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(len(self.labels), generator=g) if self.shuffle else torch.arange(len(self.labels))
        order = shard(order, self.rank, self.world_size, self.drop_last).to(self.device)
        first = self._begin_epoch(self.device, self.seed, self.rank)
        for b in range(first, len(self)):
            index = order[b * self.batch_size : (b + 1) * self.batch_size]
            x = self.images[index]
            x = self.transform(x, self.generator) if self.transform else x.float()
            self.step = b + 1
            yield x, self.labels[index]


# ---------------------------------------------------------------- streamed batches (ImageNet)


class _FromPosition(torch.utils.data.Sampler):
    """A sampler's indices from position `start` on, so an epoch can resume in its middle."""

    def __init__(self, sampler: torch.utils.data.Sampler):
        self.sampler, self.start = sampler, 0

    def set_epoch(self, epoch: int) -> None:
        self.sampler.set_epoch(epoch)

    def __iter__(self):
        return itertools.islice(iter(self.sampler), self.start, None)

    def __len__(self) -> int:
        return len(self.sampler) - self.start


def default_workers() -> int:
    """Decoding processes per training process: this node's cores shared by its torchrun processes
    (LOCAL_WORLD_SIZE), at most 8, so 8 GPUs on 64 cores start 64 workers, not 8 x 8 per loader."""
    per_process = (os.cpu_count() or 1) // int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    return max(1, min(8, per_process))


def _ignore_sigint(worker_id: int) -> None:
    # Ctrl-C reaches the workers too; they must keep serving while the main process saves its checkpoint
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class FolderLoader(EpochPosition):
    """Batches of an image dataset too big for memory (ImageFolderDataset): DataLoader workers decode
    uint8 256x256 images in parallel into pinned memory; the random crops, flips, PCA lighting and
    normalization (`transform`, e.g. augment.TrainTransform) then run batched on `device`.

    Same interface as TensorLoader. Training (shuffle=True) shards each epoch with torch's
    DistributedSampler (drop_last, so every rank takes the same number of steps); evaluation takes
    rank r's images r, r + world_size, ... so every image counts once.
    """

    def __init__(self, dataset, batch_size: int, *, shuffle: bool = False, seed: int = 0, transform=None,
                 device: str | torch.device = "cpu", rank: int = 0, world_size: int = 1, workers: int | None = None):
        workers = default_workers() if workers is None else workers
        self.dataset, self.batch_size, self.seed, self.rank = dataset, batch_size, seed, rank
        self.transform, self.device = transform, torch.device(device)
        if shuffle:
            self.sampler = _FromPosition(torch.utils.data.DistributedSampler(
                dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True))
            source = dataset
        else:
            self.sampler, source = None, torch.utils.data.Subset(dataset, range(rank, len(dataset), world_size))
        self.loader = torch.utils.data.DataLoader(
            source, batch_size, sampler=self.sampler, drop_last=shuffle, num_workers=workers,
            pin_memory=self.device.type == "cuda", persistent_workers=shuffle and workers > 0,  # eval: pools end
            prefetch_factor=4 if workers else None, worker_init_fn=_ignore_sigint if workers else None)
        self.batches = len(self.loader)

    def set_epoch(self, epoch: int) -> None:
        super().set_epoch(epoch)
        if self.sampler is not None:
            self.sampler.set_epoch(epoch)

    def __len__(self) -> int:
        return self.batches

    def __iter__(self):
        first = self._begin_epoch(self.device, self.seed, self.rank)
        if self.sampler is not None:
            self.sampler.start = first * self.batch_size
        for x, y in self.loader:
            x, y = x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
            x = self.transform(x, self.generator) if self.transform else x.float()
            self.step += 1
            yield x, y
