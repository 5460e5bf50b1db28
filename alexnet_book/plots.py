"""Figures the notebooks show: data, architecture, learning curves, gains and the report. Each function
returns a matplotlib Figure; Results.figure saves it. The trained features' figures are in feature_plots."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from .experiment import held_to_end, lr_drops, paired_gain
from .stats import from_summary


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


def figure1(history, threshold: float = 25.0, column: str = "train_top1"):
    """Figure 1 redrawn: training error against epochs, ReLU solid and tanh dashed, one thin line
    per seed, one panel per recipe (columns `recipe`, `activation`, `seed`, `epoch`)."""
    recipes = list(dict.fromkeys(history["recipe"]))
    fig, axes = plt.subplots(1, len(recipes), figsize=(5.5 * len(recipes), 3.8), squeeze=False, sharey=True)
    for ax, recipe in zip(axes[0], recipes):
        for (activation, seed), run in history[history["recipe"] == recipe].groupby(["activation", "seed"]):
            ax.plot(run["epoch"], run[column], "-" if activation == "relu" else "--", lw=1.3,
                    color="C0" if activation == "relu" else "C3", label=activation if seed == run["seed"].min() else None)
        ax.axhline(threshold, color="gray", lw=0.8, ls=":")
        ax.set_title(f"{recipe} recipe")
        ax.set_xlabel("epochs")
        ax.grid(alpha=0.3)
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys())
    axes[0][0].set_ylabel("training error (%)")
    fig.suptitle(f"Figure 1: epochs to {threshold:g}% training error, ReLU (solid) vs tanh (dashed), one line per seed")
    fig.tight_layout()
    return fig


# Per-epoch curves (protocol v2): the validation error, and the training error in eval mode on a fixed training
# subset, so the gap between them is overfitting and not dropout's noise. The test set has no curve: it is read
# once per run. The CLI's history has no eval-mode training column; there the running train-mode error stands in,
# labelled as such.
VALIDATION = ("val_top1", "validation")


def training_curve(history) -> tuple[str, str]:
    """The training-error column a curve plots and its legend name."""
    if "train_eval_top1" in history:
        return "train_eval_top1", "training (eval mode)"
    return "train_top1", "training (train mode, running)"


def train_test_curves(history, title: str = ""):
    """Left: training (dashed) and validation (solid) top-1 error per variant, mean over seeds.
    Right: the overfitting gap, validation minus training error, mean and min-max over seeds."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    (train, train_name), (val, val_name) = training_curve(history), VALIDATION
    held = held_to_end(history, columns=(train, val))
    gap = held.assign(gap=held[val] - held[train])
    for i, (variant, runs) in enumerate(gap.groupby("variant", sort=False)):
        mean = runs.groupby("epoch")[[train, val, "gap"]].mean()
        left.plot(mean.index, mean[train], "--", color=f"C{i}", label=f"{variant} {train_name}")
        left.plot(mean.index, mean[val], "-", color=f"C{i}", label=f"{variant} {val_name}")
        right.plot(mean.index, mean["gap"], color=f"C{i}", label=variant)
        if runs["seed"].nunique() > 1:  # one seed has no spread to show
            band = runs.groupby("epoch")["gap"].agg(["min", "max"])
            right.fill_between(band.index, band["min"], band["max"], color=f"C{i}", alpha=0.2)
    seeds = history.groupby("variant")["seed"].nunique().max()
    ended = len(held) > len(history)  # some run ended before its variant's last epoch (Recipe.finished)
    left.set(xlabel="epochs", ylabel="top-1 error (%)", title=f"{train_name} (dashed) and {val_name} (solid) error"
             + (f", mean of {seeds} seeds" if seeds > 1 else ", one seed")
             + ("\na run that ended early holds its last epoch's errors" if ended else ""))
    right.axhline(0, color="gray", lw=0.8)
    right.set(xlabel="epochs", ylabel="validation − training error (points)")
    right.set_title(f"overfitting gap{' (band: min-max over seeds)' if seeds > 1 else ''}"
                    + ("" if train == "train_eval_top1" else "\nbelow 0: the running training error, with dropout\n"
                       "and augmentation on, is above the validation error"), fontsize=9)
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def lrn_effect(activations: torch.Tensor, lrns: dict, title: str = ""):
    """What each LRN does to real activations, beyond its constant factor: the distribution over the
    positive activations of a layer of output / input x k^beta. Every LRN divides by
    (k + alpha sum a^2)^beta; the k^-beta part is a constant the next layer's weights can undo, so
    1 means no normalization and the spread below 1 is the real effect."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    positive = activations > 0
    for name, lrn in lrns.items():
        with torch.no_grad():
            damping = (lrn(activations)[positive] / activations[positive] * lrn.k**lrn.beta).float().numpy()
        median, low = np.quantile(damping, [0.5, 0.01])
        ax.hist(damping, bins=100, histtype="step", lw=1.5, label=f"{name}: median {median:.4f}, 1st percentile {low:.4f}")
    ax.set_yscale("log")
    ax.set_xlabel("output / input × k^β  (1 = nothing beyond the constant factor)")
    ax.set_ylabel("activations")
    ax.set_title(title)
    ax.legend(fontsize=7)
    return fig


def augmentations(images: torch.Tensor, crop: int, lighting, generator: torch.Generator, draws: int = 4,
                  lighting_std: float = 0.1):
    """Rows: images. Columns: the original, `draws` random crops with flips, and `draws` PCA
    lighting draws of the whole image (std `lighting_std`), as a training batch would see them."""
    from .augment import pca_lighting, random_crop_flip

    crops = [random_crop_flip(images, crop, generator) for _ in range(draws)]
    lit = [pca_lighting(images.float(), *lighting, generator, std=lighting_std).clamp(0, 255).to(torch.uint8)
           for _ in range(draws)]
    # the lighting noise itself, x 5 around mid-grey: one colour per image, the same at every pixel
    difference = (128 + 5 * (lit[0].float() - images.float())).clamp(0, 255).to(torch.uint8)
    columns = [("original", images)] + [(f"crop+flip {i + 1}", c) for i, c in enumerate(crops)] + \
              [(f"lighting {i + 1}", x) for i, x in enumerate(lit)] + [("lit 1 − orig. ×5", difference)]
    fig, axes = plt.subplots(len(images), len(columns), figsize=(len(columns) * 1.1, len(images) * 1.15), squeeze=False)
    for j, (title, batch) in enumerate(columns):
        axes[0][j].set_title(title, fontsize=7)
        for i in range(len(images)):
            axes[i][j].imshow(batch[i].permute(1, 2, 0).numpy(), interpolation="nearest")
            axes[i][j].axis("off")
    fig.suptitle(f"training inputs: random {crop}x{crop} crops with flips, and PCA lighting (alpha ~ N(0, {lighting_std:g}))")
    return fig


def update_rule(steps):
    """Section 5's update rule against torch.optim.SGD around a learning-rate drop (optim.compare_after_drop)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    left.plot(steps["step"], steps["paper_update"], label="paper: v ← 0.9v − ε·wd·w − ε·grad; w ← w + v")
    left.plot(steps["step"], steps["torch_update"], "--", label="torch.optim.SGD: b ← 0.9b + grad + wd·w; w ← w − ε·b")
    drop = steps.loc[steps["lr"].diff() < 0, "step"]
    for ax in (left, right):
        for step in drop:
            ax.axvline(step, color="gray", ls=":", lw=1)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    left.set(yscale="log", ylabel="|Δw| per step", title="step sizes (dotted: learning rate ÷ 10)")
    left.legend(fontsize=7)
    right.plot(steps["step"], steps["distance"].clip(lower=1e-17))
    right.set(yscale="log", ylabel="|w_paper − w_torch|", title="distance between the two runs")
    fig.tight_layout()
    return fig


def layer_scales(tables: dict):
    """Per layer, for each initialization: the std of its outputs and |grad| / |weight| (diagnostics.layer_scales)."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    for name, table in tables.items():
        left.plot(table["layer"], table["output_std"], "o-", label=name)
        right.plot(table["layer"], table["grad_to_weight"], "o-", label=name)
    left.set(yscale="log", ylabel="std of the layer's outputs", title="signal through the net at initialization")
    right.set(yscale="log", ylabel="|grad| / |weight|", title="relative gradient per layer")
    for ax in (left, right):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def init_trials(history, chance_loss: float):
    """Training loss per epoch of each initialization (mean over seeds, thin lines per seed) against the
    loss of a constant prediction: a flat line there has not started learning."""
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    for i, (variant, runs) in enumerate(history.groupby("variant", sort=False)):
        for _, run in runs.groupby("seed"):
            ax.plot(run["epoch"], run["train_loss"], color=f"C{i}", lw=0.6, alpha=0.5)
        mean = runs.groupby("epoch")["train_loss"].mean()
        ax.plot(mean.index, mean.values, "o-", color=f"C{i}", ms=3, label=variant)
    ax.axhline(chance_loss, color="gray", ls="--", lw=1, label=f"chance: ln 10 = {chance_loss:.3f}")
    ax.set(xlabel="epochs", ylabel="training loss", title="does it learn? training loss per initialization")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def schedule(history):
    """Validation error and learning rate over epochs under the plateau schedule, one line per variant."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.6))
    (train, train_name), (val, val_name) = training_curve(history), VALIDATION
    for i, (variant, runs) in enumerate(history.groupby("variant", sort=False)):
        for _, run in runs.groupby("seed"):
            left.plot(run["epoch"], run[val], color=f"C{i}", label=variant)
            left.plot(run["epoch"], run[train], "--", color=f"C{i}", lw=0.8)
            right.plot(run["epoch"], run["lr"], color=f"C{i}", label=variant)
    left.set(xlabel="epochs", ylabel="top-1 error (%)", title=f"{val_name} (solid) and {train_name} (dashed) error")
    drops = lr_drops(history).tolist()
    right.set(xlabel="epochs", ylabel="learning rate", yscale="log",
              title="learning rate, ÷10 on a plateau: " + (f"drops per run {drops}" if any(drops) else "it never dropped"))
    for ax in (left, right):
        handles, labels = ax.get_legend_handles_labels()
        ax.legend(dict(zip(labels, handles)).values(), dict(zip(labels, handles)).keys(), fontsize=8)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def paired_differences(history, pairs: dict, paper: float | dict | None = None, column: str = "test_top1",
                       ylabel: str = "error saved (points)", title: str = ""):
    """A claim that is a difference, seed by seed: for each label -> (worse, better) variant pair, the final
    `column` of `worse` minus that of `better` per seed (dots), their mean and 95% t interval (bar), zero
    (no effect) and the paper's effect (dashed) over the pairs it is about: `paper` a number for every pair,
    or {label: number} for some (the paper gives no number for the others)."""
    fig, ax = plt.subplots(figsize=(1.6 + 1.8 * len(pairs), 3.6))
    for i, (label, (worse, better)) in enumerate(pairs.items()):
        gain = paired_gain(history, worse=worse, better=better, column=column)
        seeds = np.array(gain["per_seed"], dtype=float)
        ax.scatter(np.full(len(seeds), i) + np.linspace(-0.08, 0.08, len(seeds)), seeds, color="C0", zorder=3,
                   label="one seed" if i == 0 else None)
        if gain["n"] > 1:
            interval = from_summary(gain["mean"], gain["std"], gain["n"])  # the interval the claims rules read
            ax.errorbar(i + 0.25, interval.mean, yerr=interval.half_width, fmt="s", color="C3", capsize=5,
                        label="mean, 95% t interval" if i == 0 else None)
    ax.axhline(0, color="gray", lw=1)
    papers = paper if isinstance(paper, dict) else {} if paper is None else dict.fromkeys(pairs, paper)
    for n, (label, value) in enumerate(papers.items()):  # a dash over each pair the paper's number is about
        i = list(pairs).index(label)
        ax.plot([i - 0.45, i + 0.45], [value, value], color="C2", ls="--", lw=1.2, label=f"paper: {value:g}" if n == 0 else None)
    ax.set_xticks(range(len(pairs)), list(pairs), fontsize=8)
    ax.set_xlim(-0.6, len(pairs) - 0.4)
    ax.set(ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
    return fig


def gain_by_epoch(table, paper: float | None = None, ylabel: str = "error saved (points)", title: str = ""):
    """A paired gain after each epoch (experiment.gain_by_epoch): mean and its 95% t interval over seeds (the
    interval the claims rules read), against zero and the paper's effect (dashed)."""
    fig, ax = plt.subplots(figsize=(6, 3.6))
    half = [from_summary(m, s, n).half_width if n > 1 else np.nan for m, s, n in zip(table["mean"], table["std"], table["n"])]
    half = np.asarray(half, dtype=float)
    ax.plot(table["epoch"], table["mean"], "o-", color="C0", label="mean over seeds")
    ax.fill_between(table["epoch"], table["mean"] - half, table["mean"] + half, color="C0", alpha=0.2,
                    label="95% t interval")
    ax.axhline(0, color="gray", lw=1)
    if paper is not None:
        ax.axhline(paper, color="C2", ls="--", lw=1.2, label=f"paper: {paper:g}")
    ax.set(xlabel="epochs", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def variant_bars(table, reference: str, title: str = "", ylabel: str = "test top-1 error (%)"):
    """Mean and standard deviation over seeds per variant (experiment.compare), the reference dashed."""
    fig, ax = plt.subplots(figsize=(7, 3.4))
    ax.bar(table.index, table["mean"], yerr=table["std"], capsize=4, color=["C1" if v == reference else "C0" for v in table.index],
           label="mean ± std over seeds")
    ax.axhline(table.loc[reference, "mean"], color="gray", ls="--", lw=1, label=f"{reference} (reference)")
    ax.set_ylim(0, None)  # bars start at zero: a cut axis would make a small difference look large
    ax.set(xlabel="variant", ylabel=ylabel, title=title)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=8)
    return fig


def verdict_counts(counts, profile: str):
    """How many claim rows got each verdict (a value_counts of the claims table's verdict column)."""
    fig, ax = plt.subplots(figsize=(6, 2.4))
    counts.sort_values().plot.barh(ax=ax, color="C0")
    ax.set_xlabel("claim rows")
    ax.set_title(f"verdicts, {profile} profile")
    return fig


def confusion_matrix(table, title: str = ""):
    """A confusion matrix (predict.confusion: true classes as rows, predicted as columns) as a heat map with
    its counts, each row shaded by its share of that class's images."""
    counts = table.to_numpy()
    share = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.2 + 0.75 * len(table.columns), 1 + 0.6 * len(table.index)))
    ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    for (i, j), count in np.ndenumerate(counts):
        ax.text(j, i, str(count), ha="center", va="center", fontsize=8, color="white" if share[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(table.columns)), table.columns, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(table.index)), table.index, fontsize=8)
    ax.set(xlabel="predicted class", ylabel="true class")
    ax.set_title(title or "confusion matrix (counts; shade: share of the true class)", fontsize=9)
    fig.tight_layout()
    return fig
