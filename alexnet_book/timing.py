"""Where the time goes: each layer's forward and backward time, the model's training img/s, and
the input pipeline's img/s (make bench, notebook 01, the CLI's --benchmark)."""

from __future__ import annotations

import time

import pandas as pd
import torch
from torch import nn

from .augment import Normalize, channels_last
from .data import ImageSet
from .engine import train_epoch
from .loaders import TensorLoader


def with_speed(history: list[dict] | pd.DataFrame, images_per_epoch: int) -> pd.DataFrame:
    """A training history with each epoch's training img/s (a resumed epoch counts only its rest)."""
    frame = pd.DataFrame(history)
    frame["img_per_s"] = images_per_epoch / frame["seconds"]
    return frame


def sequential_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """AlexNet's layers in forward order: features, a flatten, classifier."""
    return [*model.features.named_children(), ("flatten", nn.Flatten()), *model.classifier.named_children()]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(fn, device: torch.device, repeats: int) -> float:
    """Median seconds of `fn()` over `repeats` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        sync(device)
        tic = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - tic)
    return sorted(times)[len(times) // 2]


def layer_times(model: nn.Module, batch: torch.Tensor, repeats: int = 3, amp_dtype: torch.dtype | None = None) -> pd.DataFrame:
    """Forward and backward milliseconds per batch for every layer, each timed on its own input.

    Backward computes the gradients of the layer's input and parameters from a random output
    gradient, as a training step does. The model runs in train mode (dropout on), under autocast
    to `amp_dtype` if given, on a batch in the memory format of its conv weights (channels_last
    models get channels_last inputs, as in training).
    """
    model.train()
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    if conv.weight.is_contiguous(memory_format=torch.channels_last) and not conv.weight.is_contiguous():
        batch = batch.contiguous(memory_format=torch.channels_last)
    with torch.autocast(batch.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        return _layer_times(model, batch, repeats)


def _layer_times(model: nn.Module, batch: torch.Tensor, repeats: int) -> pd.DataFrame:
    rows, x = [], batch
    for name, layer in sequential_layers(model):
        x = x.detach().requires_grad_(True)
        out = layer(x)
        grad = torch.randn_like(out)
        inputs = [x, *layer.parameters()]
        forward = time_call(lambda: layer(x), batch.device, repeats)
        backward = time_call(lambda: torch.autograd.grad(layer(x), inputs, grad), batch.device, repeats) - forward
        rows.append({"layer": name, "forward_ms": 1e3 * forward, "backward_ms": 1e3 * max(backward, 0.0)})
        x = out
    table = pd.DataFrame(rows)
    table["share_%"] = 100 * (table.forward_ms + table.backward_ms) / (table.forward_ms + table.backward_ms).sum()
    return table


def loader_throughput(loader, batches: int = 20) -> dict[str, float]:
    """Images per second `loader` delivers ready for the model (decoded, on the device, augmented)
    with no model running: the input pipeline's ceiling, to set beside the model's own img/s.
    The first batch (worker start-up) is not timed."""
    it = iter(loader)
    x, _ = next(it)
    images, tic = 0, time.perf_counter()
    for _, (x, y) in zip(range(batches), it):
        images += len(y)
    sync(x.device)
    seconds = time.perf_counter() - tic
    if not images:
        raise ValueError("the loader has only one batch; nothing left to time")
    return {"images": images, "seconds": seconds, "img_per_s": images / seconds}


def model_throughput(model: nn.Module, optimizer: torch.optim.Optimizer, batch_size: int, num_classes: int,
                     *, side: int = 224, steps: int = 5, amp_dtype: torch.dtype | None = None,
                     channels_last_inputs: bool = False) -> dict[str, float]:
    """Training img/s of the model alone: `steps` steps of train_epoch on random side x side images
    already on the device, after one warm-up step (which also pays for torch.compile and
    cudnn.benchmark). Set it beside loader_throughput. It trains `model` on noise: pass one
    you can discard. The noise is normalized to [-1, 1], as real inputs are: on 0-255 pixels a few SGD steps
    could diverge to NaN and fail a benchmark that has nothing wrong with it."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    n = batch_size * (steps + 1)
    images = torch.randint(0, 256, (n, 3, side, side), dtype=torch.uint8, generator=g)
    labels = torch.randint(num_classes, (n,), generator=g)
    unit_range = Normalize(torch.full((3,), 127.5), torch.full((3,), 127.5))
    transform = channels_last(unit_range) if channels_last_inputs else unit_range
    warm_up, timed = (TensorLoader(ImageSet(images[part], labels[part], ()), batch_size, device=device, transform=transform)
                      for part in (slice(0, batch_size), slice(batch_size, n)))
    train_epoch(model, warm_up, optimizer, 0, amp_dtype=amp_dtype, progress=False)
    sync(device)
    tic = time.perf_counter()
    train_epoch(model, timed, optimizer, 0, amp_dtype=amp_dtype, progress=False)
    sync(device)
    seconds = time.perf_counter() - tic
    return {"images": n - batch_size, "seconds": seconds, "img_per_s": (n - batch_size) / seconds}
