"""Controlled experiments: train variants of a net over several seeds, then compare them.

The section notebooks call `train_seeds` once per variant (ReLU and tanh, with and without LRN,
...) and compare the results. A single run is an anecdote, so every number they report is a
mean and a spread over seeds. Each (variant, seed) run checkpoints after every epoch under the
notebook's results folder, so an interrupted notebook resumes where it stopped and a finished
run is not trained again.

Three splits (data.Splits): every epoch evaluates the validation split and a fixed subset of the training
images in eval mode; the learning-rate schedule, the early end, the sweeps and the regime checks
(regime.py) read those. The test set is evaluated once per run, on its final weights, into `finals`: the
reported numbers, which nothing here decides on.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from pathlib import Path

import pandas as pd
import torch
from torch import nn

from . import checkpoint, engine
from .augment import channels_last
from .data import ImageSet, Splits
from .engine import FitOptions, NonFiniteLossError, fit
from .loaders import TensorLoader
from .optim import Recipe
from .backend import seed_everything


# The training images evaluated in eval mode after every epoch (no dropout, the test-time transform): the
# training error of every overfitting gap. Fixed (one seed) so every epoch and seed sees the same images.
# The default (cifar's); a profile may name fewer (Profile.train_eval_images, passed by Run.train_options).
TRAIN_EVAL_IMAGES = 2_000
TRAIN_EVAL_SEED = 0
EVAL_BATCH = 500


@dataclass
class Trained:
    """What train_seeds returns. `history`: one row per (seed, epoch), engine.fit's columns (train_* running in
    train mode, val_* and train_eval_* in eval mode) with variant, seed, plateau_drops and patience; no test
    error. `finals`: one row per seed, its last epoch's row and the test set's errors of the final weights
    (test_loss, test_top1, test_top5), the numbers a notebook reports. `models`: the trained nets."""

    history: pd.DataFrame
    finals: pd.DataFrame
    models: list[nn.Module]


def train_seeds(name: str, make_model, recipe: Recipe, sets: Splits, *, seeds, train_transform=None,
                test_transform=None, device: str | torch.device = "cpu", amp_dtype: torch.dtype | None = None,
                checkpoints: str | Path | None = None, init=None, train_eval_images: int = TRAIN_EVAL_IMAGES) -> Trained:
    """Train `make_model()` once per seed with `recipe` on `sets.train`, the schedule and early end reading
    `sets.val`; then evaluate `sets.test` once on the final weights (not at all when it is None).

    `test_transform` prepares every evaluated image (validation, the eval-mode training subset, test);
    `init(model)`, when given, re-initializes the fresh model (e.g. a paper-style Gaussian init);
    `train_eval_images` training images of one fixed draw are evaluated in eval mode after every epoch.
    """
    if test_transform is None and train_transform is not None:
        raise ValueError("pass test_transform too: the validation, training-subset and test images are evaluated "
                         "with it (e.g. the same Normalize as training, without augmentation)")
    device = torch.device(device)
    evaluate = {"val": eval_loader(sets.val, test_transform, device),
                "train_eval": eval_loader(sets.train.subset(train_eval_images, TRAIN_EVAL_SEED), test_transform, device)}
    histories, finals, models = [], [], []
    for seed in seeds:
        model = initial_model(make_model, seed, init).to(device, memory_format=torch.channels_last)
        train_loader = TensorLoader(sets.train, recipe.batch_size, shuffle=True, seed=seed, device=device,
                                    drop_last=True, transform=channels_last(train_transform))
        optimizer = recipe.optimizer(model)
        path = (checkpoint.run_path(checkpoints, name, seed, model, recipe, len(sets.train), len(sets.val))
                if checkpoints else None)
        options = FitOptions(checkpoint=path, amp_dtype=amp_dtype, desc=f"{name} seed {seed}", batch_progress=False,
                             finished=recipe.finished)
        history = fit(model, train_loader, evaluate=evaluate, optimizer=optimizer, scheduler=recipe.scheduler(optimizer),
                      epochs=recipe.epochs, options=options)
        history = history.assign(variant=name, seed=seed, plateau_drops=recipe.plateau_drops, patience=recipe.patience)
        histories.append(history)
        # the test set's one reading: after training, on the final weights
        finals.append({**history.iloc[-1].to_dict(), **final_test_errors(model, sets.test, test_transform, amp_dtype)})
        models.append(model)
    return Trained(pd.concat(histories, ignore_index=True), pd.DataFrame(finals), models)


def eval_loader(images: ImageSet, transform, device: torch.device) -> TensorLoader:
    """Batches of `images` in order, prepared by `transform` (the test-time one: no augmentation)."""
    return TensorLoader(images, EVAL_BATCH, device=device, transform=channels_last(transform))


def final_test_errors(model: nn.Module, test: ImageSet | None, transform, amp_dtype=None) -> dict[str, float]:
    """test_loss, test_top1, test_top5 of `model` as it is (a run's final weights); {} without a test set."""
    if test is None:
        return {}
    counts = engine.evaluate(model, eval_loader(test, transform, engine.model_device(model)), amp_dtype)
    return {f"test_{k}": v for k, v in engine.error_rates(counts).items()}


def combine(results: Iterable[Trained]) -> Trained:
    """Several variants' train_seeds results as one: histories, finals and models concatenated."""
    results = list(results)
    return Trained(pd.concat([r.history for r in results], ignore_index=True),
                   pd.concat([r.finals for r in results], ignore_index=True), [m for r in results for m in r.models])


def initial_model(make_model, seed: int, init=None) -> nn.Module:
    """The net train_seeds starts from for `seed` (it seeds, builds, then re-initializes), e.g. to measure
    how far training moved the weights."""
    seed_everything(seed)
    model = make_model()
    if init is not None:
        init(model)
    return model


def sweep_lr(name: str, make_model, recipe: Recipe, lrs, sets: Splits, *, seed: int = 0, extend: int = 2,
             **options) -> pd.DataFrame:
    """Validation error after `recipe.epochs` for each learning rate (one seed); a rate whose loss diverges
    scores 100%. The paper chose each net's rate "to make training as fast as possible". The sweep never
    reads the test set (it trains on `sets` without it).

    When the best rate sits at an end of the grid, the grid grows past that end by the same
    factor, up to `extend` times, so the chosen rate is a real minimum and not the grid's edge.
    """
    lrs, rows, sets = sorted(lrs), {}, replace(sets, test=None) if sets is not None else None
    for _ in range(extend + 1):
        for lr in lrs:
            if lr not in rows:
                rows[lr] = _sweep_point(name, make_model, replace(recipe, lr=lr), sets, seed, options)
        best = min(rows, key=rows.get)
        lrs = grown_grid(lrs, best, can_grow_up=rows[best] < 100)
        if lrs is None:
            break
    return pd.DataFrame([{"variant": name, "lr": lr, "val_top1": rows[lr]} for lr in sorted(rows)])


def _sweep_point(name, make_model, recipe: Recipe, sets: Splits, seed: int, options: dict) -> float:
    try:
        trained = train_seeds(run_name(name, recipe.lr), make_model, recipe, sets, seeds=[seed], **options)
        return float(trained.history["val_top1"].iloc[-1])
    except NonFiniteLossError:
        return 100.0


def sweep_to_line(name: str, make_model, recipe: Recipe, lrs, sets: Splits, *, seeds, line: float, extend: int = 2,
                  **options) -> pd.DataFrame:
    """C1's sweep on its own criterion: epochs each rate needs to bring the running training error to `line`,
    seed by seed, under `recipe.epochs` (the cap). A rate's score is its slowest seed: the rate that gets every
    seed across soonest is the fastest ("to make training as fast as possible"), the mean breaking ties, and
    where no run crossed, the mean final training error.

    Rates are tried from the highest down, and a run stops once it can no longer win: at the slowest seed of
    the best rate so far (`give_up_after`), so the pruning never changes the answer. A diverging run scores
    inf. When the best rate sits at an end of the grid, the grid grows past it, up to `extend` times. Each run
    is `run_name(name, lr)`'s, so train_seeds under that name (and a lower `stop_at_train_top1`) continues the
    chosen rate's runs instead of training them again."""
    lrs, scores, rows, sets = sorted(lrs), {}, [], replace(sets, test=None)
    for _ in range(extend + 1):
        for lr in sorted(set(lrs) - set(scores), reverse=True):
            best = min((score[0] for score in scores.values()), default=math.inf)
            reached, final = [], []
            for seed in seeds:
                cap = recipe.epochs if math.isinf(best) else min(recipe.epochs, math.ceil(best))
                run = replace(recipe, lr=lr, stop_at_train_top1=line, give_up_after=cap)
                try:
                    history = train_seeds(run_name(name, lr), make_model, run, sets, seeds=[seed], **options).history
                    epochs, final_error = epochs_to(history, line), float(history["train_top1"].iloc[-1])
                except NonFiniteLossError:
                    epochs, final_error = math.nan, math.inf
                reached.append(math.inf if math.isnan(epochs) else epochs)
                final.append(final_error)
                rows.append({"variant": name, "lr": lr, "seed": seed, "epochs_to_line": reached[-1], "cap": cap,
                             "final_train_top1": final[-1]})
                if reached[-1] > best:  # this rate cannot win: its remaining seeds need not run
                    break
            scores[lr] = (max(reached), sum(reached) / len(reached), sum(final) / len(final))
        chosen = min(scores, key=scores.get)
        lrs = grown_grid(lrs, chosen) if math.isfinite(scores[chosen][0]) else None
        if lrs is None:
            break
    table = pd.DataFrame(rows)
    return table.assign(chosen=table["lr"] == chosen)


def grown_grid(lrs: list[float], best: float, can_grow_up: bool = True) -> list[float] | None:
    """The sorted grid `lrs` grown one step (its own factor) past the end `best` sits at, so a chosen rate is a
    real minimum and not the grid's edge; None when `best` is inside it (or at the top and `can_grow_up` is not)."""
    if len(lrs) < 2:
        return None
    if best == lrs[0]:
        return [lrs[0] * lrs[0] / lrs[1], *lrs]
    if best == lrs[-1] and can_grow_up:
        return [*lrs, lrs[-1] * lrs[-1] / lrs[-2]]
    return None


def run_name(name: str, lr: float) -> str:
    """The checkpoint name of a sweep's run at `lr`."""
    return f"{name}-lr{lr:.3g}"


def best_lr(sweep: pd.DataFrame) -> float:
    """The learning rate with the lowest validation error in a sweep."""
    return float(sweep.loc[sweep["val_top1"].idxmin(), "lr"])


def last_epoch(history: pd.DataFrame) -> pd.DataFrame:
    """The final row of every (variant, seed) run."""
    return history.sort_values("epoch", kind="stable").groupby(["variant", "seed"], sort=False).tail(1).reset_index(drop=True)


def epochs_to(history: pd.DataFrame, threshold: float, column: str = "train_top1", start: float = 90.0) -> float:
    """Epochs one run needed to bring `column` down to `threshold`, interpolated linearly between
    epochs (starting from `start` at epoch 0, chance for 10 classes); NaN if it never got there."""
    epochs = [0.0, *history["epoch"].astype(float)]
    values = [start, *history[column]]
    for (e0, v0), (e1, v1) in zip(zip(epochs, values), zip(epochs[1:], values[1:])):
        if v1 <= threshold:
            return e1 if v0 <= threshold else e0 + (v0 - threshold) / (v0 - v1) * (e1 - e0)
    return math.nan


def spread(values) -> dict:
    """Mean, standard deviation and count of a list of per-seed numbers (NaNs dropped)."""
    series = pd.Series(list(values), dtype=float).dropna()
    return {"mean": series.mean(), "std": series.std(ddof=1) if len(series) > 1 else math.nan, "n": len(series)}


def compare(history: pd.DataFrame, column: str = "test_top1") -> pd.DataFrame:
    """Final `column` per variant as mean, std and n over seeds: of train_seeds's finals for test errors, of a
    history for the others."""
    final = last_epoch(history)
    return pd.DataFrame({variant: spread(group[column]) for variant, group in final.groupby("variant", sort=False)}).T


def paired_gain(history: pd.DataFrame, worse: str, better: str, column: str = "test_top1") -> dict:
    """How much lower `column` ends for variant `better` than for `worse`, seed by seed (same seeds
    share their data order and, where shapes match, their init), as mean, std and n."""
    final = last_epoch(history).set_index(["variant", "seed"])[column]
    gains = (final[worse] - final[better]).dropna()
    return {**spread(gains), "per_seed": gains.round(3).tolist()}


def lr_drop_epochs(history: pd.DataFrame) -> pd.Series:
    """Per (variant, seed) run, the epochs at which the plateau schedule divided the learning rate."""
    ordered = history.sort_values("epoch", kind="stable").groupby(["variant", "seed"], sort=False)
    return ordered.apply(lambda run: run.loc[run["lr"].diff() < 0, "epoch"].tolist())


def lr_drops(history: pd.DataFrame) -> pd.Series:
    """How many times the plateau schedule divided each (variant, seed) run's learning rate."""
    return lr_drop_epochs(history).str.len()


def held_to_end(history: pd.DataFrame, columns=("train_eval_top1", "val_top1")) -> pd.DataFrame:  # the curves' columns
    """`columns` of every (variant, seed) run up to the last epoch of its variant, a run that ended early
    (Recipe.finished) holding its last values: a mean over seeds then keeps the same seeds at every epoch
    and ends at the mean of the final errors, the numbers the verdicts use (last_epoch)."""
    parts, ends = [], history.groupby("variant")["epoch"].max()
    for (variant, seed), run in history.groupby(["variant", "seed"], sort=False):
        held = run.set_index("epoch")[list(columns)].reindex(range(int(run["epoch"].min()), int(ends[variant]) + 1)).ffill()
        parts.append(held.rename_axis("epoch").reset_index().assign(variant=variant, seed=seed))
    return pd.concat(parts, ignore_index=True)


def gain_by_epoch(history: pd.DataFrame, worse: str, better: str, column: str = "val_top1") -> pd.DataFrame:
    """paired_gain as it stood after each epoch (on the validation error: the test set has no curve): how
    stable a difference is while the nets still train."""
    rows = [{"epoch": epoch, **paired_gain(history[history["epoch"] <= epoch], worse, better, column)}
            for epoch in sorted(history["epoch"].unique())]
    return pd.DataFrame(rows).drop(columns="per_seed")


def epochs_to_threshold(history: pd.DataFrame, threshold: float, cap: int, keys=("recipe", "activation", "seed")):
    """epochs_to for every run; a run that never got there counts as `cap` epochs, flagged
    `reached=False`, so anything computed from it is a bound, not a measurement."""
    rows = []
    for key, run in history.groupby(list(keys), sort=False):
        epochs = epochs_to(run, threshold)
        rows.append({**dict(zip(keys, key)), "epochs": cap if math.isnan(epochs) else epochs,
                     "reached": not math.isnan(epochs)})
    return pd.DataFrame(rows)


def learning_outcome(history: pd.DataFrame, threshold: float, cap: int) -> pd.DataFrame:
    """Per variant, in order: how many runs brought training error to `threshold` within `cap` epochs,
    the mean epochs of those that did, and the runs' final training loss, training and validation errors
    (means over seeds)."""
    reach = epochs_to_threshold(history, threshold, cap, keys=("variant", "seed")).groupby("variant", sort=False)
    final = last_epoch(history).groupby("variant", sort=False)
    return pd.DataFrame({"runs that learned": reach["reached"].sum(),
                         f"epochs to {threshold:g}% (mean)": reach.apply(lambda r: r.loc[r["reached"], "epochs"].mean()),
                         "final train loss": final["train_loss"].mean(), "final train top-1": final["train_top1"].mean(),
                         "final val top-1": final["val_top1"].mean()})


def speedup(reach: pd.DataFrame, slow: str = "tanh", fast: str = "relu", by: str = "activation",
            group: str = "recipe") -> pd.DataFrame:
    """Per `group`: epochs of the `slow` and `fast` variants and their ratio, seed by seed, as mean
    and std; `bound` is True when some slow run never reached the threshold (the ratio is then at least that)."""
    rows = {}
    for name, runs in reach.groupby(group, sort=False):
        epochs = runs.pivot(index="seed", columns=by, values="epochs")
        ratio = spread(epochs[slow] / epochs[fast])
        rows[name] = {f"{fast}_epochs": epochs[fast].mean(), f"{slow}_epochs": epochs[slow].mean(),
                      "ratio": ratio["mean"], "ratio_std": ratio["std"], "n": ratio["n"],
                      "bound": not runs["reached"].all()}
    return pd.DataFrame(rows).T


def ten_patch_errors(model: nn.Module, test: ImageSet, normalize, size: int, *, batch_size: int = 250,
                     amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Top-1 and top-5 test error (%) of the centre patch alone and of the paper's ten patches
    (section 4.1): `normalize` prepares whole images, engine.evaluate cuts the patches."""
    loader = TensorLoader(test, batch_size, transform=normalize, device=engine.model_device(model))
    return engine.error_rates(engine.evaluate(model, loader, amp_dtype, ten_crop=size))


def describe_ratio(row) -> str:
    """'1.47x ± 0.07', or 'at least 1.45x ± 0.07' for a bound."""
    return f"{'at least ' if row.bound else ''}{row.ratio:.2f}x ± {row.ratio_std:.2f}"


def ratio_spread(row) -> dict:
    """One row of `speedup` as the {"mean", "std", "n"} a claims rule judges."""
    return {"mean": row.ratio, "std": row.ratio_std, "n": int(row.n)}


def describe_speedup(name: str, row, threshold: float = 25.0) -> str:
    """One row of `speedup` in words: each activation's epochs to `threshold`, and their ratio."""
    return (f"{name:13s}: ReLU reaches {threshold:g}% in {row.relu_epochs:.2f} epochs, tanh in "
            f"{'more than ' if row.bound else ''}{row.tanh_epochs:.2f} -> {describe_ratio(row)} (n={row.n})")


def convergence_ratio(converged: pd.DataFrame, variant: str, baseline: str) -> dict:
    """Epochs `variant` took to converge over the epochs `baseline` took, seed by seed (epochs_to_best's
    rows), as mean, std and n: C9's "roughly doubles the number of iterations required to converge"."""
    epochs = converged.pivot(index="seed", columns="variant", values="epochs")
    return spread(epochs[variant] / epochs[baseline])


def first_to_learn(outcome: pd.DataFrame, runs: int) -> str | None:
    """The first variant of learning_outcome's table (in its order) whose every run learned; None if none did."""
    return next((name for name in outcome.index if outcome.loc[name, "runs that learned"] == runs), None)


def describe_init_trials(outcome: pd.DataFrame, fix: str | None, epochs: int, steps: int) -> str:
    """Notebook 07's answer about the init trials: did the paper's init (the first row) learn, and what fixed it."""
    paper = "learned" if outcome.iloc[0]["runs that learned"] else "had not started learning"
    return (f"after {epochs} epochs ({steps} SGD steps): the paper's init {paper}; smallest change that "
            f"learned in every run: {fix}")


def describe_schedule(drops: pd.Series, epochs: int) -> str:
    """What a schedule figure shows: its rule only, when the rate never dropped (lr_drop_epochs per run)."""
    if any(drops.str.len()):
        return f"the learning rate dropped in {int((drops.str.len() > 0).sum())} of {len(drops)} runs (epochs below)"
    return (f"the validation error kept improving, so ε never dropped in {epochs} epochs: at this budget the figure "
            "shows the schedule's rule, not its effect")


class Ensemble(nn.Module):
    """Section 6's ensemble as one model: the log of its members' averaged softmax outputs, so that
    engine.evaluate ranks the averaged prediction (and its loss is the ensemble's cross-entropy)."""

    def __init__(self, models: list[nn.Module]):
        super().__init__()
        self.members = nn.ModuleList(models)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([member(x).float().softmax(dim=-1) for member in self.members])
        return probs.mean(dim=0).clamp_min(torch.finfo(torch.float32).tiny).log()


def ensemble_errors(models: list[nn.Module], test: ImageSet, transform, *, batch_size: int = 500,
                    amp_dtype: torch.dtype | None = None) -> dict:
    """Top-1 test error (%) of each model and of their averaged softmax outputs (section 6's ensemble)."""
    loader = TensorLoader(test, batch_size, transform=channels_last(transform), device=engine.model_device(models[0]))

    def top1(model: nn.Module) -> float:
        return engine.error_rates(engine.evaluate(model, loader, amp_dtype))["top1"]

    return {"single": [top1(model) for model in models], "ensemble": top1(Ensemble(models))}
