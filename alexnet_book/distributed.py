"""Data-parallel training over several processes: torchrun plus DistributedDataParallel.

`torchrun --nproc_per_node=N -m alexnet_book.train ...` starts N copies of the command and
tells each its rank through the environment (RANK, LOCAL_RANK, WORLD_SIZE). Each process
trains on its shard of every batch (loaders.shard, or torch's DistributedSampler for ImageFolder
data) and DDP averages the gradients, so N processes at batch B/N take the steps one process
takes at batch B. The backend is nccl on CUDA and gloo on CPU. Without torchrun every helper
here is a no-op and the command runs as one process.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

import torch
import torch.distributed as dist


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def is_main() -> bool:
    """The process that logs, writes files and shows progress bars."""
    return rank() == 0


def start(device: torch.device) -> torch.device:
    """Join the process group torchrun announced, if any; return this process's device
    (cuda:LOCAL_RANK on GPUs, so each process drives its own)."""
    if int(os.environ.get("WORLD_SIZE", "1")) == 1:
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
        # device_id binds the group to this GPU at once (no guessing, no hang on the first collective)
        dist.init_process_group("nccl", device_id=device)
    else:
        dist.init_process_group("gloo")
    return device


def finish() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DistributedDataParallel in a distributed run (it copies rank 0's weights to every rank), else the model."""
    if not dist.is_initialized():
        return model
    # AlexNet has no buffers (tested), so DDP's forward syncs none and evaluation stays free of collectives;
    # saying so with broadcast_buffers=False is deprecated since torch 2.13, its replacement missing before
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


@contextlib.contextmanager
def rank0_first() -> Iterator[None]:
    """Rank 0 runs the block first, the other ranks after it: on a cold cache one process downloads
    and decodes the data and writes the cache, and the others read it instead of building it again.
    Should rank 0 fail, it still releases the others, which then fail on their own, not hang."""
    if not is_main():
        barrier()
    try:
        yield
    finally:
        if is_main():
            barrier()


def all_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum `tensor` over the ranks, in place (on the rank's device: CUDA for nccl); returns it."""
    if dist.is_initialized():
        dist.all_reduce(tensor)
    return tensor


def gather(obj):
    """Every rank's `obj`, as a list in rank order, in a distributed run; `obj` itself otherwise."""
    if not dist.is_initialized():
        return obj
    objs = [None] * world_size()
    dist.all_gather_object(objs, obj)
    return objs


def own(entry):
    """This rank's part of what `gather` returned (one process's save is its entry alone), or None when
    the saving run had fewer ranks than this one: ranks r and r + n must not share one generator state,
    so a rank with no saved entry keeps the one its own seed gave it."""
    entries = entry if isinstance(entry, list) else [entry]
    return entries[rank()] if rank() < len(entries) else None


def agreed(flag: Callable[[], bool], every: int = 20) -> Callable[[], bool]:
    """`flag` as every rank sees it: true everywhere once it is true on one rank, so all ranks stop at
    the same step. Checked every `every` calls, since each check is a collective and a sync."""
    if not dist.is_initialized():
        return flag
    calls = 0

    def check() -> bool:
        nonlocal calls
        calls += 1
        if calls % every:
            return False
        device = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else "cpu"
        raised = torch.tensor([float(flag())], device=device)
        dist.all_reduce(raised, op=dist.ReduceOp.MAX)
        return bool(raised.item())

    return check
