"""Regime checks: did the runs reach the state a claim speaks about (converged, overfitting)? claims.py
judges with them.

Every check reads the validation split and the eval-mode training subset (experiment.train_seeds's
`val_*` and `train_eval_*` columns), never the test set: a regime chosen on the test curve would select the
reported numbers on themselves.

Converged, by construction: a run has converged when its plateau schedule is spent (optim.schedule_spent,
the same rule that ends it), or when a slope test on its validation curve shows it has levelled off
(`levelled_off`).
"""

from __future__ import annotations

import pandas as pd
from scipy import stats as scipy_stats

from .claims import CONVERGED, CONVERGED_WITHIN, STILL_IMPROVING
from .experiment import last_epoch
from .optim import schedule_spent

CONFIDENCE = 0.95  # of the slope test's one-sided bound
WINDOW = 5  # epochs the slope test reads


def smoothed(run: pd.DataFrame, column: str, smooth: int = 1) -> pd.Series:
    """One run's `column` by epoch, as a centred running mean over `smooth` epochs (1: as measured).
    Centred, so the curve does not lag; at constant learning rate the error wanders a point or two
    from epoch to epoch, and a single lucky epoch should not decide when a run converged."""
    return run.sort_values("epoch")[column].rolling(smooth, center=True, min_periods=1).mean()


def levelled_off(values: pd.Series, window: int = WINDOW, within: float = CONVERGED_WITHIN,
                 confidence: float = CONFIDENCE) -> bool:
    """Whether a curve (one value per epoch, as measured) has levelled off: the data of its last `window`
    epochs show, with `confidence`, that it would fall by less than `within` points over `window` more.

    The test: b is the least-squares slope of the last `window` values against the epoch, s its standard error
    (from the residual scatter, window - 2 degrees of freedom), t the one-sided Student-t quantile. b - t*s is
    the steepest fall the data allow at that confidence; the curve has levelled off when (b - t*s) * window >
    -within. A curve that rises (an overfitting net's validation error) has levelled off too: it is no longer
    improving. Why not "the slope is not significantly below 0": that test passes whenever the window is
    too noisy to tell, so a noisy curve still falling would count as converged. Here noise widens t*s and
    keeps the curve "still improving", so the test errs only toward an inconclusive verdict, never toward a
    settled gain that was not. The price: at a constant rate an epoch-to-epoch scatter of about a point
    never passes, which is why runs anneal (the schedule's drops calm the curve, or its end decides).
    Fewer than `window` values (or a window under 3): not levelled off.
    """
    if window < 3 or len(values) < window:
        return False
    tail = values.iloc[-window:].to_numpy(dtype=float)
    fit = scipy_stats.linregress(range(window), tail)
    steepest = fit.slope - scipy_stats.t.ppf(confidence, window - 2) * fit.stderr
    return steepest * window > -within


def run_converged(run: pd.DataFrame, window: int = WINDOW, within: float = CONVERGED_WITHIN) -> bool:
    """Whether one (variant, seed) run has converged: its plateau schedule is spent (the `plateau_drops` and
    `patience` columns train_seeds writes; Recipe.finished's rule), or its validation curve `levelled_off`."""
    run = run.sort_values("epoch")
    spent = "plateau_drops" in run and schedule_spent(run["lr"].tolist(), run["val_top1"].tolist(),
                                                      int(run["plateau_drops"].iloc[0]), int(run["patience"].iloc[0]))
    return spent or levelled_off(run["val_top1"], window, within)


def converged(history: pd.DataFrame, window: int = WINDOW, within: float = CONVERGED_WITHIN) -> bool:
    """Whether every (variant, seed) run of `history` has converged (run_converged)."""
    return all(run_converged(run, window, within) for _, run in history.groupby(["variant", "seed"], sort=False))


def gain_state(history: pd.DataFrame, worse: str, better: str) -> str:
    """Where the gain of variant `better` over `worse` stands at the end (claims.GAIN_STATES): "converged"
    when every run of both has converged, else "still improving", when the gain may yet shrink or change sign.

    There is no "lower bound" state: the argument for it (the worse net settled, the better one still falling,
    so the gain can only widen) fails for a net that overfits, whose validation error rises later, as the
    nets of C5, C7 and C9 do by design. A gain compared while a net still learns measures a moment, not the nets.
    """
    both = history[history["variant"].isin([worse, better])]
    return CONVERGED if converged(both) else STILL_IMPROVING


def epochs_to_best(history: pd.DataFrame, column: str = "val_top1", within: float = 0.5,
                   smooth: int = 1) -> pd.DataFrame:
    """Per (variant, seed): the first epoch whose (smoothed) `column` is within `within` points of the
    run's best, i.e. when it converged; `still_improving` flags runs that had not converged (run_converged,
    the test `converged` applies to every run)."""
    rows = []
    for (variant, seed), run in history.groupby(["variant", "seed"], sort=False):
        values, epochs = smoothed(run, column, smooth), run.sort_values("epoch")["epoch"]
        best = values.min()
        rows.append({"variant": variant, "seed": seed, "epochs": epochs[values <= best + within].iloc[0], "best": best,
                     "still_improving": not run_converged(run)})
    return pd.DataFrame(rows)


def with_gap(frame: pd.DataFrame, column: str = "val_top1") -> pd.DataFrame:
    """`frame` with a `gap` column: `column` minus the eval-mode training error (train_eval_top1, no dropout,
    no augmentation), points. On a history the validation gap each epoch; on train_seeds's finals, with
    column="test_top1", the reported one."""
    return frame.assign(gap=frame[column] - frame["train_eval_top1"])


def overfitting_gap(history: pd.DataFrame, variant: str) -> float:
    """Final validation minus eval-mode training top-1 error of `variant`, mean over seeds (points): the
    regime check of C5, C7 and C9 (claims.overfits)."""
    final = with_gap(last_epoch(history))
    return float(final.loc[final["variant"] == variant, "gap"].mean())


def final_train_error(history: pd.DataFrame, variant: str) -> float:
    """Final eval-mode training top-1 error of `variant` (%), mean over seeds: C12's regime check, whether the
    nets memorised their training images (claims.MEMORISED_BELOW)."""
    final = last_epoch(history)
    return float(final.loc[final["variant"] == variant, "train_eval_top1"].mean())
