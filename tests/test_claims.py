"""Every verdict rule in claims.py: the five words, the 95% intervals, the regime check, the declared
ranges of thresholds (a verdict that flips inside one is inconclusive), bounds and single seeds."""

import math
import re

import pytest

from alexnet_book import claims
from alexnet_book.claims import INCONCLUSIVE, NOT_MEASURED, NOT_REPRODUCED, PARTLY, REPRODUCED
from alexnet_book.stats import paired_bootstrap

DONE, IMPROVING = claims.CONVERGED, claims.STILL_IMPROVING


def stats(mean, std, n):
    return {"mean": mean, "std": std, "n": n}


@pytest.mark.parametrize("gain, verdict", [
    (stats(2.0, 0.3, 3), REPRODUCED),  # t interval 1.25-2.75 excludes 0, mean >= half of 2
    (stats(0.6, 0.1, 3), PARTLY),  # 0.35-0.85: real, under half the paper's 2
    (stats(-0.2, 0.3, 3), NOT_REPRODUCED),  # -0.95-0.55 covers 0, excludes 2
    (stats(0.5, 2.5, 3), INCONCLUSIVE),  # covers both 0 and 2
    (stats(5.0, 0.0, 1), INCONCLUSIVE),  # one seed is never more than inconclusive
    (stats(5.0, math.nan, 2), INCONCLUSIVE),
])
def test_effect_verdict_reads_the_t_interval(gain, verdict):
    assert claims.effect_verdict(gain, paper=2.0) == verdict


def test_the_t_interval_is_wider_than_two_standard_errors():
    # C4's committed gains 8.88, 3.66, 4.64: mean ± 2 SE (v1) excluded 0, the t interval (4.30 at n=3) does not
    c4 = stats(5.727, 2.772, 3)
    assert claims.ci(c4).low == pytest.approx(-1.16, abs=0.02) and claims.effect_verdict(c4, 2.0) == INCONCLUSIVE
    assert claims.direction(c4) == "does not measurably change"
    assert claims.direction(stats(2.0, 0.3, 3)) == "lowers" and claims.direction(stats(-2.0, 0.3, 3)) == "raises"


def test_outside_the_regime_every_gain_is_inconclusive():
    assert claims.effect_verdict(stats(2.0, 0.3, 3), 2.0, regime_reached=False) == INCONCLUSIVE
    judgement = claims.c4_lrn_cifar(stats(3.5, 0.3, 3), IMPROVING)
    assert judgement.verdict == INCONCLUSIVE and "regime not reached" in judgement.note
    assert "95% Student t interval over seeds" in judgement.rule


@pytest.mark.parametrize("gain, state, verdict", [
    (stats(2.0, 0.3, 3), DONE, REPRODUCED),
    (stats(-0.5, 0.3, 3), DONE, NOT_REPRODUCED),
    (stats(-0.5, 0.3, 3), IMPROVING, INCONCLUSIVE),  # a net still learning: a moment, not trained nets
    (stats(2.0, 0.3, 3), IMPROVING, INCONCLUSIVE),  # no "lower bound": an overfitting net's error rises later
])
def test_a_gain_decides_only_once_every_run_converged(gain, state, verdict):
    judgement = claims.gain_claim(gain, 2.0, True, "", state=state)
    assert judgement.verdict == verdict and state.split()[0] in judgement.note
    with pytest.raises(ValueError, match="unknown gain state 'lower bound'; valid: converged, still improving"):
        claims.gain_claim(gain, 2.0, True, "", state="lower bound")


def test_robust_verdict_agrees_or_says_what_it_is_sensitive_to():
    verdict, note, table = claims.robust_verdict(lambda t: REPRODUCED, (1, 2, 3), "line")
    assert verdict == REPRODUCED and note == "" and list(table.index) == [1, 2, 3]
    verdict, note, table = claims.robust_verdict(lambda t: REPRODUCED if t < 3 else PARTLY, (1, 2, 3), "line")
    assert verdict == INCONCLUSIVE and note == "sensitive to the line: reproduced at 1, 2; partly at 3"
    with pytest.raises(ValueError, match="unknown verdict"):
        claims.robust_verdict(lambda t: "sort of", (1,), "line")


def crossing(means, crossed=(True, True, True)):
    return ({line: stats(m, 0.3, 3) for line, m in zip(claims.C1_LINES, means)},
            dict(zip(claims.C1_LINES, crossed)))


def test_c1_holds_at_every_line_or_is_inconclusive():
    judgement = claims.c1_relu_speedup(*crossing((6.0, 5.5, 5.0)))
    assert judgement.verdict == REPRODUCED and judgement.sensitivity_text == \
        "20: reproduced; 25: reproduced; 30: reproduced"
    flips = claims.c1_relu_speedup(*crossing((6.0, 3.5, 2.5)))  # half of 5x over 1x is 3.5x: partly at 30%
    assert flips.verdict == INCONCLUSIVE and "sensitive to the training-error line (%)" in flips.note
    # never reaching 20%: a bound there, which decides only where it passes the line itself
    bound = claims.c1_relu_speedup(*crossing((1.6, 5.0, 5.0), crossed=(False, True, True)))
    assert bound.verdict == INCONCLUSIVE and "lower bound" in bound.note
    assert claims.c1_relu_speedup(*crossing((6.0, 5.0, 5.0), crossed=(False, True, True))).verdict == REPRODUCED


def test_c2_needs_two_seeds_and_trained_nets():
    assert claims.c2_two_gpus(stats(1.7, math.nan, 1), converged=True).verdict == INCONCLUSIVE
    assert claims.c2_two_gpus(stats(1.7, 0.05, 2), converged=True).verdict == REPRODUCED
    assert claims.c2_two_gpus(stats(1.7, 0.05, 2), converged=False).verdict == INCONCLUSIVE


def test_c3_and_c10_need_imagenet():
    assert claims.c3_lrn_imagenet().verdict == NOT_MEASURED
    assert claims.c10_imagenet_error(38.0, 16.0, imagenet=False).verdict == NOT_MEASURED
    assert claims.c10_imagenet_error(41.5, 18.9, imagenet=True).verdict == REPRODUCED
    assert claims.c10_imagenet_error(45.0, 18.9, imagenet=True).verdict == NOT_REPRODUCED


def test_c5_and_c7_need_a_net_that_overfits_at_every_line():
    gain = stats(0.5, 0.05, 3)
    assert claims.c5_overlapping_pooling(gain, 24.1, DONE).verdict == REPRODUCED
    judgement = claims.c5_overlapping_pooling(gain, 10.0, DONE)  # overfits at 7.5 and 10, not at 12.5
    assert judgement.verdict == INCONCLUSIVE and "sensitive to the overfitting line" in judgement.note
    assert claims.c5_overlapping_pooling(gain, 5.0, DONE).verdict == INCONCLUSIVE
    assert claims.c5_overlapping_pooling(gain, 24.1, IMPROVING).verdict == INCONCLUSIVE
    assert claims.c7_pca_lighting(stats(-0.3, 0.1, 3), 24.1, DONE).verdict == NOT_REPRODUCED
    assert "under a line" in claims.c7_pca_lighting(stats(-0.85, 2.42, 3), 5.0, DONE).note


def test_c6_counts():
    assert claims.c6_size(60_965_224, 658_440).verdict == REPRODUCED
    assert claims.c6_size(40_000_000, 658_440).verdict == NOT_REPRODUCED


def test_c8_reads_a_bootstrap_over_test_images():
    centre = [1] * 300 + [0] * 700  # per-image errors: the centre patch wrong on 30%, ten patches on 27%
    ten = [0] * 30 + [1] * 270 + [0] * 700
    gain = paired_bootstrap(centre, ten, n_resamples=999)
    judgement = claims.c8_ten_patches(gain, converged=True)
    assert judgement.verdict == REPRODUCED and "test images" in judgement.rule
    assert claims.c8_ten_patches(gain, converged=False).verdict == INCONCLUSIVE


def test_c9_needs_overfitting_converged_runs_and_a_pace_that_holds_at_every_level():
    gap, levels = stats(20.8, 1.9, 5), (40.0, 30.0, 20.0)
    pace = {level: stats(2.0, 0.2, 5) for level in levels}
    assert claims.c9_dropout(gap, pace, no_dropout_gap=24.1, converged=True).verdict == REPRODUCED
    assert claims.c9_dropout(gap, pace, no_dropout_gap=5.0, converged=True).verdict == INCONCLUSIVE
    assert claims.c9_dropout(gap, pace, no_dropout_gap=24.1, converged=False).verdict == INCONCLUSIVE
    slow = {level: stats(1.05, 0.05, 5) for level in levels}
    assert claims.c9_dropout(gap, slow, no_dropout_gap=24.1, converged=True).verdict == PARTLY
    assert claims.c9_dropout(stats(-1.0, 0.3, 5), pace, no_dropout_gap=24.1, converged=True).verdict == NOT_REPRODUCED
    # the committed C9 over its tolerance: 0.87x, 1.08x, 1.37x read partly, partly, inconclusive
    mixed = {0.5: stats(0.87, 0.1, 5), 1.0: stats(1.08, 0.32, 5), 1.5: stats(1.37, 0.18, 5)}
    judgement = claims.c9_dropout(gap, mixed, no_dropout_gap=36.8, converged=True, pace="tolerance")
    assert judgement.verdict == INCONCLUSIVE and "sensitive to the tolerance" in judgement.note


def test_c11_needs_kernels_that_moved_at_every_travel_line_and_every_run_split():
    split, none = {"difference": 0.3, "p_value": 0.001}, {"difference": 0.02, "p_value": 0.6}
    weak = {"difference": 0.05, "p_value": 0.03}
    assert claims.c11_colour_groups([split, split], [none, none], travel=1.3).verdict == REPRODUCED
    assert claims.c11_colour_groups([split, split], [split, none], travel=1.3).verdict == PARTLY
    assert claims.c11_colour_groups([split, none], [none, none], travel=1.3).verdict == PARTLY
    assert claims.c11_colour_groups([weak, weak], [none, none], travel=1.3).verdict == PARTLY
    assert claims.c11_colour_groups([none, none], [none, none], travel=1.3).verdict == NOT_REPRODUCED
    assert claims.c11_colour_groups([none, none], [none, none], travel=0.34).verdict == INCONCLUSIVE
    judgement = claims.c11_colour_groups([split, split], [none, none], travel=1.0)  # past 0.75 and 1, not 1.25
    assert judgement.verdict == INCONCLUSIVE and "sensitive to the conv1 travel line" in judgement.note
    assert claims.c11_colour_groups([split], [none], travel=1.3).verdict == INCONCLUSIVE


def test_c12_needs_converged_nets_that_do_not_memorise():
    assert claims.c12_depth(stats(-0.5, 0.3, 5), DONE, train_error=20.0).verdict == NOT_REPRODUCED
    assert claims.c12_depth(stats(2.1, 0.3, 5), DONE, train_error=20.0).verdict == REPRODUCED
    memorised = claims.c12_depth(stats(0.26, 1.06, 5), DONE, train_error=0.8)  # notebook 10's v1 nets
    assert memorised.verdict == INCONCLUSIVE and "memorise" in memorised.note
    assert claims.c12_depth(stats(2.1, 0.3, 5), IMPROVING, train_error=20.0).verdict == INCONCLUSIVE


def test_c13_reads_a_bootstrap_of_annealed_ensembles():
    members = [1] * 380 + [0] * 620  # the members' mean error per image against the ensemble's
    ensemble = [0] * 30 + [1] * 350 + [0] * 620
    gain = paired_bootstrap(members, ensemble, n_resamples=999)
    judgement = claims.c13_ensemble(gain, models=5, ensembles=2, converged=True)
    assert judgement.verdict == REPRODUCED and "2 ensemble(s) of 5 nets" in judgement.note
    assert claims.c13_ensemble(gain, models=1, ensembles=1, converged=True).verdict == INCONCLUSIVE
    assert claims.c13_ensemble(gain, models=5, ensembles=1, converged=False).verdict == INCONCLUSIVE


def test_every_claim_has_a_rule_and_a_regime():
    rules = {name.split("_")[0].upper() for name in dir(claims) if name[0] == "c" and name[1:2].isdigit()}
    assert rules == set(claims.CLAIMS)
    assert all(claim.regime for claim in claims.CLAIMS.values())
    assert re.findall(r"\d+", claims.CLAIMS["C1"].regime) == [f"{line:g}" for line in claims.C1_LINES]  # C1 is judged at each


def test_claim_entry_rejects_unknown_ids_and_verdicts():
    with pytest.raises(ValueError, match="valid verdicts: reproduced, partly, not reproduced, inconclusive at this budget"):
        claims.claim_entry("C1", 1.0, "sort of", "")
    with pytest.raises(ValueError, match="valid ids: C1, C2"):
        claims.claim_entry("C14", 1.0, REPRODUCED, "")
