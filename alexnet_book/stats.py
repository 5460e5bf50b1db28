"""The one interval every verdict, plot and table reads.

Two intervals, each saying what its n counts:

- `t_interval`: a 95% Student-t interval over seeds for a paired per-seed measure (a gain, a ratio).
  Mean ± 2 standard errors, the rule it replaces, covers about 70% at n=2, 82% at n=3 and 88% at
  n=5: the t multiplier is 12.71 at n=2, 4.30 at n=3 and 2.78 at n=5.
- `paired_bootstrap`: where one model or one ensemble is compared with another on the same test
  images (ten patches against one, C8; an ensemble against its members, C13), the interval of the
  difference in error over test images, resampled image by image (scipy.stats.bootstrap, BCa).

This module imports nothing from the package, so claims.py, plots and tables may all import it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats as scipy_stats

CONFIDENCE = 0.95
T_INTERVAL = "Student t"
BOOTSTRAP = "paired bootstrap (BCa)"


@dataclass(frozen=True)
class Interval:
    """A mean and its confidence interval. `sd` is the spread of the units (seeds, test images) n counts, so
    the standard error is sd / sqrt(n); with fewer than two units the bounds are -inf and inf (no interval),
    which every comparison below reads as "excludes nothing"."""

    mean: float
    low: float
    high: float
    sd: float
    n: int
    counts: str  # what n counts: "seeds", "test images", "ensembles"
    kind: str  # T_INTERVAL or BOOTSTRAP
    confidence: float = CONFIDENCE

    @property
    def bounded(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    @property
    def half_width(self) -> float:
        return (self.high - self.low) / 2

    def excludes(self, value: float) -> bool:
        """Whether `value` lies outside the interval (never, without one)."""
        return value < self.low or value > self.high

    def describe(self, digits: int = 2) -> str:
        """'5.73 (95% CI -1.17 to 12.62, n=3 seeds)', or '5.73 (n=1: no interval)'."""
        if not self.bounded:
            return f"{self.mean:.{digits}f} (n={self.n}: no interval)"
        return (f"{self.mean:.{digits}f} ({self.confidence:.0%} CI {self.low:.{digits}f} to {self.high:.{digits}f}, "
                f"n={self.n:,} {self.counts})")

    def as_dict(self) -> dict:
        """For metrics.json: JSON has no infinity or NaN, so an unbounded end and a missing sd are None."""
        return {**asdict(self), "low": self.low if self.bounded else None, "high": self.high if self.bounded else None,
                "sd": self.sd if math.isfinite(self.sd) else None}


def t_multiplier(n: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t quantile for n units (n - 1 degrees of freedom): 4.303 at n=3, 2.776 at n=5."""
    if n < 2:
        raise ValueError(f"a t interval needs 2 or more values, got n={n}")
    return float(scipy_stats.t.ppf((1 + confidence) / 2, n - 1))


def from_summary(mean: float, sd: float, n: int, confidence: float = CONFIDENCE, counts: str = "seeds") -> Interval:
    """The Student-t interval from stored statistics (metrics.json keeps a measure's mean, std and n):
    mean ± t(n-1) sd / sqrt(n)."""
    if n < 2 or not math.isfinite(sd):
        return Interval(mean, -math.inf, math.inf, math.nan, n, counts, T_INTERVAL, confidence)
    half = t_multiplier(n, confidence) * sd / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, sd, n, counts, T_INTERVAL, confidence)


def t_interval(values: Iterable[float], confidence: float = CONFIDENCE, counts: str = "seeds") -> Interval:
    """The Student-t interval of the mean of per-seed values (NaNs dropped, as experiment.spread drops a run
    that never measured). C4's gains 8.88, 3.66, 4.64 give 5.73, -1.17 to 12.62: inconclusive."""
    values = np.asarray([v for v in values if not math.isnan(v)], dtype=float)
    if len(values) == 0:
        raise ValueError("no values to take an interval of")
    sd = float(values.std(ddof=1)) if len(values) > 1 else math.nan
    return from_summary(float(values.mean()), sd, len(values), confidence, counts)


def paired_bootstrap(errors_worse, errors_better, *, scale: float = 100.0, confidence: float = CONFIDENCE,
                     n_resamples: int = 9999, seed: int = 0) -> Interval:
    """How much lower the error of `better` is than that of `worse` on the same test images (the sign of
    experiment.paired_gain), with a bootstrap interval over those images; n counts test images.

    `errors_*` hold one number per test image, in the same order: 1 where the model was wrong and 0 where
    right (or a per-image loss, with scale=1). For an ensemble against its members (C13), `errors_worse` is
    the members' mean error on each image. `scale` 100 gives percentage points.

    Resampling image pairs and taking the difference of the two mean errors equals resampling the
    per-image difference and taking its mean, so the bootstrap runs on the difference: one array, the
    same numbers as `scipy.stats.bootstrap(..., paired=True)`, half the memory. BCa corrects the percentile
    interval for skew and bias; it counts the resamples below the observed gain, and a scaled 0/1 difference
    is a whole number per image, so every mean is computed exactly and a tie stays a tie. Seeded: the same
    inputs give the same interval. About 3 s for 10,000 images on one core (BCa's jackknife).
    """
    worse, better = np.asarray(errors_worse, dtype=float), np.asarray(errors_better, dtype=float)
    if worse.shape != better.shape or worse.ndim != 1:
        raise ValueError(f"one error per test image for both, in the same order; got shapes {worse.shape}, "
                         f"{better.shape}")
    difference = scale * (worse - better)
    mean, sd, n = float(difference.mean()), float(difference.std(ddof=1)), len(difference)
    if np.ptp(difference) == 0:  # the two agree on every image: nothing to resample (BCa would return NaN)
        return Interval(mean, mean, mean, sd, n, "test images", BOOTSTRAP, confidence)
    result = scipy_stats.bootstrap((difference,), np.mean, n_resamples=n_resamples, batch=1000, vectorized=True,
                                   confidence_level=confidence, method="BCa", rng=np.random.default_rng(seed))
    low, high = result.confidence_interval
    return Interval(mean, float(low), float(high), sd, n, "test images", BOOTSTRAP, confidence)
