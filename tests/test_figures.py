"""Figures and tables the notebooks show: they draw what they are given."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from alexnet_book import data, plots, summary, timing  # noqa: E402
from alexnet_book.lrn import LRN  # noqa: E402
from alexnet_book.model import AlexNet  # noqa: E402


def test_image_grid_has_a_row_per_class():
    s = data.synthetic(200)
    fig = plots.image_grid(s.images, s.labels, s.classes, per_class=4)
    assert len(fig.axes) == 10 * 4


def test_draw_towers_marks_the_cross_gpu_layers():
    fig = plots.draw_towers(AlexNet())
    red = [line for line in fig.axes[0].lines if line.get_color() == "red"]
    # conv3, fc6, fc7: 2 crossing lines each; fc8: fed by both towers (2 lines, one from each)
    assert len(red) == 3 * 2 + 2


def test_lrn_response_starts_at_k_to_minus_beta():
    fig = plots.lrn_response({"cuda-convnet": LRN.convention("cuda-convnet")}, centre=1.0)
    y = fig.axes[0].lines[0].get_ydata()
    assert y[0] == pytest.approx(2**-0.75, rel=1e-3) and y[-1] < y[0]  # damped as neighbours grow


def test_paper_comparison_totals():
    table = summary.paper_comparison(summary.layer_table(AlexNet()))
    assert table.loc["total", "params"] == 60_965_224
    assert table.loc["total", "neurons"] == 659_272 and table.loc["total", "figure2_neurons"] == 622_312
    assert table.loc["conv1", "difference"] == 290_400 - 253_440
    assert (table.drop(index=["conv1", "total"])["difference"] == 0).all()


def test_layer_times_cover_every_layer():
    net = AlexNet(num_classes=10, width=0.25, fc_size=64)
    times = timing.layer_times(net, torch.randn(1, 3, 224, 224), repeats=1)
    assert times["layer"].tolist() == [name for name, _ in timing.sequential_layers(net)]
    assert (times[["forward_ms", "backward_ms"]] >= 0).all().all()
    assert times["share_%"].sum() == pytest.approx(100)


def test_layer_times_feed_a_channels_last_model_channels_last_inputs_under_autocast():
    net = AlexNet(num_classes=10, width=0.25, fc_size=64).to(memory_format=torch.channels_last)
    seen = []
    net.features.conv1.register_forward_pre_hook(
        lambda module, args: seen.append((args[0].is_contiguous(memory_format=torch.channels_last), torch.is_autocast_enabled("cpu"))))
    timing.layer_times(net, torch.randn(1, 3, 224, 224), repeats=1, amp_dtype=torch.bfloat16)
    assert seen and all(cl and amp for cl, amp in seen)


def test_paired_differences_draw_each_seed_and_the_paper_line():
    import pandas as pd

    history = pd.DataFrame({"variant": ["a", "a", "a", "b", "b", "b"], "seed": [0, 1, 2] * 2, "epoch": [5] * 6,
                            "test_top1": [40.0, 41.0, 42.0, 39.0, 39.5, 41.5]})
    fig = plots.paired_differences(history, {"b vs a": ("a", "b")}, paper=2.0)
    ax = fig.axes[0]
    assert sorted(ax.collections[0].get_offsets()[:, 1]) == [0.5, 1.0, 1.5]  # a minus b, seed by seed
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [2.0]


def test_the_paper_line_runs_over_the_pairs_its_number_is_about():
    import pandas as pd

    history = pd.DataFrame({"variant": ["none", "crops", "lit"] * 2, "seed": [0, 0, 0, 1, 1, 1], "epoch": [5] * 6,
                            "test_top1": [50.0, 45.0, 44.0, 51.0, 45.5, 44.0]})
    pairs = {"crops vs none": ("none", "crops"), "lighting (C7)": ("crops", "lit")}
    ax = plots.paired_differences(history, pairs, paper={"lighting (C7)": 1.0}).axes[0]
    dashed = [line for line in ax.lines if line.get_linestyle() == "--"]
    assert len(dashed) == 1 and set(dashed[0].get_ydata()) == {1.0}
    assert 0.5 < min(dashed[0].get_xdata()) and max(dashed[0].get_xdata()) < 1.5  # over column 1 only
    every = plots.paired_differences(history, pairs, paper=1.0).axes[0]  # a number for every pair: over each
    assert len([line for line in every.lines if line.get_linestyle() == "--"]) == 2


def test_gain_by_epoch_draws_the_mean_and_the_paper_line():
    import pandas as pd

    table = pd.DataFrame({"epoch": [1, 2], "mean": [3.0, 1.5], "std": [2.0, 0.5], "n": [2, 2]})
    ax = plots.gain_by_epoch(table, paper=2.0).axes[0]
    assert ax.lines[0].get_ydata().tolist() == [3.0, 1.5]
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [2.0]


def test_augmentations_show_the_lighting_difference():
    images = data.synthetic(2, size=16).images
    fig = plots.augmentations(images, crop=12, lighting=(torch.tensor([0.2, 0.02, 0.004]), torch.eye(3)),
                              generator=torch.Generator().manual_seed(0), draws=2)
    assert fig.axes[-1].get_title() == "" and any("− orig." in ax.get_title() for ax in fig.axes)


def history_of(seeds, lrs):
    import pandas as pd

    # protocol v2's columns: running train-mode, eval-mode training subset, validation; no per-epoch test error
    return pd.DataFrame([{"variant": "a", "seed": s, "epoch": e + 1, "lr": lr, "train_loss": 2.3 - 0.1 * e,
                          "train_top1": 60.0 - e, "train_eval_top1": 50.0 - e, "val_top1": 55.0 - e}
                         for s in seeds for e, lr in enumerate(lrs)])


def texts(fig):
    """Every title, axis label and legend entry of a figure, lower-cased."""
    found = [fig._suptitle.get_text() if fig._suptitle else ""]
    for ax in fig.axes:
        found += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel()]
        found += [t.get_text() for t in ax.get_legend().get_texts()] if ax.get_legend() else []
    return " ".join(found).lower()


@pytest.mark.parametrize("draw", [plots.train_test_curves, plots.schedule])
def test_per_epoch_curves_plot_validation_and_eval_mode_training_never_test(draw):
    history = history_of([0, 1], [0.1, 0.01])
    fig = draw(history)
    words = texts(fig)
    assert "validation" in words and "training (eval mode)" in words and "test" not in words
    plotted = {tuple(line.get_ydata()) for ax in fig.axes for line in ax.lines}
    assert (55.0, 54.0) in plotted and (50.0, 49.0) in plotted  # val_top1 and train_eval_top1, not train_top1
    assert (60.0, 59.0) not in plotted


def test_curves_of_a_cli_history_say_the_training_error_is_the_running_one():
    cli = history_of([0], [0.1, 0.1]).drop(columns="train_eval_top1")  # train.main evaluates no training subset
    words = texts(plots.train_test_curves(cli))
    assert "training (train mode, running)" in words and "test" not in words


def test_one_seed_draws_no_band_and_says_so():
    one = plots.train_test_curves(history_of([0], [0.1, 0.1]))
    assert not one.axes[1].collections and "one seed" in one.axes[0].get_title()
    three = plots.train_test_curves(history_of([0, 1, 2], [0.1, 0.1]))
    assert three.axes[1].collections and "mean of 3 seeds" in three.axes[0].get_title()


def test_the_two_panel_titles_do_not_overlap():
    fig = plots.train_test_curves(history_of([0, 1, 2], [0.1, 0.1]), title="a title")
    renderer = fig.canvas.get_renderer()
    left, right = (ax.title.get_window_extent(renderer) for ax in fig.axes)
    assert left.x1 < right.x0, "the gap panel's subtitle runs into the error panel's title"


def test_schedule_title_says_whether_the_rate_dropped():
    assert "never dropped" in plots.schedule(history_of([0], [0.1, 0.1])).axes[1].get_title()
    assert "drops per run [1]" in plots.schedule(history_of([0], [0.1, 0.01])).axes[1].get_title()


def test_init_trials_draw_the_chance_loss():
    ax = plots.init_trials(history_of([0, 1], [0.1, 0.1]), chance_loss=2.303).axes[0]
    assert [line.get_ydata()[0] for line in ax.lines if line.get_linestyle() == "--"] == [2.303]


def test_a_run_that_ended_early_holds_its_last_errors_in_the_mean_curve():
    import pandas as pd

    from alexnet_book.experiment import held_to_end, last_epoch

    long, short = history_of([0], [0.1] * 4), history_of([1], [0.1] * 2)  # seed 1 ended after epoch 2
    history = pd.concat([long, short], ignore_index=True)
    held = held_to_end(history)
    assert held.groupby("seed")["epoch"].max().tolist() == [4, 4]
    assert held[(held.seed == 1) & (held.epoch > 2)]["val_top1"].tolist() == [54.0, 54.0]
    mean_at_end = held[held.epoch == 4]["val_top1"].mean()
    assert mean_at_end == last_epoch(history)["val_top1"].mean()  # the curve ends at the verdicts' numbers
    fig = plots.train_test_curves(history)
    assert "ended early holds" in fig.axes[0].get_title()
    assert "ended early" not in plots.train_test_curves(long).axes[0].get_title()


def test_paired_differences_and_gain_by_epoch_draw_the_t_interval_the_rules_read():
    """At n=3 the bar is mean ± 4.30 sd / sqrt(3) (stats.from_summary), not protocol v1's ± 2 standard errors."""
    import math

    import pandas as pd
    from matplotlib.container import ErrorbarContainer

    from alexnet_book import plots

    finals = pd.DataFrame({"variant": ["a"] * 3 + ["b"] * 3, "seed": [0, 1, 2] * 2, "epoch": 1,
                           "test_top1": [40.0, 42.0, 47.0, 38.0, 39.0, 41.0]})
    fig = plots.paired_differences(finals, {"a vs b": ("a", "b")})
    (bar,) = [c for c in fig.axes[0].containers if isinstance(c, ErrorbarContainer)]
    (low, high), = [segment[:, 1] for segment in bar.lines[2][0].get_segments()]
    gains = [2.0, 3.0, 6.0]
    sd = pd.Series(gains).std()
    assert (high - low) / 2 == pytest.approx(4.3027 * sd / math.sqrt(3), rel=1e-4)
    table = pd.DataFrame({"epoch": [1, 2], "mean": [1.0, 2.0], "std": [1.0, 1.0], "n": [3, 3]})
    fig = plots.gain_by_epoch(table)
    band = fig.axes[0].collections[0].get_paths()[0].vertices[:, 1]
    assert band.max() - 2.0 == pytest.approx(4.3027 / math.sqrt(3), rel=1e-4)
