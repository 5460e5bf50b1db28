import pandas as pd
import pytest

from alexnet_book import paper_runs
from alexnet_book.claims import NOT_MEASURED
from alexnet_book.profiles import get_profile

TWO, ONE = "two GPUs (grouped)", "one GPU, half the kernels"


def final_table():
    rows = [{"net": TWO, "seed": 0, "ten_top1": 40.0, "ten_top5": 18.0}, {"net": TWO, "seed": 1, "ten_top1": 42.0, "ten_top5": 19.0},
            {"net": ONE, "seed": 0, "ten_top1": 41.0, "ten_top5": 18.5}, {"net": ONE, "seed": 1, "ten_top1": 44.0, "ten_top5": 20.0}]
    return pd.DataFrame(rows).set_index(["net", "seed"])


def test_net_gain_pairs_the_seeds():
    gain = paper_runs.net_gain(final_table(), worse=ONE, better=TWO)
    assert gain["mean"] == pytest.approx(1.5) and gain["n"] == 2
    assert paper_runs.net_gain(final_table(), worse=ONE, better=TWO, column="ten_top5")["mean"] == pytest.approx(0.75)


def test_c10_is_measured_only_on_imagenet_and_says_what_the_profile_gave():
    entry = paper_runs.c10_entry(final_table(), TWO, get_profile("cifar"))
    assert entry["verdict"] == NOT_MEASURED and entry["measured"] is None
    assert "cifar gives 41.0% / 18.5% top-1/top-5 on CIFAR-10, not comparable" in entry["note"]
    imagenet = paper_runs.c10_entry(final_table(), TWO, get_profile("imagenet"))
    assert imagenet["measured"] == "41.0 / 18.5" and imagenet["unit"] == "% top-1 / top-5 error"
