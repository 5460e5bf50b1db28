"""Section 6.1's qualitative evaluation: what conv1 learned (Figure 3) and what fc7 knows (Figure 4)."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from . import predict
from .backend import autocast


def colour_specialization(weight: torch.Tensor) -> torch.Tensor:
    """Per conv1 kernel (K x 3 x h x w), the share of its energy off the grey axis: 0 for a kernel with
    equal R, G and B weights at every pixel (colour-agnostic), 1 for one whose channels sum to zero
    at every pixel (pure colour contrast). Section 6.1 calls the first kind "largely colour-agnostic"."""
    weight = weight.detach().float().cpu()  # the scores are plotted and saved: on the CPU, wherever the net is
    grey = weight.mean(dim=1, keepdim=True)
    return (weight - grey).square().sum(dim=(1, 2, 3)) / weight.square().sum(dim=(1, 2, 3))


def travel(trained: torch.Tensor, initial: torch.Tensor) -> float:
    """How far weights moved from their random start, relative to it: |W - W0| / |W0| (Frobenius).
    C11's regime: kernels still near their start (well under 1) cannot have specialized."""
    trained, initial = trained.detach().float().cpu(), initial.detach().float().cpu()
    return ((trained - initial).norm() / initial.norm()).item()


def group_contrast(scores: torch.Tensor, permutations: int = 10_000, seed: int = 0) -> dict[str, float]:
    """How differently the two halves of conv1 (kernels 0..K/2-1 and K/2..K-1, the paper's two GPUs)
    score: each half's mean, their absolute difference, and its permutation p-value, the share of
    random splits into two halves whose difference is at least as large."""
    if len(scores) % 2:
        raise ValueError(f"need an even number of kernels to split into two groups, got {len(scores)}")
    half = len(scores) // 2
    first, second = scores[:half].mean().item(), scores[half:].mean().item()
    generator = torch.Generator().manual_seed(seed)
    shuffled = scores[torch.argsort(torch.rand(permutations, len(scores), generator=generator), dim=1)]
    null = (shuffled[:, :half].mean(1) - shuffled[:, half:].mean(1)).abs()
    difference = abs(first - second)
    p_value = ((null >= difference - 1e-12).sum().item() + 1) / (permutations + 1)  # the observed split counts too
    return {"group 1 mean": first, "group 2 mean": second, "difference": difference, "p_value": p_value}


def conv1_groups(models: list[nn.Module], starts: list[nn.Module], seeds) -> pd.DataFrame:
    """C11 run by run: each trained net's conv1 group contrast (group_contrast of its colour scores) and
    how far its conv1 travelled from the same seed's random start."""
    return pd.DataFrame([{"seed": seed, **group_contrast(colour_specialization(model.features.conv1.weight)),
                          "conv1 travel": travel(model.features.conv1.weight, start.features.conv1.weight)}
                         for seed, model, start in zip(seeds, models, starts, strict=True)])


@torch.no_grad()
def fc7_features(model: nn.Module, images: torch.Tensor, transform, batch_size: int = 64,
                 amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """fc7's 4096 outputs after its ReLU ("the feature activations induced by an image at the last,
    4096-dimensional hidden layer") for uint8 `images`, in eval mode and in batches; float32 on the CPU."""
    device = next(model.parameters()).device
    captured = []
    hook = model.classifier.act7.register_forward_hook(lambda module, inputs, output: captured.append(output.float().cpu()))
    model.eval()
    try:
        for start in range(0, len(images), batch_size):
            with autocast(device, amp_dtype):
                model(transform(images[start:start + batch_size].to(device)))
    finally:
        hook.remove()
    return torch.cat(captured)


def nearest(queries: torch.Tensor, bank: torch.Tensor, k: int = 6) -> torch.Tensor:
    """Indices into `bank` of each query's k nearest rows by Euclidean distance, nearest first."""
    distances = torch.cdist(queries.flatten(1).float(), bank.flatten(1).float())
    return distances.topk(k, dim=1, largest=False).indices


# A near-duplicate: a "neighbour" that is the query's own photo (CIFAR-10's test set holds re-crops, re-scales and
# re-colourings of training images), which would make a neighbour look found when it was only remembered. Measured
# by the correlation of the two images' pixels, each centred on its own mean, not by pixel distance: that ranks two
# photos of plain blue sky closer than a re-scaled copy. Among CIFAR-10's closest test-train pairs by this measure
# (2,000 test images, looked at by eye), every pair at 0.95 or over was the same photo (1.3% of test images had
# one as their nearest pixel neighbour in 20,000 training images). The flag is a lower bound: a copy shifted by a
# pixel or two correlates less (0.8-0.9 in that look) and goes unflagged.
NEAR_DUPLICATE_CORRELATION = 0.95


def pixel_correlation(queries: torch.Tensor, bank: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """queries x k: the pixel correlation of each query with its neighbours `index` (rows of `bank`)."""
    def centred(images):
        flat = images.flatten(1).float()
        flat = flat - flat.mean(dim=1, keepdim=True)
        return flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-8)

    return torch.einsum("qd,qkd->qk", centred(queries), centred(bank[index.flatten()]).view(*index.shape, -1))


def near_duplicates(queries: torch.Tensor, bank: torch.Tensor, index: torch.Tensor,
                    threshold: float = NEAR_DUPLICATE_CORRELATION) -> torch.Tensor:
    """queries x k booleans: which neighbours are the query's own photo (pixel_correlation >= threshold)."""
    return pixel_correlation(queries, bank, index) >= threshold


def same_class_rate(neighbours: torch.Tensor, query_labels: torch.Tensor, bank_labels: torch.Tensor) -> float:
    """Percentage of neighbours (queries x k indices into the bank) that share their query's label."""
    return 100 * (bank_labels[neighbours] == query_labels.unsqueeze(1)).float().mean().item()


# Figure 4's five most probable labels: the one code path with `alexnet-book-predict` and notebook 12.
top5 = predict.top5
