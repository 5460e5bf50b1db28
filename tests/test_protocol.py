"""protocol.py: the power calculation against known values, the power table of the committed runs, and a
verdict's robustness to its declared thresholds."""

import io
import json
import math

import pandas as pd
import pytest

from alexnet_book import claims, protocol
from alexnet_book.claims import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED


@pytest.mark.parametrize("effect_over_sd, seeds, power", [
    (1.0, 10, 0.803),  # G*Power's one-sample t test, two-sided, alpha 0.05, power 0.8 (its wrong-side tail ~0)
    (0.5, 34, 0.808),
    (0.8, 15, 0.821),
    (2.0, 5, 0.909),
])
def test_seeds_needed_matches_the_one_sample_t_test(effect_over_sd, seeds, power):
    assert protocol.seeds_needed(sd=2.0, effect=2.0 * effect_over_sd) == seeds
    assert protocol.power(seeds, 2.0, 2.0 * effect_over_sd) == pytest.approx(power, abs=1e-3)
    assert protocol.power(seeds - 1, 2.0, 2.0 * effect_over_sd) < 0.8  # the fewest: one seed less falls short


def test_the_normal_approximation_undercounts_by_a_few_seeds():
    """The docstring's hand formula, n = (2.80 sd / effect)^2, against the exact noncentral t."""
    for effect_over_sd in (0.5, 0.8, 1.0):
        by_hand = (2.80 / effect_over_sd) ** 2
        assert 0 < protocol.seeds_needed(1.0, effect_over_sd) - by_hand <= 3


def test_power_is_symmetric_and_grows_with_seeds():
    assert protocol.power(5, 1.0, -1.5) == protocol.power(5, 1.0, 1.5)
    assert [protocol.power(n, 1.0, 1.0) for n in (3, 5, 10)] == sorted(protocol.power(n, 1.0, 1.0) for n in (3, 5, 10))
    assert protocol.power(3, 1.0, 1e-9) == pytest.approx(0.025, abs=1e-6)  # no effect: 2.5% false alarms each side


def test_c4_needs_18_seeds_at_its_committed_sd():
    """C4's gains 8.88, 3.66, 4.64 (SD 2.77) against the paper's 2 points: 3 seeds had a 12% chance of excluding 0."""
    assert protocol.power(3, 2.7745, 2.0) == pytest.approx(0.117, abs=1e-3)
    assert protocol.seeds_needed(2.7745, 2.0) == 18


def test_too_many_seeds_is_none():
    assert protocol.seeds_needed(sd=8.0, effect=1.7, max_seeds=100) is None


def test_detectable_effect_inverts_power():
    effect = protocol.detectable_effect(sd=1.0, n=10)
    assert effect == pytest.approx(1.0, abs=0.01)  # 10 seeds detect effect/sd = 1 (see the G*Power row)
    assert protocol.power(10, 1.0, effect) == pytest.approx(0.8, abs=1e-6)
    assert protocol.detectable_effect(sd=1.0, n=2) > protocol.detectable_effect(sd=1.0, n=3) > 2  # t = 12.7, 4.3


def test_sd_upper_bound_from_the_chi_square():
    assert protocol.sd_upper_bound(1.0, 3) == pytest.approx(math.sqrt(2 / 0.4463), abs=1e-3)  # chi2(2) 20%: 0.4463
    assert protocol.sd_upper_bound(1.0, 50) < protocol.sd_upper_bound(1.0, 5) < protocol.sd_upper_bound(1.0, 3)


def write_notebook(root, name, metrics, seeds, seconds):
    folder = root / name
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text(json.dumps({"run": {"seeds": seeds}, "metrics": metrics}))
    pd.DataFrame({"epoch": range(1, len(seconds) + 1), "seconds": seconds}).to_csv(folder / "history.csv", index=False)


def test_power_table_on_a_synthetic_run(tmp_path):
    write_notebook(tmp_path, "nb", {"gain": {"mean": 1.0, "std": 1.0, "n": 3}}, seeds=[0, 1, 2],
                   seconds=[60.0] * 9)  # 9 epochs of a minute over 3 seeds: 3 minutes a seed
    measure = protocol.SeedMeasure("C4", "nb", protocol.stored("gain"), 1.0, "points", "the same unit")
    row = protocol.power_table(tmp_path, measures=[measure]).loc["C4"]
    assert (row["committed n"], row["committed sd"], row["seeds needed"]) == (3, 1.0, 10)
    assert row["minutes per seed"] == 3.0 and row["minutes for seeds needed"] == 30.0
    assert row["power at committed n"] == pytest.approx(protocol.power(3, 1.0, 1.0))
    assert row["seeds at sd's upper bound"] == protocol.seeds_needed(protocol.sd_upper_bound(1.0, 3), 1.0)


def test_power_table_of_the_committed_runs():
    table = protocol.power_table()
    assert list(table.index) == ["C1", "C2", "C4", "C5", "C7", "C8", "C9", "C12"]
    assert table.loc["C4", "committed sd"] == pytest.approx(2.7745, abs=1e-4)
    assert table.loc["C1", "committed mean"] == pytest.approx(2.918, abs=1e-3)  # 3.92x, beyond 1x
    assert (table["committed n"] >= 2).all() and table["power at committed n"].between(0.025, 1).all()
    assert table.loc["C4", "seeds needed"] == 18 and table.loc["C1", "seeds needed"] <= 3
    assert pd.isna(table.loc["C2", "seeds needed"])  # 3 epochs on 4,000 images: SD 8 points, no budget tells
    needed = table["seeds needed"].dropna()
    assert needed.between(2, 100).all()
    assert (table["seeds at sd's upper bound"].dropna() >= needed).all()
    assert table["minutes per seed"].between(1, 60).all()


def test_threshold_ranges_centre_on_the_lines_the_rules_use():
    ranges = protocol.THRESHOLD_RANGES
    assert ranges["overfitting line (validation minus eval-mode training error, points)"][1] == claims.OVERFIT_GAP
    assert ranges["C11: conv1 travel, |W - W0| / |W0|"][1] == claims.MOVED_FROM_START
    assert ranges["C1: training-error line (%)"] == (20.0, 25.0, 30.0)  # issue 32's range
    assert all(list(values) == sorted(values) and len(values) == 3 for values in ranges.values())


def test_docs_protocol_shows_the_power_table_of_the_committed_runs():
    """docs/protocol.md's table is power_table() as shown; a rerun that changes the SDs regenerates it."""
    from alexnet_book import report
    from alexnet_book.results import REPO

    table = protocol.shown(protocol.power_table())
    assert report.to_markdown(table, "../notebooks/", list(table.columns)) in (REPO / "docs/protocol.md").read_text()
    assert table.set_index("claim").loc["C4", "seeds needed"] == "18"
    assert table.set_index("claim").loc["C2", "seeds needed"] == "more than 100"


def test_the_frozen_inputs_are_protocol_v1s_committed_runs():
    """V1_MEASURES equals what SEED_MEASURES read from results/cifar at V1_COMMIT (skipped where git lacks it)."""
    import subprocess

    from alexnet_book.results import REPO

    for measure in protocol.SEED_MEASURES:
        files = {}
        for name in ("metrics.json", "history.csv"):
            shown = subprocess.run(["git", "show", f"{protocol.V1_COMMIT}:results/cifar/{measure.notebook}/{name}"],
                                   cwd=REPO, capture_output=True, text=True)
            if shown.returncode:
                pytest.skip(f"git has no {protocol.V1_COMMIT} here: {shown.stderr.strip()}")
            files[name] = shown.stdout
        committed = measure.read(json.loads(files["metrics.json"])["metrics"])
        mean, sd, n, _ = protocol.V1_MEASURES[measure.claim]
        assert (committed.mean, committed.sd, committed.n) == pytest.approx((mean, sd, n), rel=1e-12), measure.claim
        seeds = json.loads(files["metrics.json"])["run"]["seeds"]
        minutes = pd.read_csv(io.StringIO(files["history.csv"]))["seconds"].sum() / 60 / len(seeds)
        assert minutes == pytest.approx(protocol.V1_MEASURES[measure.claim][3], rel=1e-12), measure.claim


def test_docs_protocol_shows_the_declared_seeds_and_their_power():
    from alexnet_book import report
    from alexnet_book.results import REPO

    table = protocol.declared()
    assert table.loc["C4", "CPU seeds"] == 3 and table.loc["C4", "GPU seeds"] >= table.loc["C4", "seeds needed"]
    assert (table["GPU seeds"] >= table["CPU seeds"]).all() and table["CPU power"].between(0, 1).all()
    shown = protocol.shown_declared(table)
    assert report.to_markdown(shown, "../notebooks/", list(shown.columns)) in (REPO / "docs/protocol.md").read_text()
