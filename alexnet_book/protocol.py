"""What is declared before a run, and how a verdict is held to it (issue 32).

- How many seeds a claim needs, from a power calculation. For a paired per-seed measure (a gain, a
  ratio over 1x) the verdict reads a 95% Student-t interval over seeds (stats.t_interval). A budget is
  enough when that interval, with probability `power` (0.8), excludes 0 if the true effect is the
  paper's, and by the same token excludes the paper's effect if the true effect is 0: the seeds then
  tell 0 from the paper's effect, whichever holds. `power_table` does this for every claim measured
  over seeds, with the seed-to-seed SD of the committed runs (results/cifar/*/metrics.json) standing in
  for the true one.
- The range each threshold is declared over (THRESHOLD_RANGES, from claims.py): claims.robust_verdict judges
  a measure at every threshold of its range (C1's line, the overfitting line, C11's travel, C9's pace
  levels), and a verdict that changes inside it is inconclusive at this budget.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

from .claims import C1_LINES, OVERFIT_LINES, TRAVEL_LINES, describe
from .profiles import get_profile
from .stats import CONFIDENCE, Interval, from_summary, t_interval, t_multiplier

POWER = 0.8  # the usual choice: one chance in five that a real effect of the paper's size goes unseen
MAX_SEEDS = 100


# ---------------------------------------------------------------- the power calculation


def power(n: int, sd: float, effect: float, confidence: float = CONFIDENCE) -> float:
    """The probability that the t interval over `n` seeds lies wholly on the side of 0 that `effect` is on,
    when the true mean is `effect` and the seed-to-seed SD is `sd`: P(T > t) for T noncentral t with n - 1
    degrees of freedom and noncentrality |effect| sqrt(n) / sd, t the interval's multiplier (4.30 at n=3).
    By symmetry it is also the probability that the interval excludes `effect` when the true mean is 0.
    (An interval wholly on the wrong side, which a two-sided test would also count, does not reproduce a
    claim; its chance is negligible once the power nears 0.8, and scipy's noncentral t turns NaN far out there.)"""
    t, shift = t_multiplier(n, confidence), abs(effect) * math.sqrt(n) / sd
    return float(scipy_stats.nct.sf(t, n - 1, shift))


def seeds_needed(sd: float, effect: float, confidence: float = CONFIDENCE, power_wanted: float = POWER,
                 max_seeds: int = MAX_SEEDS) -> int | None:
    """The fewest seeds (2 or more) whose t interval tells 0 from `effect` with probability `power_wanted`;
    None when even `max_seeds` do not.

    The argument: the interval mean ± t(n-1) sd / sqrt(n) excludes 0 when the mean lies more than its
    half-width from 0. A mean drawn around `effect` does so with probability power(n, sd, effect), which
    grows with n; the answer is the first n where it reaches `power_wanted`. By hand, with normal
    quantiles: n ≈ ((z(1 - α/2) + z(power)) sd / effect)² = (2.80 sd / effect)², α = 1 - confidence; the
    t multipliers make the exact n larger, by 2-3 seeds at these sizes. Known values (a one-sample t test,
    as in G*Power): effect / sd = 1 needs 10 seeds, 0.5 needs 34, 2 needs 5.
    """
    for n in range(2, max_seeds + 1):
        if power(n, sd, effect, confidence) >= power_wanted:
            return n
    return None


def detectable_effect(sd: float, n: int, confidence: float = CONFIDENCE, power_wanted: float = POWER) -> float:
    """The smallest true effect that `n` seeds tell from 0 with probability `power_wanted`."""
    high = sd
    while power(n, sd, high, confidence) < power_wanted:
        high *= 2
    return float(optimize.brentq(lambda effect: power(n, sd, effect, confidence) - power_wanted, 0.0, high))


def sd_upper_bound(sd: float, n: int, confidence: float = POWER) -> float:
    """A one-sided upper confidence bound on the true SD from `n` seeds (chi-square): the committed SD of
    three seeds is itself a rough guess, and a true SD up to this large is consistent with it."""
    return sd * math.sqrt((n - 1) / scipy_stats.chi2.ppf(1 - confidence, n - 1))


# ---------------------------------------------------------------- the claims measured over seeds


@dataclass(frozen=True)
class SeedMeasure:
    """One claim's per-seed measure in a committed run: where it is stored, and the paper's effect in the
    same unit."""

    claim: str
    notebook: str
    read: Callable[[dict], Interval]  # the notebook's metrics.json "metrics" -> the committed interval
    effect: float  # the paper's effect in our unit
    unit: str
    paper: str  # where the paper's number comes from, and how its unit differs from ours


def stored(*path: str, minus: float = 0.0) -> Callable[[dict], Interval]:
    """A reader of a stored {"mean", "std", "n"} (experiment.spread) at `path`, less `minus` (1 for a
    ratio, whose no-effect value is 1x)."""
    def read(metrics: dict) -> Interval:
        for key in path:
            metrics = metrics[key]
        return from_summary(metrics["mean"] - minus, metrics["std"], metrics["n"])
    return read


def c1_speedup(metrics: dict) -> Interval:
    """The cuda-convnet recipe's tanh/ReLU ratio (the one C1 is judged on), beyond 1x."""
    (row,) = [row for row in metrics["ratios"] if row["recipe"] == "cuda-convnet"]
    return from_summary(row["ratio"] - 1, row["ratio_std"], row["n"])


def c2_gain(metrics: dict) -> Interval:
    """Ten-patch top-1 points the grouped net saves against the one-GPU net, seed by seed."""
    ten = {(row["net"], row["seed"]): row["ten_top1"] for row in metrics["final"]}
    seeds = sorted({seed for _, seed in ten})
    return t_interval([ten["one GPU, half the kernels", s] - ten["two GPUs (grouped)", s] for s in seeds])


ILSVRC = ("ILSVRC top-1 points of the paper's full net; ours are CIFAR-10 top-1 points of a smaller net: a stand-in of "
          "the same sign, not the same size")
SEED_MEASURES = (
    SeedMeasure("C1", "02_relu_vs_tanh", c1_speedup, 5.0, "x speed-up beyond 1x",
                "6x on the paper's own four-layer CIFAR-10 net; ours is cuda-convnet's layers-80sec"),
    SeedMeasure("C2", "08_full_training", c2_gain, 1.7, "top-1 points", ILSVRC),
    SeedMeasure("C4", "03_local_response_norm", stored("gain"), 2.0, "test error points",
                "13% -> 11% on CIFAR-10 in the paper too: the same unit"),
    SeedMeasure("C5", "04_overlapping_pooling", stored("top1_gain"), 0.4, "top-1 points", ILSVRC),
    SeedMeasure("C7", "05_data_augmentation", stored("lighting_gain"), 1.0, "top-1 points",
                "'over 1%' " + ILSVRC),
    SeedMeasure("C8", "05_data_augmentation", stored("ten_patch_gain"), 1.5, "top-1 points",
                "39.0 -> 37.5 on ILSVRC-2010 test; issue 32 moves C8 to a paired bootstrap over test images"),
    SeedMeasure("C9", "06_dropout", stored("convergence_ratio", minus=1.0), 1.0, "x epochs beyond 1x",
                "'roughly doubles' iterations; the rule's 1.5-3x band asks for more than telling 1x from 2x"),
    SeedMeasure("C12", "10_depth_ablation", stored("costs", "without conv3"), 2.0, "top-1 points", ILSVRC),
)


def minutes_per_seed(notebook_dir: Path) -> float:
    """Training minutes one seed costs the notebook as committed: history.csv's epoch seconds (every
    variant, test pass included; sweeps and evaluation not) over its seeds."""
    seeds = json.loads((notebook_dir / "metrics.json").read_text())["run"]["seeds"]
    return pd.read_csv(notebook_dir / "history.csv")["seconds"].sum() / 60 / len(seeds)


# Protocol v2's inputs, frozen: protocol v1's committed measures (mean, SD, n: SEED_MEASURES read from
# results/cifar at V1_COMMIT) and the training minutes per seed their history.csv recorded on 2 CPU cores. The
# v2 rerun replaces those files; the calculation that fixed its budgets must not move with them
# (tests/test_protocol.py reads them back from git).
V1_COMMIT = "bf7d094"
V1_MEASURES = {  # claim: (mean, sd, n, minutes per seed)
    "C1": (2.917551887416559, 0.18319674605997976, 3, 13.798555539383313),
    "C2": (4.2500000000000036, 7.99030662740799, 2, 6.034178308183323),
    "C4": (5.726666666666666, 2.774478930057556, 3, 13.89786906572779),
    "C5": (3.7633333333333354, 0.41101500378128586, 3, 5.1000973079778005),
    "C7": (-0.34666666666666757, 0.7910330797971296, 3, 14.006642964511029),
    "C8": (3.016666666666668, 0.28571547618799803, 3, 14.006642964511029),
    "C9": (0.0812319347319348, 0.3151420680389298, 5, 15.747554689790007),
    "C12": (0.26200000000000045, 1.060881708768704, 5, 7.857328260580045),
}


def read_committed(measure: SeedMeasure, folder: Path) -> tuple[Interval, float]:
    """One claim's committed interval and minutes per seed, from a notebook's results folder."""
    return measure.read(json.loads((folder / "metrics.json").read_text())["metrics"]), minutes_per_seed(folder)


def frozen(measure: SeedMeasure) -> tuple[Interval, float]:
    """One claim's protocol v1 interval and minutes per seed, as V1_MEASURES froze them."""
    mean, sd, n, minutes = V1_MEASURES[measure.claim]
    return from_summary(mean, sd, n), minutes


def power_table(root: Path | None = None, measures=SEED_MEASURES, confidence: float = CONFIDENCE,
                power_wanted: float = POWER, max_seeds: int = MAX_SEEDS) -> pd.DataFrame:
    """One row per claim measured over seeds: the paper's effect, the committed mean, SD and n, the power
    the committed seeds had, the seeds that tell 0 from the paper's effect (at the committed SD and at its
    80% upper bound; <NA>: more than `max_seeds`) and what they cost on the committed hardware. The committed
    runs are protocol v1's (V1_MEASURES), or those under `root`."""
    rows = []
    for m in measures:
        committed, minutes = frozen(m) if root is None else read_committed(m, Path(root) / m.notebook)
        needed = seeds_needed(committed.sd, m.effect, confidence, power_wanted, max_seeds)
        cautious = seeds_needed(sd_upper_bound(committed.sd, committed.n), m.effect, confidence, power_wanted,
                                max_seeds)
        rows.append({"claim": m.claim, "unit": m.unit, "paper effect": m.effect, "committed mean": committed.mean,
                     "committed sd": committed.sd, "committed n": committed.n,
                     "power at committed n": power(committed.n, committed.sd, m.effect, confidence),
                     "seeds needed": needed, "seeds at sd's upper bound": cautious,
                     "minutes per seed": minutes, "minutes for seeds needed": needed and needed * minutes,
                     "paper's unit": m.paper, "notebook": m.notebook})
    table = pd.DataFrame(rows).astype({"seeds needed": "Int64", "seeds at sd's upper bound": "Int64",
                                       "minutes for seeds needed": float})
    return table.set_index("claim")


def shown(table: pd.DataFrame) -> pd.DataFrame:
    """power_table as a reader sees it (notebook 11, docs/protocol.md): the paper's effect with its unit, the
    committed mean ± SD (n), and the seeds with their training hours on the committed 2 CPU cores."""
    def seeds(value) -> str:
        return f"more than {MAX_SEEDS}" if pd.isna(value) else str(value)

    return pd.DataFrame({
        "claim": table.index,
        "paper's effect": [f"{e:g} {u}" for e, u in zip(table["paper effect"], table["unit"])],
        "committed": [describe({"mean": m, "std": s, "n": n}) for m, s, n in
                      zip(table["committed mean"], table["committed sd"], table["committed n"])],
        "power then": [f"{p:.0%}" for p in table["power at committed n"]],
        "seeds needed": [seeds(n) for n in table["seeds needed"]],
        "if the SD is at its 80% bound": [seeds(n) for n in table["seeds at sd's upper bound"]],
        "hours for the seeds needed": [f"{m / 60:.1f}" if pd.notna(m) else ""
                                       for m in table["minutes for seeds needed"]],
        "notebook": table["notebook"],
    })


def declared(table: pd.DataFrame | None = None, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Protocol v2's seeds as declared in profiles.py, beside the power calculation (power_table): per claim,
    the seeds each budget gives on 2 CPU cores (the cifar profile) and on one GPU (`<notebook>@cuda`), and the
    chance each has of telling 0 from the paper's effect at protocol v1's SD."""
    table = power_table() if table is None else table
    cifar = get_profile("cifar")
    rows = []
    for claim, row in table.iterrows():
        cpu, gpu = (len(cifar.budget(row["notebook"], device).seeds) for device in ("cpu", "cuda"))
        rows.append({"claim": claim, "seeds needed": row["seeds needed"], "CPU seeds": cpu,
                     "CPU power": power(cpu, row["committed sd"], row["paper effect"], confidence),
                     "GPU seeds": gpu, "GPU power": power(gpu, row["committed sd"], row["paper effect"], confidence),
                     "notebook": row["notebook"]})
    return pd.DataFrame(rows).set_index("claim")


def shown_declared(table: pd.DataFrame) -> pd.DataFrame:
    """declared() as docs/protocol.md shows it."""
    def seeds(value) -> str:
        return f"more than {MAX_SEEDS}" if pd.isna(value) else str(value)

    return pd.DataFrame({"claim": table.index, "seeds needed": [seeds(n) for n in table["seeds needed"]],
                         "2 CPU cores: seeds": table["CPU seeds"], "power": [f"{p:.0%}" for p in table["CPU power"]],
                         "one GPU (@cuda): seeds": table["GPU seeds"], "power on GPU": [f"{p:.0%}" for p in table["GPU power"]],
                         "notebook": table["notebook"]})


# ---------------------------------------------------------------- lines and the ranges a verdict must hold in


# The lines verdicts read, each over the range its verdict must hold in (robust_verdict); the middle
# value is the one the rule uses now. A draft for protocol v2, declared before the rerun.
THRESHOLD_RANGES = {  # the ranges live with the rules that judge over them (claims.robust_verdict)
    "C1: training-error line (%)": C1_LINES,  # the paper's 25%, 5 points either side (issue 32)
    "overfitting line (validation minus eval-mode training error, points)": OVERFIT_LINES,  # C5, C7 and C9
    "C11: conv1 travel, |W - W0| / |W0|": TRAVEL_LINES,  # "far from the random start"
}
