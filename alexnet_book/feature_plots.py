"""Figures of what the trained features show (notebook 09): Figure 3's conv1 kernels and their colour
scores, Figure 4's top-5 predictions and fc7 nearest neighbours. Each returns a matplotlib Figure."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .qualitative import NEAR_DUPLICATE_CORRELATION, near_duplicates


def _rgb(image: torch.Tensor) -> np.ndarray:
    """uint8 or float C x H x W -> H x W x 3 in [0, 1] for imshow; floats are stretched to their own range."""
    image = image.detach().float().cpu()
    if image.max() > 1 or image.min() < 0:
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-8)
    return image.permute(1, 2, 0).numpy()


def conv1_kernels(weight: torch.Tensor, scores: torch.Tensor, groups: int = 2, title: str = ""):
    """Figure 3: conv1's kernels as RGB tiles (each stretched to its own range), one block per group
    (the paper's GPUs), with each kernel's colour-specialization score (qualitative.colour_specialization)."""
    per_group = len(weight) // groups
    cols = 16 if per_group % 16 == 0 else 8
    rows = per_group // cols
    fig, axes = plt.subplots(groups * rows, cols, figsize=(cols * 0.62, groups * rows * 0.72 + 0.6), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.imshow(_rgb(weight[i]), interpolation="nearest")
        ax.set_xticks([]), ax.set_yticks([])
        ax.set_title(f"{scores[i]:.2f}", fontsize=6, pad=1)
        if i % cols == 0 and (i // cols) % rows == 0:
            ax.set_ylabel(f"group {i // per_group + 1}", fontsize=8)
    fig.suptitle(title or "conv1 kernels by group, with their colour-specialization score", fontsize=10)
    fig.subplots_adjust(wspace=0.08, hspace=0.35)
    return fig


def top5_bars(images: torch.Tensor, labels: torch.Tensor, probs: torch.Tensor, classes: torch.Tensor, names):
    """Figure 4, left: each test image above its five most probable labels as bars, the true label in red."""
    fig, axes = plt.subplots(2, len(images), figsize=(len(images) * 1.6, 3.6), gridspec_kw={"height_ratios": [1, 1.1]})
    for j in range(len(images)):
        axes[0, j].imshow(_rgb(images[j]), interpolation="nearest")
        axes[0, j].set_title(names[labels[j]], fontsize=8)
        axes[0, j].axis("off")
        ax = axes[1, j]
        colours = ["C3" if c == labels[j] else "C0" for c in classes[j].tolist()]
        ax.barh(range(5), probs[j].tolist(), color=colours)
        ax.set_yticks(range(5), [names[c] for c in classes[j].tolist()], fontsize=7)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("probability", fontsize=7)
        ax.tick_params(axis="x", labelsize=6)
    fig.suptitle("the five most probable labels of each test image (the true label in red)", fontsize=10)
    fig.tight_layout()
    return fig


def neighbours(queries: torch.Tensor, bank: torch.Tensor, by: dict, labels=None, names=None):
    """Figure 4, right: each query image (first column) and its nearest training images, one row per
    query and per space in `by` (name -> queries x k indices into bank). With `labels` (query labels, bank
    labels) and class `names`, every image is titled with its class, a neighbour of the query's class in green.
    A neighbour that is the query's own photo (qualitative.near_duplicates) gets a red frame, so no reader takes
    it for a neighbour the features found."""
    k = next(iter(by.values())).shape[1]
    height = len(queries) * len(by) * 1.2
    fig, axes = plt.subplots(len(queries) * len(by), k + 1, figsize=((k + 1) * 1.0, height), squeeze=False)
    for q in range(len(queries)):
        for s, (space, index) in enumerate(by.items()):
            row = axes[q * len(by) + s]
            row[0].imshow(_rgb(queries[q]), interpolation="nearest")
            row[0].set_ylabel(space, fontsize=7, rotation=0, ha="right", va="center")
            duplicate = near_duplicates(queries[q:q + 1], bank, index[q:q + 1])[0].tolist()
            for ax, i, same_photo in zip(row[1:], index[q].tolist(), duplicate):
                ax.imshow(_rgb(bank[i]), interpolation="nearest")
                if same_photo:
                    ax.spines[:].set(color="red", linewidth=2.5)
            if labels is not None:
                _class_titles(row, labels[0][q].item(), labels[1][index[q]].tolist(), names, duplicate)
            for ax in row:
                ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("test image (left) and its nearest training images, by space; green: the test image's class; red frame:"
                 f"\nthe same photo (pixel correlation ≥ {NEAR_DUPLICATE_CORRELATION:g}), not a neighbour", fontsize=8)
    fig.subplots_adjust(wspace=0.05, hspace=0.45, top=1 - 0.75 / height)  # the two-line title's height, no more
    return fig


def _class_titles(row, query_label: int, neighbour_labels: list[int], names, duplicate: list[bool]):
    row[0].set_title(names[query_label], fontsize=6, pad=2, fontweight="bold")
    for ax, label, same_photo in zip(row[1:], neighbour_labels, duplicate):
        ax.set_title(names[label] + (" (same photo)" if same_photo else ""), fontsize=6, pad=2,
                     color="red" if same_photo else "green" if label == query_label else "black")


def colour_scores(scores: dict, reference: float | None = None):
    """Colour-specialization score of every conv1 kernel, per net (name -> scores), the two halves of
    conv1 side by side: the paper's two GPUs in the grouped net, an arbitrary split in a control.
    `reference` (dashed): the mean score of kernels at their random start."""
    fig, axes = plt.subplots(1, len(scores), figsize=(4 * len(scores), 3.2), sharey=True, squeeze=False)
    for ax, (name, values) in zip(axes[0], scores.items()):
        half = len(values) // 2
        for g, part in enumerate((values[:half], values[half:])):
            jitter = np.random.default_rng(g).uniform(-0.12, 0.12, len(part))
            ax.scatter(g + jitter, part.numpy(), s=10, alpha=0.7, color=f"C{g}")
            ax.hlines(part.mean().item(), g - 0.25, g + 0.25, color="k", label="half's mean" if g == 0 else None)
        if reference is not None:
            ax.axhline(reference, color="gray", ls="--", lw=1, label=f"random start: {reference:.2f}")
        ax.set_xticks([0, 1], [f"kernels 0-{half - 1}", f"kernels {half}-{len(values) - 1}"])
        ax.set_title(name, fontsize=9)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("energy off the grey axis")
    fig.tight_layout()
    return fig
