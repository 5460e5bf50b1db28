"""Where the time goes: forward and backward time of each layer, measured one layer at a time."""

from __future__ import annotations

import time

import pandas as pd
import torch
from torch import nn


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
