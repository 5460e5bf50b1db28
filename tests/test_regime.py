import numpy as np
import pandas as pd
import pytest

from alexnet_book import claims, regime


def runs(curves: dict, lrs: dict | None = None, drops: int = 0, patience: int = 2) -> pd.DataFrame:
    """A history from {variant: validation curve} (seed 0), constant learning rate unless `lrs` gives one."""
    rows = []
    for name, curve in curves.items():
        rates = (lrs or {}).get(name, [0.01] * len(curve))
        rows += [{"variant": name, "seed": 0, "epoch": e, "lr": lr, "val_top1": v, "train_eval_top1": 0.0,
                  "plateau_drops": drops, "patience": patience} for e, (v, lr) in enumerate(zip(curve, rates), 1)]
    return pd.DataFrame(rows)


def test_the_slope_test_passes_flat_and_rising_curves_and_fails_falling_or_noisy_ones():
    assert regime.levelled_off(pd.Series([40.0, 40.1, 39.9, 40.0, 40.05]))  # flat, quiet
    assert regime.levelled_off(pd.Series([30.0, 31, 32, 33, 34]))  # rising: an overfitting net no longer improves
    assert not regime.levelled_off(pd.Series([45.0, 44, 43, 42, 41]))  # a point per epoch
    assert not regime.levelled_off(pd.Series([40.0, 39.8, 39.6, 39.4, 39.2]))  # a point in 5 epochs: not yet
    # flat on average but a point of scatter: too noisy to tell, so not converged (the test errs toward "still improving")
    assert not regime.levelled_off(pd.Series([40.0, 41.0, 39.0, 41.0, 39.5]))
    assert not regime.levelled_off(pd.Series([40.0, 40.0, 40.0]))  # shorter than the window


def test_the_slope_test_holds_its_error_rate_on_synthetic_falling_curves():
    """Curves that really fall by `within` points over the window (a slope of -0.1 a epoch) plus noise: the
    one-sided 95% bound calls them levelled off in about 5% of draws, not more."""
    rng = np.random.default_rng(0)
    falling = [pd.Series(50 - 0.1 * np.arange(5) + rng.normal(0, 0.05, 5)) for _ in range(2000)]
    rate = np.mean([regime.levelled_off(curve) for curve in falling])
    assert rate < 0.07


def test_a_spent_schedule_is_converged_whatever_the_slope():
    # three drops, then three epochs at the final rate without a new best: Recipe.finished's rule
    lrs = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001, 0.0001, 0.0001]
    curve = [60, 50, 45, 44, 43, 42.5, 42.0, 43.0, 42.6, 42.9]
    spent = runs({"a": curve}, {"a": lrs}, drops=3)
    assert regime.run_converged(spent)
    assert not regime.run_converged(runs({"a": curve}, {"a": lrs}, drops=4))  # one drop still to come
    assert not regime.levelled_off(spent["val_top1"])  # the slope test alone would not have said so


def test_converged_needs_every_run_and_epochs_to_best_flags_the_others():
    history = runs({"flat": [60, 45, 40, 40.0, 40.1, 39.9, 40.0], "falling": [60, 50, 45, 42, 40, 38, 36]})
    table = regime.epochs_to_best(history).set_index("variant")
    assert table["still_improving"].to_dict() == {"flat": False, "falling": True}
    assert table["epochs"].to_dict() == {"flat": 3, "falling": 7}
    for name in ("flat", "falling"):  # one test of "converged" for the table and for the regime check
        assert regime.converged(history[history.variant == name]) == (not table.loc[name, "still_improving"])
    assert not regime.converged(history)


def test_gain_state_has_no_lower_bound():
    """Only "converged" (every run of both) or "still improving": a settled worse net beside a better one still
    falling is no lower bound, since an overfitting net's validation error may rise later."""
    flat, falling = [60, 45, 40, 40.0, 40.1, 39.9, 40.0], [60, 50, 45, 42, 40, 38, 36]
    assert regime.gain_state(runs({"worse": flat, "better": flat}), "worse", "better") == claims.CONVERGED
    assert regime.gain_state(runs({"worse": flat, "better": falling}), "worse", "better") == claims.STILL_IMPROVING
    assert regime.gain_state(runs({"worse": falling, "better": flat}), "worse", "better") == claims.STILL_IMPROVING
    others = runs({"worse": flat, "better": flat, "other": falling})
    assert regime.gain_state(others, "worse", "better") == claims.CONVERGED  # a third variant does not count


def test_smoothing_keeps_one_lucky_epoch_from_deciding_the_best_epoch():
    dip = runs({"a": [60, 50, 42, 41, 40, 38, 41, 40, 41, 40]})
    assert regime.epochs_to_best(dip)["epochs"].item() == 6  # the dip to 38 sets the best
    smooth = regime.epochs_to_best(dip, smooth=3)
    assert smooth["epochs"].item() == 5 and smooth["best"].item() == pytest.approx(119 / 3)


def test_the_overfitting_gap_reads_validation_against_eval_mode_training_error():
    history = pd.DataFrame({"variant": ["a", "a", "b"], "seed": [0, 0, 0], "epoch": [1, 2, 2],
                            "train_top1": [60.0, 45.0, 45.0], "train_eval_top1": [50.0, 20.0, 45.0],
                            "val_top1": [55.0, 40.0, 46.0]})
    assert regime.overfitting_gap(history, "a") == 20.0 and regime.overfitting_gap(history, "b") == 1.0
    assert claims.overfits(regime.overfitting_gap(history, "a"))
    assert not claims.overfits(regime.overfitting_gap(history, "b"))
    finals = history.assign(test_top1=[0.0, 41.0, 47.0])
    assert regime.with_gap(finals, "test_top1")["gap"].tolist() == [-50.0, 21.0, 2.0]
