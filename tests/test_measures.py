import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from alexnet_book import claims, data, experiment, measures, regime
from alexnet_book.augment import Normalize, channels_last
from alexnet_book.results import Results


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, 10))


def curve(variant, seed, values, column="train_top1", **extra):
    return pd.DataFrame({"variant": variant, "seed": seed, "epoch": range(1, len(values) + 1), column: values, **extra})


def test_speedup_by_line_reads_every_line_and_flags_a_run_that_never_crossed():
    """ReLU falls 10 points an epoch from 90, tanh 5: a 2x speed-up at every line; a tanh run stopped at 22%
    never crosses 20%, so that line is a bound, and the other recipe's runs are not read."""
    rows = [curve("relu", s, [80, 70, 60, 50, 40, 30, 20, 10], recipe="a", activation="relu") for s in (0, 1)]
    rows += [curve("tanh", 0, [85 - 5 * e for e in range(14)], recipe="a", activation="tanh"),
             curve("tanh", 1, [85 - 5 * e for e in range(13)] + [22], recipe="a", activation="tanh"),
             curve("relu", 0, [89] * 3, recipe="b", activation="relu")]
    ratios, crossed = measures.speedup_by_line(pd.concat(rows), cap=14, recipe="a")
    assert set(ratios) == set(claims.C1_LINES)
    assert ratios[30.0]["mean"] == pytest.approx(2.0) and ratios[30.0]["n"] == 2
    assert ratios[25.0]["mean"] == pytest.approx(2.0)
    assert crossed == {20.0: False, 25.0: True, 30.0: True}


def test_image_misses_match_engine_evaluate_for_both_ways():
    torch.manual_seed(0)
    test = data.synthetic(40, size=12)
    norm = Normalize.from_images(test.images)
    model = tiny()
    misses = measures.image_misses(model, test, norm, ten_crop=10)
    errors = experiment.ten_patch_errors(model, test, norm, 10)
    assert misses["centre"].shape == (40,) and set(np.unique(misses["ten"])) <= {0.0, 1.0}
    assert 100 * misses["centre"].mean() == pytest.approx(errors["centre_top1"])
    assert 100 * misses["ten"].mean() == pytest.approx(errors["ten_top1"])
    plain = measures.image_misses(model, test, norm)["top1"]
    with torch.no_grad():
        expected = (model.eval()(channels_last(norm)(test.images, None)).argmax(-1) != test.labels).float().numpy()
    np.testing.assert_array_equal(plain, expected)


def test_ten_patch_gain_averages_the_seeds_per_image_so_n_counts_test_images():
    torch.manual_seed(0)
    test = data.synthetic(30, size=12)
    norm = Normalize.from_images(test.images)
    models = [tiny(), tiny()]
    gain = measures.ten_patch_gain(models, test, norm, 10)
    per_seed = [experiment.ten_patch_errors(m, test, norm, 10) for m in models]
    assert gain.n == 30 and gain.counts == "test images"
    assert gain.mean == pytest.approx(np.mean([e["centre_top1"] - e["ten_top1"] for e in per_seed]))


@pytest.mark.parametrize("nets, expected", [(3, [3]), (9, [9]), (10, [5, 5]), (12, [5, 5])])
def test_ensemble_groups_are_fives_only_when_two_fit(nets, expected):
    groups = measures.ensemble_groups(list(range(nets)))
    assert [len(g) for g in groups] == expected
    assert len({m for g in groups for m in g}) == sum(expected)  # disjoint


def test_ensemble_gain_is_members_mean_error_minus_the_ensembles():
    torch.manual_seed(0)
    test = data.synthetic(40, size=16)
    norm = Normalize.from_images(test.images)
    models = [tiny(), tiny(), tiny()]
    gain, groups = measures.ensemble_gain(models, test, norm)
    errors = experiment.ensemble_errors(models, test, norm)
    assert len(groups) == 1 and gain.n == 40
    assert gain.mean == pytest.approx(np.mean(errors["single"]) - errors["ensemble"])


def test_pace_ratios_per_level_and_an_unreached_level_is_undefined_not_dropped():
    """Without dropout the eval-mode training error falls 10 points an epoch from 90, with dropout 5: twice the
    epochs at every level. A dropout run that stalls at 25% has no ratio at 20%: NaN there, n still 2."""
    column = "train_eval_top1"
    rows = [curve("none", s, [80, 70, 60, 50, 40, 30, 20, 10], column) for s in (0, 1)]
    rows += [curve("dropout", 0, [85 - 5 * e for e in range(16)], column),
             curve("dropout", 1, [85 - 5 * e for e in range(12)] + [25] * 4, column)]
    ratios = measures.pace_ratios(pd.concat(rows), "dropout", "none")
    assert set(ratios) == set(measures.PACE_LEVELS)
    assert ratios[30.0]["mean"] == pytest.approx(2.0) and ratios[30.0]["n"] == 2
    assert math.isnan(ratios[20.0]["mean"]) and ratios[20.0]["n"] == 2 and ratios[20.0]["unreached"] == 1
    assert not claims.ci(ratios[20.0]).bounded  # so c9_dropout reads it as inconclusive


def test_dropout_gap_gain_is_validation_minus_eval_training_paired_by_seed():
    last = pd.DataFrame({"variant": ["none", "none", "dropout", "dropout"], "seed": [0, 1, 0, 1], "epoch": 5,
                         "val_top1": [40.0, 42.0, 35.0, 36.0], "train_eval_top1": [10.0, 12.0, 20.0, 20.0]})
    gain = measures.dropout_gap_gain(last, worse="none", better="dropout")
    assert gain["per_seed"] == [15.0, 14.0] and gain["n"] == 2


def test_final_train_error_is_the_mean_last_eval_mode_training_error():
    history = pd.concat([curve("full", 0, [30, 8], "train_eval_top1"), curve("full", 1, [30, 4], "train_eval_top1"),
                         curve("shallow", 0, [50, 40], "train_eval_top1")])
    assert regime.final_train_error(history, "full") == pytest.approx(6.0)


def test_judge_gain_pairs_finals_reads_state_on_the_history_and_records():
    history = pd.concat([curve(v, s, [50.0] * 8, "val_top1", lr=0.01, plateau_drops=0, patience=2)
                         for v in ("a", "b") for s in (0, 1, 2)])
    finals = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "epoch": 8,
                           "test_top1": [20.0, 21.0, 22.0, 17.0, 18.0, 19.5]})
    results = Results("x", "smoke", torch.device("cpu"), seeds=(0, 1, 2))
    gain, judgement = measures.judge_gain(results, "C4", history, finals, "a", "b", claims.c4_lrn_cifar,
                                          unit="points")
    assert gain["per_seed"] == [3.0, 3.0, 2.5]
    (entry,) = results.claims
    assert entry["regime"]["gain"] == regime.gain_state(history, "a", "b")
    assert entry["verdict"] == judgement.verdict and entry["interval"]["counts"] == "seeds"
