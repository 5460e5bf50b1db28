"""Every verdict rule in claims.py: the five words, the regime check, bounds and single seeds."""

import math

import pytest

from alexnet_book import claims
from alexnet_book.claims import INCONCLUSIVE, NOT_MEASURED, NOT_REPRODUCED, PARTLY, REPRODUCED


def stats(mean, std, n):
    return {"mean": mean, "std": std, "n": n}


@pytest.mark.parametrize("gain, verdict", [
    (stats(2.0, 0.3, 3), REPRODUCED),  # interval 1.65-2.35 excludes 0, mean >= half of 2
    (stats(0.6, 0.1, 3), PARTLY),  # real, but under half the paper's 2
    (stats(-0.2, 0.3, 3), NOT_REPRODUCED),  # interval -0.55-0.15 covers 0, excludes 2
    (stats(0.5, 2.5, 3), INCONCLUSIVE),  # interval -2.4-3.4 covers both 0 and 2
    (stats(5.0, 0.0, 1), INCONCLUSIVE),  # one seed is never more than inconclusive
    (stats(5.0, math.nan, 2), INCONCLUSIVE),
])
def test_effect_verdict_reads_the_interval(gain, verdict):
    assert claims.effect_verdict(gain, paper=2.0) == verdict


def test_outside_the_regime_every_gain_is_inconclusive():
    assert claims.effect_verdict(stats(2.0, 0.3, 3), 2.0, regime_reached=False) == INCONCLUSIVE
    verdict, rule, note = claims.c4_lrn_cifar(stats(3.5, 0.3, 3), claims.STILL_IMPROVING)
    assert verdict == INCONCLUSIVE and "regime not reached" in note and "2 standard errors" in rule


@pytest.mark.parametrize("gain, state, verdict", [
    (stats(2.0, 0.3, 3), claims.CONVERGED, REPRODUCED),
    (stats(2.0, 0.3, 3), claims.LOWER_BOUND, REPRODUCED),  # the gain can only widen: a bound past the line decides
    (stats(0.6, 0.1, 3), claims.LOWER_BOUND, INCONCLUSIVE),  # "partly" from a bound: the real gain may be larger
    (stats(-0.5, 0.3, 3), claims.LOWER_BOUND, INCONCLUSIVE),  # nor "not reproduced"
    (stats(-0.5, 0.3, 3), claims.CONVERGED, NOT_REPRODUCED),
    (stats(-0.5, 0.3, 3), claims.STILL_IMPROVING, INCONCLUSIVE),  # the worse net still learning: a moment, not nets
    (stats(2.0, 0.3, 3), claims.STILL_IMPROVING, INCONCLUSIVE),
])
def test_a_gain_decides_only_as_far_as_training_settled_it(gain, state, verdict):
    got, _, note = claims.gain_claim(gain, 2.0, True, "", state=state)
    assert got == verdict and state.split()[0] in note
    with pytest.raises(ValueError, match="unknown gain state 'done'; valid: converged, lower bound, still improving"):
        claims.gain_claim(gain, 2.0, True, "", state="done")


def test_interval_is_two_standard_errors():
    low, high = claims.interval(stats(1.0, 0.3, 9))
    assert (low, high) == pytest.approx((0.8, 1.2))
    assert claims.interval(stats(1.0, 0.3, 1)) == (-math.inf, math.inf)


def test_c1_bound_decides_only_past_the_line():
    measured = claims.c1_relu_speedup(stats(6.0, 0.5, 3), crossed=True)
    assert measured[0] == REPRODUCED and measured[2] == "every run crossed 25%"
    assert claims.c1_relu_speedup(stats(1.5, 0.05, 3), crossed=True)[0] == PARTLY  # real, under 3.5x
    assert claims.c1_relu_speedup(stats(1.02, 0.05, 3), crossed=True)[0] == NOT_REPRODUCED
    bound = claims.c1_relu_speedup(stats(1.64, 0.06, 2), crossed=False)
    assert bound[0] == INCONCLUSIVE and "lower bound" in bound[2]  # 'at least 1.64x' says nothing against 6x
    assert claims.c1_relu_speedup(stats(5.0, 0.1, 3), crossed=False)[0] == REPRODUCED  # the bound itself passes


def test_c1_near_a_line_says_it_is_not_settled():
    assert "not settled" in claims.c1_relu_speedup(stats(3.6, 0.3, 3), crossed=True)[2]


def test_c2_needs_two_seeds_and_trained_nets():
    assert claims.c2_two_gpus(stats(1.7, math.nan, 1), converged=True)[0] == INCONCLUSIVE
    assert claims.c2_two_gpus(stats(1.7, 0.2, 2), converged=True)[0] == REPRODUCED
    assert claims.c2_two_gpus(stats(1.7, 0.2, 2), converged=False)[0] == INCONCLUSIVE


def test_c3_and_c10_need_imagenet():
    assert claims.c3_lrn_imagenet()[0] == NOT_MEASURED
    assert claims.c10_imagenet_error(38.0, 16.0, imagenet=False)[0] == NOT_MEASURED
    assert claims.c10_imagenet_error(41.5, 18.9, imagenet=True)[0] == REPRODUCED
    assert claims.c10_imagenet_error(45.0, 18.9, imagenet=True)[0] == NOT_REPRODUCED


def test_c5_and_c7_need_a_net_that_overfits_and_a_settled_gain():
    done = claims.CONVERGED
    # a net overfits from a final test-train gap of 10 points
    assert claims.c5_overlapping_pooling(stats(0.5, 0.1, 3), 10.0, done)[0] == REPRODUCED
    assert claims.c5_overlapping_pooling(stats(0.5, 0.1, 3), 9.9, done)[0] == INCONCLUSIVE
    assert claims.c5_overlapping_pooling(stats(0.52, 0.71, 3), 24.1, done)[0] == INCONCLUSIVE
    assert claims.c5_overlapping_pooling(stats(0.5, 0.1, 3), 5.0, done)[0] == INCONCLUSIVE
    assert claims.c5_overlapping_pooling(stats(0.5, 0.1, 3), 24.1, done)[0] == REPRODUCED
    assert claims.c5_overlapping_pooling(stats(0.5, 0.1, 3), 24.1, claims.LOWER_BOUND)[0] == REPRODUCED
    verdict, _, note = claims.c7_pca_lighting(stats(-0.85, 2.42, 3), 5.0, done)
    assert verdict == INCONCLUSIVE and "does not overfit" in note
    assert claims.c7_pca_lighting(stats(-0.3, 0.2, 3), 24.1, done)[0] == NOT_REPRODUCED
    # 05's run on 2f589c8: the augmented nets still improving at 15 epochs
    verdict, _, note = claims.c7_pca_lighting(stats(-1.11, 1.16, 3), 24.1, claims.STILL_IMPROVING)
    assert verdict == INCONCLUSIVE and "still improving" in note
    # ten patches against one, on the same nets: no training state to report
    assert claims.c8_ten_patches(stats(2.43, 0.7, 3)) == (REPRODUCED, claims.effect_rule(1.5), "trained nets")


def test_c6_counts():
    assert claims.c6_size(60_965_224, 658_440)[0] == REPRODUCED
    assert claims.c6_size(40_000_000, 658_440)[0] == NOT_REPRODUCED


def test_c8_ten_patches():
    assert claims.c8_ten_patches(stats(1.17, 0.03, 3))[0] == REPRODUCED
    assert claims.c8_ten_patches(stats(0.3, 0.03, 3))[0] == PARTLY


def test_c9_needs_overfitting_and_a_ratio_that_is_not_a_bound():
    gap, ratio = stats(20.8, 1.9, 3), stats(2.0, 0.2, 3)
    assert claims.c9_dropout(gap, ratio, no_dropout_gap=24.1, converged=True)[0] == REPRODUCED
    assert claims.c9_dropout(gap, ratio, no_dropout_gap=5.0, converged=True)[0] == INCONCLUSIVE
    lower_bound = claims.c9_dropout(gap, stats(1.67, 0.52, 3), no_dropout_gap=24.1, converged=False)
    assert lower_bound[0] == INCONCLUSIVE and "lower bound" in lower_bound[2]
    assert claims.c9_dropout(gap, stats(5.0, 0.2, 3), no_dropout_gap=24.1, converged=False)[0] == PARTLY
    assert claims.c9_dropout(gap, stats(1.05, 0.05, 3), no_dropout_gap=24.1, converged=True)[0] == PARTLY
    assert claims.c9_dropout(stats(-1.0, 0.3, 3), ratio, no_dropout_gap=24.1, converged=True)[0] == NOT_REPRODUCED
    # 06 at 5 seeds: 1.10 ± 0.36 clears 1.5 by 0.08; a mean one standard error higher would not
    verdict, _, note = claims.c9_dropout(gap, stats(1.10, 0.36, 5), no_dropout_gap=36.8, converged=True)
    assert verdict == PARTLY and "not settled" in note and "inconclusive at this budget" in note
    assert "not settled" not in claims.c9_dropout(gap, stats(1.0, 0.1, 5), no_dropout_gap=36.8, converged=True)[2]


def test_c11_needs_kernels_that_moved_and_every_run_split():
    split, none = {"difference": 0.3, "p_value": 0.001}, {"difference": 0.02, "p_value": 0.6}
    weak = {"difference": 0.05, "p_value": 0.03}
    assert claims.c11_colour_groups([split, split], [none, none], travel=1.2)[0] == REPRODUCED
    assert claims.c11_colour_groups([split, split], [split, none], travel=1.2)[0] == PARTLY  # a control splits too
    assert claims.c11_colour_groups([split, none], [none, none], travel=1.2)[0] == PARTLY  # not in every run
    assert claims.c11_colour_groups([weak, weak], [none, none], travel=1.2)[0] == PARTLY
    assert claims.c11_colour_groups([none, none], [none, none], travel=1.2)[0] == NOT_REPRODUCED
    verdict, _, note = claims.c11_colour_groups([none, none], [none, none], travel=0.34)
    assert verdict == INCONCLUSIVE and "near their random start" in note
    assert claims.c11_colour_groups([split, split], [none, none], travel=1.0)[0] == REPRODUCED  # travel 1 is far
    assert claims.c11_colour_groups([split], [none], travel=1.2)[0] == INCONCLUSIVE


def test_c12_needs_converged_nets():
    assert claims.c12_depth(stats(-1.18, 1.72, 3), claims.STILL_IMPROVING)[0] == INCONCLUSIVE
    assert claims.c12_depth(stats(-0.5, 0.3, 3), claims.CONVERGED)[0] == NOT_REPRODUCED
    assert claims.c12_depth(stats(2.1, 0.4, 3), claims.CONVERGED)[0] == REPRODUCED


def test_c13_needs_two_trained_nets():
    assert claims.c13_ensemble(stats(2.0, 0.4, 5), models=3, converged=True)[0] == REPRODUCED
    assert claims.c13_ensemble(stats(2.0, 0.4, 5), models=1, converged=True)[0] == INCONCLUSIVE
    verdict, _, note = claims.c13_ensemble(stats(0.8, 0.2, 5), models=3, converged=True)
    assert verdict == PARTLY and "3 nets averaged" in note


def test_a_verdict_one_standard_error_from_another_says_it_is_not_settled():
    # notebook 10 on 0365021: 0.20 ± 1.40 (n=3) excludes the paper's 2 only by 0.18, under one standard error
    verdict, _, note = claims.c12_depth(stats(0.2, 1.4, 3), claims.CONVERGED)
    assert verdict == NOT_REPRODUCED
    assert "not settled" in note and "(0.81) higher would make it inconclusive at this budget" in note
    assert "interval -1.42 to 1.82" in note
    assert "not settled" not in claims.c12_depth(stats(0.2, 0.5, 3), claims.CONVERGED)[2]  # 1.2 below 2: clear
    # reproduced, but one standard error lower the mean falls under half the paper's effect
    verdict, _, note = claims.c4_lrn_cifar(stats(1.05, 0.3, 3), claims.CONVERGED)
    assert verdict == REPRODUCED and "lower would make it partly" in note
    assert "not settled" not in claims.c4_lrn_cifar(stats(4.66, 1.57, 3), claims.CONVERGED)[2]
    assert claims.unsettled(stats(1.0, math.nan, 1), PARTLY, lambda s: REPRODUCED) == ""  # one seed: inconclusive anyway


def test_every_claim_has_a_rule_and_a_regime():
    rules = {name.split("_")[0].upper() for name in dir(claims) if name[0] == "c" and name[1:2].isdigit()}
    assert rules == set(claims.CLAIMS)
    assert all(claim.regime for claim in claims.CLAIMS.values())


def test_claim_entry_rejects_unknown_ids_and_verdicts():
    with pytest.raises(ValueError, match="valid verdicts: reproduced, partly, not reproduced, inconclusive at this budget"):
        claims.claim_entry("C1", 1.0, "sort of", "")


def test_direction_reads_the_interval_not_the_mean():
    assert claims.direction(stats(1.0, 0.1, 3)) == "lowers"
    assert claims.direction(stats(-1.0, 0.1, 3)) == "raises"
    assert claims.direction(stats(0.2, 1.0, 3)) == "does not measurably change"  # the interval holds 0
    assert claims.direction(stats(5.0, math.nan, 1)) == "does not measurably change"  # one seed: no interval
