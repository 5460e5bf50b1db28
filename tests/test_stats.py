"""stats.py: the Student-t interval over seeds and the paired bootstrap over test images, pinned to known
values."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats as scipy_stats

from alexnet_book import stats

C4_GAINS = [8.88, 3.66, 4.64]  # results/cifar/03_local_response_norm: LRN's per-seed gain, points


def two_standard_errors(values) -> tuple[float, float]:
    """Protocol v1's interval, mean ± 2 standard errors, which the t interval replaces."""
    values = np.asarray(values)
    half = 2 * values.std(ddof=1) / math.sqrt(len(values))
    return values.mean() - half, values.mean() + half


@pytest.mark.parametrize("n, multiplier", [(2, 12.706), (3, 4.303), (5, 2.776), (30, 2.045)])
def test_t_multiplier_is_students(n, multiplier):
    assert stats.t_multiplier(n) == pytest.approx(multiplier, abs=5e-4)


def test_t_multiplier_needs_two_values():
    with pytest.raises(ValueError, match="needs 2 or more values, got n=1"):
        stats.t_multiplier(1)


def test_c4s_gains_are_inconclusive_under_the_t_interval():
    interval = stats.t_interval(C4_GAINS)
    assert (interval.mean, interval.low, interval.high) == pytest.approx((5.727, -1.166, 12.619), abs=1e-3)
    assert interval.sd == pytest.approx(2.7745, abs=1e-4) and (interval.n, interval.counts) == (3, "seeds")
    assert not interval.excludes(0) and not interval.excludes(2.0)  # covers 0 and the paper's 2 points
    assert two_standard_errors(C4_GAINS)[0] > 0  # protocol v1's interval called it real
    assert interval.describe() == "5.73 (95% CI -1.17 to 12.62, n=3 seeds)"


def test_from_summary_gives_the_same_interval_as_the_values():
    gains = np.array(C4_GAINS)
    assert stats.from_summary(gains.mean(), gains.std(ddof=1), 3) == stats.t_interval(C4_GAINS)


def test_one_seed_has_no_interval():
    single = stats.t_interval([4.2, math.nan])  # a run that never measured is dropped
    assert single.n == 1 and not single.bounded and not single.excludes(0) and not single.excludes(1e9)
    assert single.describe() == "4.20 (n=1: no interval)"
    assert single.as_dict()["low"] is None and single.as_dict()["high"] is None and single.as_dict()["sd"] is None
    with pytest.raises(ValueError, match="no values"):
        stats.t_interval([])


def test_t_interval_covers_95_percent_where_two_standard_errors_cover_82():
    """The issue's complaint, simulated: 4,000 experiments of 3 seeds from a normal with mean 1."""
    samples = np.random.default_rng(0).normal(1.0, 2.0, size=(4000, 3))
    t_covers = np.mean([not stats.t_interval(s).excludes(1.0) for s in samples])
    two_se_covers = np.mean([low <= 1.0 <= high for low, high in map(two_standard_errors, samples)])
    assert t_covers == pytest.approx(0.95, abs=0.01)
    assert two_se_covers == pytest.approx(0.82, abs=0.015)


def errors(rate: float, n: int, rng) -> np.ndarray:
    return (rng.random(n) < rate).astype(float)


def test_paired_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    worse, better = errors(0.35, 1000, rng), errors(0.30, 1000, rng)
    first = stats.paired_bootstrap(worse, better, seed=3, n_resamples=999)
    assert stats.paired_bootstrap(worse, better, seed=3, n_resamples=999) == first
    assert stats.paired_bootstrap(worse, better, seed=4, n_resamples=999).low != first.low
    assert (first.n, first.counts, first.kind) == (1000, "test images", stats.BOOTSTRAP)
    assert first.mean == pytest.approx(100 * (worse.mean() - better.mean()))


def test_paired_bootstrap_equals_scipys_paired_resampling():
    """Bootstrapping the per-image difference is scipy's paired bootstrap of the two error arrays, given a
    statistic that, like ours, sums whole numbers before it divides: w.mean() - b.mean() rounds resamples
    that tie with the observed gain to either side of it, and BCa's bias correction counts those."""
    rng = np.random.default_rng(2)
    worse, better = errors(0.4, 300, rng), errors(0.3, 300, rng)

    def gain(w, b, axis):
        return 100 * (w.sum(axis) - b.sum(axis)) / w.shape[axis]

    paired = scipy_stats.bootstrap((worse, better), gain, paired=True, vectorized=True, n_resamples=999,
                                   rng=np.random.default_rng(5))
    ours = stats.paired_bootstrap(worse, better, n_resamples=999, seed=5)
    assert (ours.low, ours.high) == tuple(paired.confidence_interval)
    assert (ours.low, ours.high) == pytest.approx((5.774, 20.667), abs=1e-3)


def test_paired_bootstrap_covers_a_known_difference():
    """Per image: both models wrong 20%, only the worse 10%, only the better 5%: errors 30% and 25%, a
    5-point difference; about 95 of 100 test sets of 1,000 images cover it."""
    rng = np.random.default_rng(7)
    covered = 0
    for _ in range(100):
        case = rng.choice(4, size=1000, p=[0.20, 0.10, 0.05, 0.65])  # both, worse only, better only, neither
        worse, better = np.isin(case, [0, 1]).astype(float), np.isin(case, [0, 2]).astype(float)
        covered += not stats.paired_bootstrap(worse, better, n_resamples=999).excludes(5.0)
    assert 88 <= covered <= 100


def test_paired_bootstrap_matches_the_normal_approximation_on_many_images():
    rng = np.random.default_rng(4)
    worse, better = errors(0.37, 10_000, rng), errors(0.29, 10_000, rng)
    interval = stats.paired_bootstrap(worse, better, n_resamples=1999)
    half = 1.96 * interval.sd / math.sqrt(interval.n)
    assert interval.low == pytest.approx(interval.mean - half, abs=0.1)
    assert interval.high == pytest.approx(interval.mean + half, abs=0.1)


def test_identical_predictions_give_a_zero_interval():
    same = np.array([0.0, 1.0, 1.0, 0.0])
    interval = stats.paired_bootstrap(same, same)
    assert (interval.mean, interval.low, interval.high) == (0.0, 0.0, 0.0)


def test_paired_bootstrap_needs_the_same_images():
    with pytest.raises(ValueError, match="same order"):
        stats.paired_bootstrap(np.zeros(5), np.zeros(4))


def test_stats_imports_nothing_from_the_package():
    """claims.py imports nothing from the package and may import stats: stats must not import back."""
    source = (Path(stats.__file__)).read_text()
    assert "from ." not in source and "import alexnet_book" not in source
