"""Figures the notebooks show. Each function returns a matplotlib Figure; Results.figure saves it."""

from __future__ import annotations

import matplotlib.pyplot as plt
import torch


def image_grid(images: torch.Tensor, labels: torch.Tensor, classes, per_class: int = 8, title: str = ""):
    """The first `per_class` images of every class, one class per row (images uint8 N x 3 x H x W)."""
    rows = [torch.nonzero(labels == c).flatten()[:per_class] for c in range(len(classes))]
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.9, len(classes) * 0.9), squeeze=False)
    for c, index in enumerate(rows):
        for j, ax in enumerate(axes[c]):
            ax.axis("off")
            if j < len(index):
                ax.imshow(images[index[j]].permute(1, 2, 0).numpy(), interpolation="nearest")
        axes[c][0].text(-0.1, 0.5, classes[c], transform=axes[c][0].transAxes, ha="right", va="center", fontsize=8)
    fig.suptitle(title)
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    return fig


def class_counts(train_labels: torch.Tensor, test_labels: torch.Tensor, classes):
    fig, ax = plt.subplots(figsize=(8, 2.8))
    width = 0.4
    x = torch.arange(len(classes))
    n = len(classes)
    ax.bar(x - width / 2, train_labels.bincount(minlength=n), width, label="train")
    ax.bar(x + width / 2, test_labels.bincount(minlength=n), width, label="test")
    ax.set_xticks(x.tolist(), classes, rotation=30, ha="right")
    ax.set_ylabel("images")
    ax.legend()
    ax.set_title("images per class")
    return fig


def lrn_response(conventions: dict, centre: float = 1.0, neighbours=None):
    """Section 3.3's LRN: the output of one channel as its four neighbours' activations grow.

    `conventions` maps a name to an LRN module; the input is five channels with the centre channel
    at `centre` and the others all at the value on the x axis.
    """
    neighbours = torch.logspace(-1, 3, 200) if neighbours is None else neighbours
    x = torch.full((len(neighbours), 5, 1, 1), 0.0)
    x[:, :, 0, 0] = neighbours.unsqueeze(1)
    x[:, 2] = centre
    fig, ax = plt.subplots(figsize=(6.5, 3.5))
    for name, lrn in conventions.items():
        ax.plot(neighbours, lrn(x)[:, 2, 0, 0] / centre, label=name)
    ax.set_xscale("log")
    ax.set_xlabel("activation of the 4 neighbouring channels")
    ax.set_ylabel("output / input of the centre channel")
    ax.set_title(f"LRN response (centre activation {centre:g})")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def draw_towers(model, title: str = "AlexNet on two GPUs (section 3.2, Figure 2)"):
    """The two towers of a grouped AlexNet, drawn from the model itself.

    One box per conv/fc layer and tower, sized by its kernel count; a line joins each box to the
    layer below in its own tower, and red crossing lines mark the layers that take input from
    both towers: the ungrouped conv layers after conv1, and the fc layers.
    """
    from torch import nn

    from .summary import layer_table

    grouped = {name.rsplit(".", 1)[-1] for name, m in model.named_modules() if isinstance(m, nn.Conv2d) and m.groups > 1}
    table = layer_table(model)
    layers = table[table["type"].isin(["Conv2d", "Linear"])].reset_index(drop=True)
    channels = layers["output_shape"].map(lambda s: int(s.split("x")[0]))
    fig, ax = plt.subplots(figsize=(12, 4.2))
    towers = (1.0, -1.0)
    for x, row in layers.iterrows():
        last = x == len(layers) - 1  # fc8 is one layer fed by both towers
        height = 0.25 + 0.55 * channels[x] / channels.max()
        spatial = "x".join(row.output_shape.split("x")[1:])
        for y in (0.0,) if last else towers:
            size = channels[x] if last else channels[x] // 2
            ax.add_patch(plt.Rectangle((x - 0.3, y - height / 2), 0.6, height, color="C0" if y >= 0 else "C1",
                                       alpha=0.6 if last else 0.35))
            ax.text(x, y, f"{row.layer}\n{size}" + (f"\n{spatial}" if spatial else ""), ha="center", va="center",
                    fontsize=8)
            if x == 0:
                continue
            both = row.layer not in grouped or last
            for y0 in towers if both else (y,):
                ax.plot([x - 0.7, x - 0.3], [y0, y], color="red" if y0 != y else "gray", lw=1)
    ax.text(-0.5, 1.0, "GPU 1 ", ha="right", va="center", color="C0", fontweight="bold")
    ax.text(-0.5, -1.0, "GPU 2 ", ha="right", va="center", color="C1", fontweight="bold")
    ax.set_xlim(-1.4, len(layers) - 0.4)
    ax.set_ylim(-1.8, 1.8)
    ax.axis("off")
    ax.set_title(title + "\nboxes: kernels (neurons) per GPU and output size; red: connections across GPUs")
    return fig


def layer_times(times):
    """Stacked forward/backward milliseconds per layer (timing.layer_times)."""
    fig, ax = plt.subplots(figsize=(10, 3.2))
    ax.bar(times["layer"], times["forward_ms"], label="forward")
    ax.bar(times["layer"], times["backward_ms"], bottom=times["forward_ms"], label="backward")
    ax.set_ylabel("ms per batch")
    ax.tick_params(axis="x", rotation=60)
    ax.legend()
    ax.set_title("where the time of one training step goes")
    return fig
