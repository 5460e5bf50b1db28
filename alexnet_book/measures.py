"""The measures protocol v2's rules (claims.py) read, taken from train_seeds's results: one call per claim.

Each function turns histories, finals or trained nets into the estimate a rule judges: per-line speed-ups
(C1), per-image errors and their paired bootstrap over test images (C8, C13), the pace of the eval-mode
training error (C9), and `judge_gain`, the paired gain between two variants judged and recorded in one call
(C4, C5, C7, C12).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from . import engine, regime
from .augment import channels_last
from .claims import C1_LINES, Judgement
from .data import ImageSet
from .experiment import Ensemble, epochs_to, epochs_to_threshold, last_epoch, paired_gain, spread, speedup
from .loaders import TensorLoader
from .stats import Interval, paired_bootstrap

# C9's pace levels (% eval-mode training error): levels every run reaches, the net with dropout too, so the
# ratio of epochs (dropout over none) is a measurement at each, not a bound. Three, so the verdict is shown
# over a range (claims.robust_verdict) rather than at one picked level.
PACE_LEVELS = (40.0, 30.0, 20.0)
ENSEMBLE_SIZE = 5  # section 6 averaged five CNNs
BATCH = 500


def speedup_by_line(history: pd.DataFrame, cap: int, recipe: str,
                    lines=C1_LINES) -> tuple[dict[float, dict], dict[float, bool]]:
    """C1's inputs for the `recipe` runs of `history` (columns recipe, activation, seed): at each training-error
    line, the per-seed speed-up tanh epochs / ReLU epochs as {"mean", "std", "n"}, and whether every run
    crossed it (a run that did not counts `cap` epochs, so the ratio there is a lower bound)."""
    runs = history[history["recipe"] == recipe]
    ratios, crossed = {}, {}
    for line in lines:
        row = speedup(epochs_to_threshold(runs, line, cap)).loc[recipe]
        ratios[line] = {"mean": float(row.ratio), "std": float(row.ratio_std), "n": int(row.n)}
        crossed[line] = not bool(row.bound)
    return ratios, crossed


def image_misses(model: nn.Module, test: ImageSet, transform, *, ten_crop: int | None = None,
                 amp_dtype: torch.dtype | None = None) -> dict[str, np.ndarray]:
    """Top-1 miss (1 wrong, 0 right) of `model` on each test image, in order: {"top1"}; with `ten_crop=size`
    {"centre", "ten"}, the centre patch alone and the ten patches' averaged softmax (`transform` then
    prepares whole images, as for engine.evaluate). The inputs of stats.paired_bootstrap."""
    model.eval()
    loader = TensorLoader(test, BATCH, transform=channels_last(transform), device=engine.model_device(model))
    parts: dict[str, list] = {}
    with torch.no_grad():
        for x, y in loader:
            if ten_crop is None:
                with engine.autocast(engine.model_device(model), amp_dtype):
                    probs = {"top1": model(x).float()}
            else:
                patches = engine.ten_patch_probabilities(model, x, ten_crop, amp_dtype)
                probs = {"centre": patches[4], "ten": patches.mean(dim=0)}
            for key, p in probs.items():
                parts.setdefault(key, []).append((p.argmax(dim=1) != y).float().cpu())
    return {key: torch.cat(chunks).numpy() for key, chunks in parts.items()}


def ten_patch_gain(models: list[nn.Module], test: ImageSet, normalize, size: int, *,
                   amp_dtype: torch.dtype | None = None) -> Interval:
    """C8: how much lower the top-1 error of ten patches is than the centre patch's, on the same nets, as a
    paired bootstrap over test images (n counts test images).

    The seeds' nets are pooled by averaging each image's miss over them, for each way: the pairs stay the test
    images, which are the independent units. Concatenating the seeds would count every image once per seed,
    as if the copies were independent, and narrow the interval by sqrt(seeds) without new evidence."""
    misses = [image_misses(model, test, normalize, ten_crop=size, amp_dtype=amp_dtype) for model in models]
    centre = np.mean([m["centre"] for m in misses], axis=0)
    ten = np.mean([m["ten"] for m in misses], axis=0)
    return paired_bootstrap(centre, ten)


def ensemble_groups(models: list, size: int = ENSEMBLE_SIZE) -> list[list]:
    """Disjoint ensembles of `size` members (the paper's five) where the nets allow two or more; else one
    ensemble of every net, since one ensemble of all says more than one of five beside unused nets."""
    if len(models) >= 2 * size:
        return [models[start:start + size] for start in range(0, len(models) - size + 1, size)]
    return [list(models)]


def ensemble_gain(models: list[nn.Module], test: ImageSet, transform, *,
                  amp_dtype: torch.dtype | None = None) -> tuple[Interval, list[list[nn.Module]]]:
    """C13: how much lower the ensemble's top-1 error is than its members' (ensemble_groups), as a paired
    bootstrap over test images of the members' mean miss on each image minus the ensemble's, pooled over the
    ensembles by averaging each image's numbers over them (n counts test images, as in ten_patch_gain).
    Returns the interval and the ensembles (their count and size go to claims.c13_ensemble)."""
    groups = ensemble_groups(models)
    members, ensembles = [], []
    for group in groups:
        members.append(np.mean([image_misses(m, test, transform, amp_dtype=amp_dtype)["top1"] for m in group], axis=0))
        ensembles.append(image_misses(Ensemble(group), test, transform, amp_dtype=amp_dtype)["top1"])
    return paired_bootstrap(np.mean(members, axis=0), np.mean(ensembles, axis=0)), groups


def pace_ratios(history: pd.DataFrame, variant: str, baseline: str, levels=PACE_LEVELS,
                column: str = "train_eval_top1") -> dict[float, dict]:
    """C9's pace: per level, the ratio of epochs `variant` needed to bring its eval-mode training error
    (`column`) to the level over the epochs `baseline` needed, seed by seed, as {"mean", "std", "n",
    "per_seed", "unreached"}. A seed whose run never reached the level has no ratio: the level's mean and std
    are then NaN (claims.c9_dropout reads that as no interval, inconclusive), n still counting every seed."""
    runs = {key: run for key, run in history.groupby(["variant", "seed"], sort=False)}
    seeds = sorted(seed for (name, seed) in runs if name == variant)
    result = {}
    for level in levels:
        ratios = [epochs_to(runs[variant, seed], level, column) / epochs_to(runs[baseline, seed], level, column)
                  for seed in seeds]
        unreached = sum(math.isnan(r) for r in ratios)
        stats = spread(ratios) if not unreached else {"mean": math.nan, "std": math.nan}
        result[level] = {**stats, "n": len(seeds), "per_seed": [round(r, 3) for r in ratios], "unreached": unreached}
    return result


def dropout_gap_gain(history: pd.DataFrame, worse: str, better: str) -> dict:
    """C9's overfitting measure: how much smaller the final gap (validation minus eval-mode training error,
    regime.with_gap) of `better` is than of `worse`, seed by seed. Validation, not test: a regime measure."""
    return paired_gain(regime.with_gap(last_epoch(history)), worse, better, column="gap")


def judge_gain(results, claim_id: str, history: pd.DataFrame, finals: pd.DataFrame, worse: str, better: str,
               rule: Callable[..., Judgement], unit: str, *, column: str = "test_top1", note: str = "",
               regime_record: dict | None = None, **rule_args) -> tuple[dict, Judgement]:
    """The paired gain of `better` over `worse` on `finals` (`column`, test errors of the final weights), its
    state on the validation curves of `history` (regime.gain_state), `rule(gain, state=..., **rule_args)` and
    results.judged, in one call. Returns the gain and the Judgement."""
    gain = paired_gain(finals, worse, better, column)
    state = regime.gain_state(history, worse, better)
    judgement = rule(gain, state=state, **rule_args)
    results.judged(claim_id, gain, judgement, unit=unit, note=note, regime={"gain": state, **(regime_record or {})})
    return gain, judgement
