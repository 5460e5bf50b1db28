"""The paper's claims C1..C13 (shared/paper/alexnet-paper-facts.md) and the rule that judges each.

A verdict is one of five words. Every rule below returns a Judgement (verdict, rule text, note, and the
verdict at each threshold of a declared range where the measure has one) and is unit-tested; notebooks
measure, call the rule and record what it returns (results.Results.judged).

The estimate a rule reads is a stats.Interval: a 95% Student-t interval over seeds for a paired
per-seed measure (`ci`), or a paired bootstrap over test images where one model or ensemble is
compared with another (C8, C13). Its n says what it counts.

- reproduced: the effect is real (the interval excludes zero) and at least half the paper's size;
- partly: real and of the paper's sign, but smaller than half the paper's;
- not reproduced: the interval excludes the paper's effect and does not show a real one:
  evidence against the claim;
- inconclusive at this budget: the interval covers both zero and the paper's effect, or one seed
  only, or the runs did not reach the regime the claim speaks about (converged nets, a net that
  overfits, a threshold crossed), or the verdict changes inside the declared range of a threshold
  the measure depends on;
- not measured at this scale: the claim needs ImageNet.

A short run is not evidence against the paper: the regime check comes first. This module imports only
stats (which imports nothing from the package), so every other module may import it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from .stats import Interval, from_summary

VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive at this budget", "not measured at this scale")
REPRODUCED, PARTLY, NOT_REPRODUCED, INCONCLUSIVE, NOT_MEASURED = VERDICTS
OVERFIT_GAP = 10.0  # points of validation minus eval-mode training error from which a net counts as overfitting
CONVERGED_WITHIN = 0.5  # points: a run has converged when its last epochs no longer beat its earlier best by more
MOVED_FROM_START = 1.0  # C11: conv1 kernels have moved when |W - W0| / |W0| reaches this
MEMORISED_BELOW = 5.0  # C12: a net whose eval-mode training error ends below this many percent memorised its data
# The declared ranges (protocol v2, issue 32): a verdict must hold at every threshold of its range, else it is
# inconclusive at this budget. Centred on the value each rule used in protocol v1.
C1_LINES = (20.0, 25.0, 30.0)  # % training error; the paper's Figure 1 line is 25%
OVERFIT_LINES = (7.5, OVERFIT_GAP, 12.5)
TRAVEL_LINES = (0.75, MOVED_FROM_START, 1.25)
# Where a paired gain between two trained variants stands at the end (regime.gain_state): every run of both
# annealed (the schedule spent, or the validation curve flat by the slope test), or some run still improving,
# when even the gain's sign may change. Protocol v1 also had "lower bound" (only the variant without the paper's
# ingredient converged); its argument, that the gain can only widen, fails for a net that overfits, whose error
# rises later, so v2 drops it.
CONVERGED, STILL_IMPROVING = GAIN_STATES = ("converged", "still improving")


@dataclass(frozen=True)
class Claim:
    section: str
    claim: str
    paper: str
    regime: str  # what a run must reach before it can speak about the claim


CLAIMS: dict[str, Claim] = {
    "C1": Claim("3.1", "ReLU reaches 25% CIFAR-10 training error faster than tanh", "6x fewer epochs",
                "every run crosses every training-error line it is judged at (20, 25 and 30%)"),
    "C2": Claim("3.2", "two-GPU net beats a one-GPU net with half the kernels", "-1.7% top-1, -1.2% top-5",
                "trained nets (validation error no longer falling), 2+ seeds"),
    "C3": Claim("3.3", "LRN reduces ILSVRC error", "-1.4% top-1, -1.2% top-5", "ILSVRC-2012"),
    "C4": Claim("3.3", "LRN on a four-layer CIFAR-10 CNN", "13% -> 11% test error",
                "converged nets (validation error no longer falling)"),
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
                 "converged nets (validation error no longer falling)"),
    "C13": Claim("6", "averaging five similar CNNs lowers top-1 error", "40.7% -> 38.1% top-1 (-2.6)",
                 "2+ trained nets of one kind"),
}


def claim_entry(claim_id: str, measured, verdict: str, rule: str, *, spread=None, n: int | None = None,
                unit: str = "", note: str = "", regime: dict | None = None, interval: dict | None = None,
                sensitivity: str = "") -> dict:
    """One claim entry for metrics.json; rejects unknown ids and verdicts. `interval`: the estimate's
    stats.Interval.as_dict() (bounds, what n counts, which kind); `sensitivity`: the verdict at each
    threshold of a declared range (Judgement.sensitivity_text)."""
    if claim_id not in CLAIMS:
        raise ValueError(f"unknown claim id {claim_id!r}; valid ids: {', '.join(CLAIMS)}")
    if verdict not in VERDICTS:
        raise ValueError(f"unknown verdict {verdict!r}; valid verdicts: {', '.join(VERDICTS)}")
    return {"id": claim_id, "paper": CLAIMS[claim_id].paper, "measured": measured, "spread": spread, "n": n,
            "unit": unit, "verdict": verdict, "rule": rule, "note": note, "regime": regime, "interval": interval,
            "sensitivity": sensitivity}


# ---------------------------------------------------------------- the shared pieces


class Judgement(NamedTuple):
    """What a rule returns: the verdict, the rule's text, a note on the regime, and, for a measure with a
    threshold, the verdict at each threshold of its declared range (a table; None without a threshold)."""

    verdict: str
    rule: str
    note: str
    sensitivity: pd.DataFrame | None = None

    @property
    def sensitivity_text(self) -> str:
        """'20: reproduced; 25: reproduced; 30: partly' for claims.csv; '' without a threshold."""
        if self.sensitivity is None:
            return ""
        return "; ".join(f"{_show(t)}: {v}" for t, v in self.sensitivity["verdict"].items())


def ci(estimate: dict | Interval) -> Interval:
    """The interval a rule reads: an Interval as given (a bootstrap, say), or the 95% Student-t interval
    over seeds of a per-seed statistic {"mean", "std", "n"} (stats.from_summary)."""
    if isinstance(estimate, Interval):
        return estimate
    return from_summary(estimate["mean"], estimate["std"], estimate["n"])


def direction(estimate: dict | Interval, lower: str = "lowers", higher: str = "raises") -> str:
    """Which way a difference (worse minus better, e.g. experiment.paired_gain) points, by its interval:
    `lower` when all of it is above 0, `higher` when all is below, else "does not measurably change"."""
    interval = ci(estimate)
    return lower if interval.low > 0 else higher if interval.high < 0 else "does not measurably change"


def effect_verdict(estimate: dict | Interval, paper: float, regime_reached: bool = True) -> str:
    """The five-word verdict for "this lowers error by `paper`" (or any effect the paper gives as positive)."""
    interval = ci(estimate)
    if not regime_reached or not interval.bounded:
        return INCONCLUSIVE
    if interval.low > 0:
        return REPRODUCED if interval.mean >= paper / 2 else PARTLY
    return NOT_REPRODUCED if interval.high < paper else INCONCLUSIVE


def effect_rule(paper: float, unit: str = "points", over: str = "a 95% Student-t interval over seeds") -> str:
    return (f"{over}; reproduced: it excludes 0 and the mean is at least half the paper's {paper:g} {unit}; partly: "
            f"excludes 0, smaller; not reproduced: includes 0 and excludes {paper:g}; otherwise, with one seed, or "
            "outside the regime: inconclusive at this budget")


def describe(stats: dict, digits: int = 2) -> str:
    """'1.23 ± 0.45 (n=3)': mean ± standard deviation over seeds."""
    interval = ci(stats)
    spread = f" ± {interval.sd:.{digits}f}" if interval.bounded else ""
    return f"{interval.mean:.{digits}f}{spread} (n={interval.n})"


def robust_verdict(judge: Callable, thresholds: Iterable, name: str) -> tuple[str, str, pd.DataFrame]:
    """Judge at every threshold of a declared range: (the common verdict when all agree, else inconclusive at
    this budget; a note naming what the verdict is sensitive to, "" when nothing; the table of verdicts).

    `judge(threshold)` returns a verdict, or a mapping with a "verdict" key whose other keys (the measure at
    that threshold) become table columns. The argument: a threshold such as "25% training error" or "10
    points of overfitting" is a convention, not the paper's claim; a verdict that a reasonable other choice
    would change rests on the convention, so it decides nothing.
    """
    thresholds = list(thresholds)
    if not thresholds:
        raise ValueError("robust_verdict needs a declared range: at least one threshold")
    rows = [result if isinstance(result, Mapping) else {"verdict": result} for result in map(judge, thresholds)]
    table = pd.DataFrame(rows, index=pd.Index(thresholds, name=name))
    unknown = set(table["verdict"]) - set(VERDICTS)
    if unknown:
        raise ValueError(f"unknown verdict(s) {', '.join(sorted(unknown))}; valid verdicts: {', '.join(VERDICTS)}")
    verdicts = table["verdict"].unique()
    if len(verdicts) == 1:
        return verdicts[0], "", table
    where = "; ".join(f"{v} at {', '.join(_show(t) for t in table.index[table['verdict'] == v])}" for v in verdicts)
    return INCONCLUSIVE, f"sensitive to the {name}: {where}", table


def _show(threshold) -> str:
    return f"{threshold:g}" if isinstance(threshold, float | int) else str(threshold)


def _notes(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def gain_claim(estimate: dict | Interval, paper: float, regime_reached: bool, regime_note: str,
               unit: str = "points", state: str | None = None) -> Judgement:
    """A gain judged by `effect_verdict`. `state` (GAIN_STATES), for a gain between two trained variants:
    a gain whose runs had not all converged decides nothing, since the still-improving runs could move it
    either way. None: not such a gain (e.g. ten patches against one on the same nets)."""
    if state is not None and state not in GAIN_STATES:
        raise ValueError(f"unknown gain state {state!r}; valid: {', '.join(GAIN_STATES)}")
    interval = ci(estimate)
    over = f"a 95% {interval.kind} interval over {interval.counts}"
    verdict = effect_verdict(interval, paper, regime_reached and state != STILL_IMPROVING)
    return Judgement(verdict, effect_rule(paper, unit, over), _notes(regime_note, state and _state_note(state)))


def overfit_claim(estimate: dict | Interval, paper: float, gap: float, net: str, state: str | None,
                  regime_note: str = "") -> Judgement:
    """A gain whose regime is a net that overfits (C5, C7), judged at every line of OVERFIT_LINES."""
    def judge(line: float) -> str:
        return gain_claim(estimate, paper, overfits(gap, line), "", state=state).verdict

    verdict, sensitivity, table = robust_verdict(judge, OVERFIT_LINES, "overfitting line (points)")
    base = gain_claim(estimate, paper, overfits(gap), "", state=state)
    return Judgement(verdict, base.rule + f"; at every overfitting line of {_lines(OVERFIT_LINES)} points",
                     _notes(regime_note, _overfit_note(gap, net), base.note, sensitivity), table)


def _lines(lines) -> str:
    return ", ".join(_show(line) for line in lines)


# ---------------------------------------------------------------- one rule per claim


def c1_relu_speedup(ratios: Mapping[float, dict], crossed: Mapping[float, bool]) -> Judgement:
    """C1: epochs to a training-error line, tanh over ReLU, per seed, at every line of C1_LINES (`ratios` and
    `crossed`, whether every run reached that line, keyed by the line). Where some run never crossed a line
    the ratio there is a lower bound, which decides only when the bound itself reaches "reproduced"."""
    rule = (f"speed-up r = tanh epochs / ReLU epochs to a training-error line, per seed, as an effect r - 1; "
            f"{effect_rule(5, 'x over 1x')}; a lower bound (some run never crossed the line) is reproduced only "
            f"when the bound is; at every line of {_lines(C1_LINES)}% training error")

    def judge(line: float) -> dict:
        ratio = ratios[line]
        verdict = effect_verdict({**ratio, "mean": ratio["mean"] - 1}, 5)  # a speed-up of 1x is no effect
        if not crossed[line] and verdict != REPRODUCED:
            verdict = INCONCLUSIVE
        return {"verdict": verdict, "speed-up": round(ratio["mean"], 2), "every run crossed": crossed[line]}

    verdict, sensitivity, table = robust_verdict(judge, C1_LINES, "training-error line (%)")
    regime = ("every run crossed every line" if all(crossed[line] for line in C1_LINES)
              else "some runs never crossed a line: a lower bound there (regime not reached)")
    return Judgement(verdict, rule, _notes(regime, sensitivity), table)


def c2_two_gpus(gain: dict | Interval, converged: bool) -> Judgement:
    """C2: top-1 gain (points, ten patches) of the grouped two-GPU net over the one-GPU net, per seed."""
    return gain_claim(gain, 1.7, converged, _converged_note(converged))


def c3_lrn_imagenet() -> Judgement:
    return Judgement(NOT_MEASURED, "needs two ILSVRC-2012 trainings of the full net, with and without LRN",
                     "not measured at CIFAR scale: needs ILSVRC-2012 (the imagenet profile)")


def c4_lrn_cifar(gain: dict | Interval, state: str) -> Judgement:
    """C4: test error points LRN saves on the -11pct net, per seed (paper: 13% -> 11%, 2 points)."""
    return gain_claim(gain, 2.0, True, "", state=state)


def c5_overlapping_pooling(gain: dict | Interval, z2_gap: float, state: str) -> Judgement:
    """C5: top-1 points z=3 saves against z=2, per seed (paper 0.4), once the z=2 net overfits (its final
    validation minus eval-mode training error `z2_gap`, regime.overfitting_gap)."""
    return overfit_claim(gain, 0.4, z2_gap, "the z=2 net", state)


PAPER_PARAMETERS, PAPER_NEURONS = 60_000_000, 650_000


def c6_size(parameters: int, neurons: int) -> Judgement:
    """C6: within 5% of the paper's 60M parameters and 650,000 neurons."""
    close = abs(parameters / PAPER_PARAMETERS - 1) < 0.05 and abs(neurons / PAPER_NEURONS - 1) < 0.05
    return Judgement(REPRODUCED if close else NOT_REPRODUCED, "within 5% of 60M parameters and of 650,000 neurons",
                     "a count, no regime")


def c7_pca_lighting(gain: dict | Interval, none_gap: float, state: str) -> Judgement:
    """C7: top-1 points PCA lighting saves on top of crops and flips, per seed (paper: over 1), once the
    net without augmentation overfits (its final gap `none_gap`)."""
    return overfit_claim(gain, 1.0, none_gap, "the net without augmentation", state)


def c8_ten_patches(gain: Interval, converged: bool) -> Judgement:
    """C8: top-1 points ten patches save against the centre patch on the same trained nets (paper 1.5): a
    paired bootstrap over test images (the same nets, read two ways), once the nets have converged."""
    return gain_claim(gain, 1.5, converged, _converged_note(converged))


def c9_dropout(gap_gain: dict | Interval, ratios: Mapping[float, dict], no_dropout_gap: float,
               converged: bool, pace: str = "level") -> Judgement:
    """C9: dropout shrinks the overfitting gap (validation minus eval-mode training error, points, per seed)
    and roughly doubles the epochs to converge: the ratio of epochs, dropout over none, per seed, to reach
    each level of `ratios` (keyed by the declared levels of the pace measure, named `pace`). Without
    overfitting (the net without dropout's final gap `no_dropout_gap`, at every overfitting line) there is
    nothing to prevent; with runs not converged the pace decides nothing."""
    rule = ("gap: dropout shrinks the final gap (interval above 0); pace: the epochs ratio's interval lies within "
            "1.5-3x (roughly doubles) or outside it; reproduced: both hold; partly: the gap shrinks but the pace is "
            "outside 1.5-3x; not reproduced: the gap does not shrink (interval excludes a real gain); otherwise "
            f"inconclusive at this budget; at every {pace} of the pace measure and every overfitting line")
    gap = ci(gap_gain)

    def pace_verdict(level: float) -> str:
        ratio = ci(ratios[level])
        if gap.high <= 0:
            return NOT_REPRODUCED
        if gap.low <= 0 or not ratio.bounded or not converged:
            return INCONCLUSIVE
        return (REPRODUCED if 1.5 <= ratio.low and ratio.high <= 3 else PARTLY if ratio.high < 1.5 or ratio.low > 3
                else INCONCLUSIVE)

    by_level = robust_verdict(pace_verdict, sorted(ratios), pace)
    by_line = robust_verdict(lambda line: by_level[0] if overfits(no_dropout_gap, line) else INCONCLUSIVE,
                             OVERFIT_LINES, "overfitting line (points)")
    note = _notes(_overfit_note(no_dropout_gap, "the net without dropout"), _converged_note(converged),
                  by_level[1], by_line[1])
    return Judgement(by_line[0], rule, note, by_level[2])


def c10_imagenet_error(top1: float | None, top5: float | None, imagenet: bool) -> Judgement:
    """C10: one CNN's ten-patch ILSVRC error within 2 points of 40.7 / 18.2 (ILSVRC-2012 val)."""
    rule = "ILSVRC-2012 validation, ten patches, within 2 points of the paper's 40.7 / 18.2 (one CNN)"
    if not imagenet:
        return Judgement(NOT_MEASURED, "needs ILSVRC-2012 (the imagenet profile)", "not measured at this scale")
    close = abs(top1 - 40.7) <= 2 and abs(top5 - 18.2) <= 2
    return Judgement(REPRODUCED if close else NOT_REPRODUCED, rule, "one run")


def c11_colour_groups(grouped: list[dict], control: list[dict], travel: float) -> Judgement:
    """C11 from qualitative.group_contrast, one dict per run, of the grouped net's two conv1 groups and of
    the same split in ungrouped controls (where the split means nothing). `travel`: the least distance,
    over every run of both nets, of conv1 from its random start, |W - W0| / |W0|, judged at every line of
    TRAVEL_LINES (the regime: every run's kernels far from where they began). "In every run" needs 2+ runs."""
    rule = ("colour-specialization (energy off the grey axis) per conv1 kernel, per run; reproduced: in every run "
            "(2+) the grouped net's two groups differ with permutation p < 0.01 while the same split of the "
            "matching ungrouped control does not (p >= 0.05, a smaller difference); partly: the groups differ "
            "with p < 0.05 in some runs, or the controls split too; not reproduced: p >= 0.05 in every run with "
            f"kernels far from their start; otherwise inconclusive at this budget; at every travel line of "
            f"{_lines(TRAVEL_LINES)}")
    apart = [g["p_value"] < 0.01 and c["p_value"] >= 0.05 and g["difference"] > c["difference"]
             for g, c in zip(grouped, control)]
    measured = REPRODUCED if all(apart) else PARTLY if any(g["p_value"] < 0.05 for g in grouped) else NOT_REPRODUCED

    def judge(line: float) -> str:
        return measured if travel >= line and len(grouped) >= 2 else INCONCLUSIVE

    verdict, sensitivity, table = robust_verdict(judge, TRAVEL_LINES, "conv1 travel line")
    moved = "kernels moved far from their random start" if travel >= max(TRAVEL_LINES) else \
        f"kernels travelled {travel:.2f} of their initial norm"
    return Judgement(verdict, rule, _notes(moved, f"{len(grouped)} run(s) of each net", sensitivity), table)


def c12_depth(cost: dict | Interval, state: str, train_error: float) -> Judgement:
    """C12: top-1 points lost without a middle conv layer, per seed (paper: about 2). The regime: nets
    whose capacity is the limit, as the paper's never memorised ImageNet; a full net whose eval-mode training
    error ends below MEMORISED_BELOW (`train_error`, the mean over its runs) loses nothing when a layer goes,
    whatever depth does where capacity binds."""
    capacity = train_error >= MEMORISED_BELOW
    note = (f"the full nets end at {train_error:.1f}% training error (eval mode): capacity is the limit" if capacity
            else f"the full nets memorise their training images ({train_error:.1f}% training error, eval mode), "
                 "so capacity is not the limit (regime not reached)")
    return gain_claim(cost, 2.0, capacity, note, state=state)


def c13_ensemble(gain: Interval, models: int, ensembles: int, converged: bool) -> Judgement:
    """C13: top-1 points that averaging the softmax of `models` nets saves against its members (paper: 2.6
    for five): a paired bootstrap over test images of the members' mean error minus the ensemble's, over
    `ensembles` disjoint ensembles of annealed members (more than one where the seeds allow)."""
    regime = converged and models >= 2
    note = _notes(f"{ensembles} ensemble(s) of {models} nets (the paper averaged 5)", _converged_note(converged))
    return gain_claim(gain, 2.6, regime, note)


def _converged_note(converged: bool) -> str:
    return ("every run converged (its schedule spent, or its validation error flat)" if converged
            else "some runs still improving at the end (regime not reached)")


def _state_note(state: str) -> str:
    return {CONVERGED: _converged_note(True),
            STILL_IMPROVING: ("some runs still improving at the end, so the gain may yet shrink or change sign "
                              "(regime not reached)")}[state]


def overfits(gap: float, line: float = OVERFIT_GAP) -> bool:
    """Whether a net whose final validation error is `gap` points above its eval-mode training error
    overfits (the regime of C5, C7 and C9), at the overfitting line `line`."""
    return gap >= line


def _overfit_note(gap: float, net: str) -> str:
    return (f"{net} overfits (gap {gap:.1f} points, over every line of {_lines(OVERFIT_LINES)})"
            if all(overfits(gap, line) for line in OVERFIT_LINES)
            else f"{net}'s gap is {gap:.1f} points, under a line of {_lines(OVERFIT_LINES)}")
