"""The paper's claims C1..C13 (shared/paper/alexnet-paper-facts.md) and the rule that judges each.

A verdict is one of five words. Every rule below returns (verdict, rule text, note) and is
unit-tested; notebooks measure, call the rule and record what it returns (results.Results).

- reproduced: the effect is real (its interval, mean ± 2 standard errors over seeds, excludes
  zero) and at least half the paper's size;
- partly: real and of the paper's sign, but smaller than half the paper's;
- not reproduced: the interval excludes the paper's effect and does not show a real one:
  evidence against the claim;
- inconclusive at this budget: the interval covers both zero and the paper's effect, or one
  seed only, or the runs did not reach the regime the claim speaks about (converged nets, a net
  that overfits, a threshold crossed), or a bound that does not pass its line;
- not measured at this scale: the claim needs ImageNet.

A short run is not evidence against the paper: the regime check comes first. This module imports
nothing from the package, so every other module may import it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive at this budget", "not measured at this scale")
REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED = VERDICTS
STANDARD_ERRORS = 2  # the half-width of every interval, in standard errors of the mean over seeds
OVERFIT_GAP = 10.0  # points of test minus train error from which a net counts as overfitting
CONVERGED_WITHIN = 0.5  # points: a run has converged when its last epochs no longer beat its earlier best by more
MOVED_FROM_START = 1.0  # C11: conv1 kernels have moved when |W - W0| / |W0| reaches this
# Where a paired gain (the variant with the paper's ingredient, "better", against the one without it, "worse";
# experiment.gain_state) stands at the end of training: every run of both stopped improving; only the worse
# variant's (the gain can only widen: a lower bound); or the worse variant still improving, when even the
# gain's sign may change.
CONVERGED, LOWER_BOUND, STILL_IMPROVING = GAIN_STATES = ("converged", "lower bound", "still improving")


@dataclass(frozen=True)
class Claim:
    section: str
    claim: str
    paper: str
    regime: str  # what a run must reach before it can speak about the claim


CLAIMS: dict[str, Claim] = {
    "C1": Claim("3.1", "ReLU reaches 25% CIFAR-10 training error faster than tanh", "6x fewer epochs",
                "every run crosses 25% training error"),
    "C2": Claim("3.2", "two-GPU net beats a one-GPU net with half the kernels", "-1.7% top-1, -1.2% top-5",
                "trained nets (test error no longer falling), 2+ seeds"),
    "C3": Claim("3.3", "LRN reduces ILSVRC error", "-1.4% top-1, -1.2% top-5", "ILSVRC-2012"),
    "C4": Claim("3.3", "LRN on a four-layer CIFAR-10 CNN", "13% -> 11% test error",
                "converged nets (test error no longer falling)"),
    "C5": Claim("3.4", "overlapping pooling (z=3, s=2) vs z=2, s=2", "-0.4% top-1, -0.3% top-5",
                "a net that overfits (z=2 train error well below its test error), z=2's runs converged"),
    "C6": Claim("3.5", "size of the network", "~60M parameters, 650,000 neurons", "none: a count"),
    "C7": Claim("4.1", "PCA lighting augmentation reduces top-1 error", "> 1% top-1",
                "a net that overfits without augmentation; the crops+flips runs converged"),
    "C8": Claim("4.1", "10-patch testing vs the centre patch", "39.0/18.3 -> 37.5/17.0", "trained nets"),
    "C9": Claim("4.2", "dropout prevents overfitting, roughly doubles iterations to converge", "~2x iterations",
                "the net without dropout overfits; every run converges"),
    "C10": Claim("6", "ILSVRC-2010 test error, one CNN, 10 patches", "37.5% top-1, 17.0% top-5",
                 "ILSVRC-2012 validation, where the paper's one-CNN 40.7% / 18.2% stand in for its 2010 test set"),
    "C11": Claim("6.1", "conv1 kernels: one GPU colour-agnostic, the other colour-specific", "in every run",
                 "conv1 kernels far from their random start, 2+ runs"),
    "C12": Claim("7", "removing any middle conv layer costs top-1", "~2% top-1",
                 "converged nets (test error no longer falling)"),
    "C13": Claim("6", "averaging five similar CNNs lowers top-1 error", "40.7% -> 38.1% top-1 (-2.6)",
                 "2+ trained nets of one kind"),
}


def claim_entry(claim_id: str, measured, verdict: str, rule: str, *, spread=None, n: int | None = None,
                unit: str = "", note: str = "", regime: dict | None = None) -> dict:
    """One claim entry for metrics.json; rejects unknown ids and verdicts."""
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim id {claim_id!r}; valid ids: {', '.join(CLAIMS)}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; valid verdicts: {', '.join(VERDICTS)}")
    return {"id": claim_id, "paper": CLAIMS[claim_id].paper, "measured": measured, "spread": spread, "n": n,
            "unit": unit, "verdict": verdict, "rule": rule, "note": note, "regime": regime}


# ---------------------------------------------------------------- the shared pieces


def interval(stats: dict) -> tuple[float, float]:
    """mean ± 2 standard errors of a per-seed statistic {"mean", "std", "n"}; infinite for one seed."""
    if stats["n"] < 2 or not math.isfinite(stats["std"]):
        return -math.inf, math.inf
    half = STANDARD_ERRORS * stats["std"] / math.sqrt(stats["n"])
    return stats["mean"] - half, stats["mean"] + half


def direction(stats: dict, lower: str = "lowers", higher: str = "raises") -> str:
    """Which way a per-seed difference (worse minus better, e.g. experiment.paired_gain) points, by its
    interval: `lower` when all of it is above 0, `higher` when all is below, else "does not measurably change"."""
    low, high = interval(stats)
    return lower if low > 0 else higher if high < 0 else "does not measurably change"


def effect_verdict(stats: dict, paper: float, regime_reached: bool = True) -> str:
    """The five-word verdict for "this lowers error by `paper`" (or any effect the paper gives as positive)."""
    if not regime_reached or stats["n"] < 2:
        return INCONCLUSIVE
    low, high = interval(stats)
    if low > 0:
        return REPRODUCED if stats["mean"] >= paper / 2 else PARTLY
    return NOT_REPRODUCED if high < paper else INCONCLUSIVE


def effect_rule(paper: float, unit: str = "points") -> str:
    return (f"interval = mean ± {STANDARD_ERRORS} standard errors over seeds; reproduced: excludes 0 and the mean is at "
            f"least half the paper's {paper:g} {unit}; partly: excludes 0, smaller; not reproduced: includes 0 and "
            f"excludes {paper:g}; otherwise, with one seed, or outside the regime: inconclusive at this budget")


def unsettled(stats: dict, verdict: str, verdict_of) -> str:
    """A caveat when the verdict sits on a line of its rule: when a mean one standard error higher or lower
    (where other seeds could put it) would give another verdict under `verdict_of(stats)`; "" when it
    would not. For a gain judged 'not reproduced', that is an interval whose end nearly reaches the paper's
    effect."""
    if stats["n"] < 2 or not math.isfinite(stats["std"]):
        return ""
    sem = stats["std"] / math.sqrt(stats["n"])
    for direction, word in ((1, "higher"), (-1, "lower")):
        other = verdict_of({**stats, "mean": stats["mean"] + direction * sem})
        if other != verdict:
            low, high = interval(stats)
            return (f"on a line of the rule, so the verdict is not settled: a mean one standard error ({sem:.2f}) "
                    f"{word} would make it {other} (interval {low:.2f} to {high:.2f})")
    return ""


def describe(stats: dict, digits: int = 2) -> str:
    """'1.23 ± 0.45 (n=3)': mean ± standard deviation over seeds."""
    spread = f" ± {stats['std']:.{digits}f}" if stats["n"] > 1 and math.isfinite(stats["std"]) else ""
    return f"{stats['mean']:.{digits}f}{spread} (n={stats['n']})"


def judged(verdict: str, rule: str, regime_note: str, stats: dict | None = None,
           verdict_of=None) -> tuple[str, str, str]:
    """(verdict, rule, note), the note saying whether the regime was reached and, when `verdict_of` (the
    rule as a function of the statistic) is given, whether the verdict sits on a line (`unsettled`)."""
    notes = [regime_note]
    if stats is not None and verdict_of is not None and verdict != INCONCLUSIVE:
        notes.append(unsettled(stats, verdict, verdict_of))
    return verdict, rule, "; ".join(n for n in notes if n)


def gain_claim(stats: dict, paper: float, regime_reached: bool, regime_note: str, unit: str = "points",
               state: str | None = None):
    """A paired gain over seeds judged by `effect_verdict`: (verdict, rule, note). `state` (GAIN_STATES), for
    a gain between two trained variants, says whether training had settled it: a lower bound decides only
    when it passes the line of "reproduced"; a gain whose worse variant was still improving decides nothing.
    None: not such a gain (e.g. ten patches against one on the same nets)."""
    if state is not None and state not in GAIN_STATES:
        raise ValueError(f"unknown gain state {state!r}; valid: {', '.join(GAIN_STATES)}")
    def verdict_of(gain: dict) -> str:
        verdict = effect_verdict(gain, paper, regime_reached and state != STILL_IMPROVING)
        return INCONCLUSIVE if state == LOWER_BOUND and verdict != REPRODUCED else verdict

    note = "; ".join(n for n in (regime_note, state and _state_note(state)) if n)
    return judged(verdict_of(stats), effect_rule(paper, unit), note, stats, verdict_of)


# ---------------------------------------------------------------- one rule per claim


def c1_relu_speedup(ratio: dict, crossed: bool) -> tuple[str, str, str]:
    """C1: epochs to 25% training error, tanh over ReLU, per seed. `crossed`: every run reached 25%
    (otherwise ratio["mean"] is a lower bound, which decides only when the bound itself passes a line)."""
    rule = (f"speed-up r = tanh epochs / ReLU epochs to 25% training error, per seed; {effect_rule(5, 'x over 1x')}; "
            "a lower bound (some run never crossed 25%) is reproduced only when the bound is at least 3.5x, "
            "else inconclusive")

    def verdict_of(speedup: dict) -> str:
        return effect_verdict({**speedup, "mean": speedup["mean"] - 1}, 5)  # a speed-up of 1x is no effect

    if not crossed:
        bound = REPRODUCED if verdict_of(ratio) == REPRODUCED else INCONCLUSIVE
        return judged(bound, rule, "a lower bound: some runs never crossed 25% (regime not reached)")
    return judged(verdict_of(ratio), rule, "every run crossed 25%", ratio, verdict_of)


def c2_two_gpus(gain: dict, converged: bool) -> tuple[str, str, str]:
    """C2: top-1 gain (points, ten patches) of the grouped two-GPU net over the one-GPU net, per seed."""
    return gain_claim(gain, 1.7, converged, _converged_note(converged))


def c3_lrn_imagenet() -> tuple[str, str, str]:
    return NOT_MEASURED, "needs two ILSVRC-2012 trainings of the full net, with and without LRN", \
        "not measured at CIFAR scale: needs ILSVRC-2012 (the imagenet profile)"


def c4_lrn_cifar(gain: dict, state: str) -> tuple[str, str, str]:
    """C4: test error points LRN saves on the -11pct net, per seed (paper: 13% -> 11%, 2 points)."""
    return gain_claim(gain, 2.0, True, "", state=state)


def c5_overlapping_pooling(gain: dict, z2_gap: float, state: str) -> tuple[str, str, str]:
    """C5: top-1 points z=3 saves against z=2, per seed (paper 0.4), once the z=2 net overfits (its final
    test-train gap `z2_gap`, experiment.overfitting_gap)."""
    return gain_claim(gain, 0.4, overfits(z2_gap), _overfit_note(z2_gap, "the z=2 net"), state=state)


# Section 3.5's totals: "60 million parameters and 650,000 neurons".
PAPER_PARAMETERS, PAPER_NEURONS = 60_000_000, 650_000


def c6_size(parameters: int, neurons: int) -> tuple[str, str, str]:
    """C6: within 5% of the paper's 60M parameters and 650,000 neurons."""
    close = abs(parameters / PAPER_PARAMETERS - 1) < 0.05 and abs(neurons / PAPER_NEURONS - 1) < 0.05
    return (REPRODUCED if close else NOT_REPRODUCED, "within 5% of 60M parameters and of 650,000 neurons",
            "a count, no regime")


def c7_pca_lighting(gain: dict, none_gap: float, state: str) -> tuple[str, str, str]:
    """C7: top-1 points PCA lighting saves on top of crops and flips, per seed (paper: over 1), once the
    net without augmentation overfits (its final test-train gap `none_gap`)."""
    return gain_claim(gain, 1.0, overfits(none_gap), _overfit_note(none_gap, "the net without augmentation"),
                      state=state)


def c8_ten_patches(gain: dict) -> tuple[str, str, str]:
    """C8: top-1 points ten patches save against the centre patch, per seed (paper 1.5)."""
    return gain_claim(gain, 1.5, True, "trained nets")


def c9_dropout(gap_gain: dict, ratio: dict, no_dropout_gap: float, converged: bool) -> tuple[str, str, str]:
    """C9: dropout shrinks the test-train gap (points, per seed) and needs about 2x the epochs to
    converge (ratio per seed). Without overfitting (the final test-train gap `no_dropout_gap` of the net
    without dropout) there is nothing to prevent; a run that never
    converged makes the ratio a bound, which decides only when it passes a line of the rule."""
    rule = ("gap: dropout shrinks the final test-train gap (interval above 0); pace: the epochs-to-converge ratio's "
            "interval lies within 1.5-3x (roughly doubles) or outside it; reproduced: both hold; partly: the gap "
            "shrinks but the pace is outside 1.5-3x; not reproduced: the gap does not shrink (interval excludes "
            "a real gain); otherwise inconclusive at this budget")
    if not overfits(no_dropout_gap):
        return judged(INCONCLUSIVE, rule, _overfit_note(no_dropout_gap, "the net without dropout"))
    gap_low, gap_high = interval(gap_gain)

    def verdict_of(ratio: dict) -> str:
        low, high = interval(ratio)
        if gap_high <= 0:
            return NOT_REPRODUCED
        if gap_low <= 0 or ratio["n"] < 2:
            return INCONCLUSIVE
        if not converged:  # the ratio is a lower bound
            return PARTLY if low > 3 else INCONCLUSIVE
        return REPRODUCED if 1.5 <= low and high <= 3 else PARTLY if high < 1.5 or low > 3 else INCONCLUSIVE

    note = _overfit_note(no_dropout_gap, "the net without dropout") + "; " + (
        "every run converged" if converged else "some runs still improving at the end: the ratio is a lower bound")
    return judged(verdict_of(ratio), rule, note, ratio, verdict_of)


def c10_imagenet_error(top1: float | None, top5: float | None, imagenet: bool) -> tuple[str, str, str]:
    """C10: one CNN's ten-patch ILSVRC error within 2 points of 40.7 / 18.2 (ILSVRC-2012 val)."""
    rule = "ILSVRC-2012 validation, ten patches, within 2 points of the paper's 40.7 / 18.2 (one CNN)"
    if not imagenet:
        return NOT_MEASURED, "needs ILSVRC-2012 (the imagenet profile)", "not measured at this scale"
    close = abs(top1 - 40.7) <= 2 and abs(top5 - 18.2) <= 2
    return (REPRODUCED if close else NOT_REPRODUCED), rule, "one run"


def c11_colour_groups(grouped: list[dict], control: list[dict], travel: float) -> tuple[str, str, str]:
    """C11 from qualitative.group_contrast, one dict per run, of the grouped net's two conv1 groups and of
    the same split in ungrouped controls (where the split means nothing). `travel`: the least distance,
    over every run of both nets, of conv1 from its random start, |W - W0| / |W0| (the regime: every run's
    kernels far from where they began). "In every run" needs at least two runs."""
    rule = ("colour-specialization (energy off the grey axis) per conv1 kernel, per run; reproduced: in every run "
            "(2+) the grouped net's two groups differ with permutation p < 0.01 while the same split of the "
            "matching ungrouped control does not (p >= 0.05, a smaller difference); partly: the groups differ "
            "with p < 0.05 in some runs, or the controls split too; not reproduced: p >= 0.05 in every run with "
            "kernels far from their start; otherwise inconclusive at this budget")
    moved = travel >= MOVED_FROM_START
    note = "kernels moved far from their random start" if moved else "kernels still near their random start"
    if not moved or len(grouped) < 2:
        return INCONCLUSIVE, rule, note + f"; {len(grouped)} run(s) of each net"
    apart = [g["p_value"] < 0.01 and c["p_value"] >= 0.05 and g["difference"] > c["difference"]
             for g, c in zip(grouped, control)]
    if all(apart):
        return REPRODUCED, rule, note
    return (PARTLY if any(g["p_value"] < 0.05 for g in grouped) else NOT_REPRODUCED), rule, note


def c12_depth(cost: dict, state: str) -> tuple[str, str, str]:
    """C12: top-1 points lost without a middle conv layer, per seed (paper: about 2)."""
    return gain_claim(cost, 2.0, True, "", state=state)


def c13_ensemble(gain: dict, models: int, converged: bool) -> tuple[str, str, str]:
    """C13: top-1 points that averaging the softmax of `models` nets saves against the mean single
    net (paper: 2.6 for five). `gain` spreads over the test set's bootstrap or over ensembles."""
    regime = converged and models >= 2
    note = f"{models} nets averaged (the paper averaged 5); " + _converged_note(converged)
    return gain_claim(gain, 2.6, regime, note)


def _converged_note(converged: bool) -> str:
    return ("every run converged (test error no longer falling)" if converged
            else "some runs still improving at the end (regime not reached)")


def _state_note(state: str) -> str:
    return {CONVERGED: "every run converged (test error no longer falling)",
            LOWER_BOUND: ("the runs without the paper's ingredient converged, those with it still improving, "
                          "so the gain can only widen: a lower bound"),
            STILL_IMPROVING: ("the runs without the paper's ingredient still improving at the end, so the gain may "
                              "yet shrink or change sign (regime not reached)")}[state]


def overfits(gap: float) -> bool:
    """Whether a net whose final test error is `gap` points above its training error overfits (the regime
    of C5, C7 and C9)."""
    return gap >= OVERFIT_GAP


def _overfit_note(gap: float, net: str) -> str:
    return (f"{net} overfits (train error {OVERFIT_GAP:g}+ points below test)" if overfits(gap)
            else f"{net} does not overfit (regime not reached)")
