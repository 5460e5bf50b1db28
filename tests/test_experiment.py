import math
from dataclasses import replace

import pandas as pd
import pytest
import torch
from torch import nn

from alexnet_book import data, engine, experiment
from alexnet_book.augment import Normalize, channels_last
from alexnet_book.data import Splits
from alexnet_book.optim import Recipe


def runs(rows, column="val_top1"):
    """A frame from (variant, seed, epoch, train_top1, `column`) tuples: a history (val_top1) or finals (test_top1)."""
    return pd.DataFrame(rows, columns=["variant", "seed", "epoch", "train_top1", column])


def test_epochs_to_interpolates_between_epochs():
    h = pd.DataFrame({"epoch": [1, 2, 3], "train_top1": [60.0, 20.0, 10.0]})
    assert experiment.epochs_to(h, 25.0) == pytest.approx(1 + 35 / 40)
    assert experiment.epochs_to(h, 70.0) == pytest.approx((90 - 70) / (90 - 60))  # from chance at epoch 0
    assert math.isnan(experiment.epochs_to(h, 5.0))


def test_learning_outcome_counts_runs_that_learned_and_averages_only_their_epochs():
    history = runs([("stuck", 0, 1, 90.0, 90.0), ("stuck", 0, 2, 90.0, 90.0),
                    ("learns", 0, 1, 85.0, 86.0), ("learns", 0, 2, 70.0, 72.0),
                    ("learns", 1, 1, 60.0, 62.0), ("learns", 1, 2, 50.0, 55.0)]).assign(train_loss=2.0)
    table = experiment.learning_outcome(history, 80.0, cap=2)
    assert table.index.tolist() == ["stuck", "learns"]  # the order the variants ran in
    assert table["runs that learned"].tolist() == [0, 2]
    assert math.isnan(table.loc["stuck", "epochs to 80% (mean)"])  # no run learned: no number, not the cap
    assert table.loc["learns", "epochs to 80% (mean)"] == pytest.approx((1 + 5 / 15 + 10 / 30) / 2)
    assert table.loc["learns", "final val top-1"] == pytest.approx((72.0 + 55.0) / 2)


def test_speedup_is_paired_by_seed_and_flags_runs_that_never_got_there():
    rows = []
    for seed, (fast, slow) in enumerate([([20.0], [50.0, 30.0, 20.0]), ([20.0], [50.0, 40.0, 30.0])]):
        rows += [("relu", seed, e + 1, v) for e, v in enumerate(fast)] + [("tanh", seed, e + 1, v) for e, v in enumerate(slow)]
    history = pd.DataFrame(rows, columns=["activation", "seed", "epoch", "train_top1"]).assign(recipe="r")
    reach = experiment.epochs_to_threshold(history, 25.0, cap=3)
    assert reach["reached"].tolist() == [True, True, True, False]
    table = experiment.speedup(reach)
    relu = (90 - 25) / 70
    tanh = [2 + 5 / 10, 3]  # seed 1 never reached 25%: counted as the cap
    assert table.loc["r", "ratio"] == pytest.approx(sum(t / relu for t in tanh) / 2)
    assert table.loc["r", "bound"] and table.loc["r", "n"] == 2


def test_compare_and_paired_gain_use_the_last_epoch_of_each_seed():
    history = runs([("a", 0, 1, 50, 40.0), ("a", 0, 2, 40, 30.0), ("b", 0, 1, 50, 35.0), ("b", 0, 2, 40, 28.0),
                    ("a", 1, 1, 50, 45.0), ("a", 1, 2, 40, 32.0), ("b", 1, 1, 50, 44.0), ("b", 1, 2, 40, 31.0)],
                   column="test_top1")
    table = experiment.compare(history)
    assert table.loc["a", "mean"] == 31.0 and table.loc["b", "mean"] == 29.5 and table.loc["a", "n"] == 2
    gain = experiment.paired_gain(history, worse="a", better="b")
    assert gain["per_seed"] == [2.0, 1.0] and gain["mean"] == 1.5 and gain["std"] == pytest.approx(math.sqrt(0.5))


def test_gain_by_epoch_is_the_paired_gain_after_each_epoch():
    history = runs([("a", 0, 1, 50, 40.0), ("a", 0, 2, 40, 30.0), ("b", 0, 1, 50, 35.0), ("b", 0, 2, 40, 28.0),
                    ("a", 1, 1, 50, 45.0), ("a", 1, 2, 40, 32.0), ("b", 1, 1, 50, 44.0), ("b", 1, 2, 40, 31.0)])
    table = experiment.gain_by_epoch(history, worse="a", better="b")
    assert table["epoch"].tolist() == [1, 2] and table["n"].tolist() == [2, 2]
    assert table["mean"].tolist() == [3.0, 1.5]  # epoch 1: 5 and 1 points; epoch 2: 2 and 1


def test_lr_drops_counts_each_runs_divisions():
    history = runs([("a", 0, e, 0, 0) for e in (1, 2, 3)] + [("b", 0, e, 0, 0) for e in (1, 2, 3)])
    history["lr"] = [0.1, 0.01, 0.001, 0.1, 0.1, 0.1]
    assert experiment.lr_drops(history).to_dict() == {("a", 0): 2, ("b", 0): 0}
    assert experiment.lr_drop_epochs(history).to_dict() == {("a", 0): [2, 3], ("b", 0): []}


def tiny():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(64, 10))


def splits(n_train=256, n_val=64, n_test=64) -> Splits:
    return Splits(data.synthetic(n_train, size=16), data.synthetic(n_val, size=16, seed=2),
                  data.synthetic(n_test, size=16, seed=1))


def test_train_seeds_is_repeatable_and_resumes_from_checkpoints(tmp_path):
    sets = splits()
    norm = Normalize.from_images(sets.train.images)
    options = dict(seeds=[0, 1], train_transform=norm, test_transform=norm)
    recipe = Recipe(lr=0.05, epochs=2, batch_size=32)
    first = experiment.train_seeds("tiny", tiny, recipe, sets, checkpoints=tmp_path, **options)
    history, models = first.history, first.models
    assert history["seed"].tolist() == [0, 0, 1, 1] and set(history["variant"]) == {"tiny"} and len(models) == 2
    assert {"val_top1", "train_eval_top1", "train_top1"} <= set(history.columns)
    assert not any(column.startswith("test") for column in history.columns)  # no test curve
    assert first.finals["seed"].tolist() == [0, 1] and first.finals["epoch"].tolist() == [2, 2]
    assert models[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    again = experiment.train_seeds("tiny", tiny, recipe, sets, **options)
    pd.testing.assert_frame_equal(history.drop(columns="seconds"), again.history.drop(columns="seconds"))
    pd.testing.assert_frame_equal(first.finals.drop(columns="seconds"), again.finals.drop(columns="seconds"))
    # a finished run is read back from its checkpoint, not trained again
    resumed = experiment.train_seeds("tiny", tiny, recipe, sets, checkpoints=tmp_path, **options)
    assert len(list(tmp_path.glob("tiny-seed*.pt"))) == 2
    pd.testing.assert_frame_equal(history, resumed.history)
    pd.testing.assert_frame_equal(first.finals, resumed.finals)  # the test errors of the same final weights
    assert torch.equal(models[1][0].weight, resumed.models[1][0].weight)


def test_finals_hold_the_test_errors_of_the_final_weights_and_train_eval_is_eval_mode():
    """finals' test_* are engine.evaluate over the test set with the last weights; train_eval_* are the first
    TRAIN_EVAL_IMAGES training images of one fixed draw, in eval mode: dropout off, no augmentation."""
    sets = splits()
    norm = Normalize.from_images(sets.train.images)
    def dropout_net():  # in train mode its outputs would differ from pass to pass
        return nn.Sequential(tiny(), nn.Dropout(0.9))

    trained = experiment.train_seeds("d", dropout_net, Recipe(lr=0.05, epochs=1, batch_size=32), sets, seeds=[0],
                                     train_transform=norm, test_transform=norm)
    model = trained.models[0]
    def rates(images):
        return engine.error_rates(engine.evaluate(model, experiment.eval_loader(images, norm, torch.device("cpu"))))
    final = trained.finals.iloc[0]
    assert final["test_top1"] == pytest.approx(rates(sets.test)["top1"])
    subset = sets.train.subset(experiment.TRAIN_EVAL_IMAGES, experiment.TRAIN_EVAL_SEED)
    assert final["train_eval_top1"] == pytest.approx(rates(subset)["top1"])
    assert final["val_top1"] == pytest.approx(rates(sets.val)["top1"])


def test_train_eval_images_names_the_size_of_the_eval_mode_training_subset():
    """A profile may evaluate fewer training images per epoch (smoke's 200); cifar keeps the default, 2,000."""
    from alexnet_book.profiles import PROFILES

    assert PROFILES["cifar"].train_eval_images == experiment.TRAIN_EVAL_IMAGES == 2_000
    assert PROFILES["smoke"].train_eval_images < min(b.train_size for b in PROFILES["smoke"].budgets.values() if b.seeds != (0,))
    sets = splits()
    norm = Normalize.from_images(sets.train.images)
    trained = experiment.train_seeds("t", tiny, Recipe(lr=0.05, epochs=1, batch_size=32), sets, seeds=[0],
                                     train_transform=norm, test_transform=norm, train_eval_images=50)
    subset = sets.train.subset(50, experiment.TRAIN_EVAL_SEED)
    counts = engine.evaluate(trained.models[0], experiment.eval_loader(subset, norm, torch.device("cpu")))
    assert len(subset) == 50 and trained.finals.iloc[0]["train_eval_top1"] == pytest.approx(engine.error_rates(counts)["top1"])


class Sealed:
    """An ImageSet that raises when anything reads it, unless `experiment.final_test_errors` (the final evaluation
    of a run) is under way."""

    open = False

    def __init__(self, images):
        self._images = images

    def __getattr__(self, name):
        if not Sealed.open:
            raise AssertionError(f"the test set was read ({name}) outside the final evaluation")
        return getattr(self._images, name)

    def __len__(self):
        if not Sealed.open:
            raise AssertionError("the test set was read (len) outside the final evaluation")
        return len(self._images)


def test_nothing_but_the_final_evaluation_reads_the_test_set(monkeypatch, tmp_path):
    """The proof of issue 32's first point: a run with a plateau schedule and an early end (which read the
    validation error every epoch) trains to the end with its test set sealed; the set is read only by the
    final evaluation, once per seed, after that seed's training has ended."""
    sets = splits()
    sealed = Splits(sets.train, sets.val, Sealed(sets.test))
    events, final_evaluation, fit = [], experiment.final_test_errors, experiment.fit

    def unsealed(model, test, *args, **kwargs):
        events.append("test")
        Sealed.open = True
        try:
            return final_evaluation(model, test, *args, **kwargs)
        finally:
            Sealed.open = False

    def logged_fit(*args, **kwargs):
        history = fit(*args, **kwargs)
        events.append("fit")
        return history

    monkeypatch.setattr(experiment, "final_test_errors", unsealed)
    monkeypatch.setattr(experiment, "fit", logged_fit)
    norm = Normalize.from_images(sets.train.images)
    recipe = Recipe(lr=0.05, epochs=6, batch_size=32, plateau_drops=2, patience=0)
    trained = experiment.train_seeds("sealed", tiny, recipe, sealed, seeds=[0, 1], train_transform=norm,
                                     test_transform=norm, checkpoints=tmp_path)
    assert events == ["fit", "test", "fit", "test"]
    assert trained.finals["test_top1"].notna().all() and len(trained.finals) == 2
    unsealed_run = experiment.train_seeds("sealed", tiny, recipe, sets, seeds=[0, 1], train_transform=norm,
                                          test_transform=norm)
    pd.testing.assert_frame_equal(trained.history.drop(columns="seconds"), unsealed_run.history.drop(columns="seconds"))
    with pytest.raises(AssertionError, match="outside the final evaluation"):
        len(sealed.test)  # the seal holds: the run passed because nothing else read it


def test_a_sweep_never_reads_the_test_set():
    sets = splits(128)
    sealed = Splits(sets.train, sets.val, Sealed(sets.test))
    norm = Normalize.from_images(sets.train.images)
    sweep = experiment.sweep_lr("tiny", tiny, Recipe(lr=0, epochs=1, batch_size=32), [0.05], sealed,
                                train_transform=norm, test_transform=norm, extend=0)
    assert sweep["val_top1"].tolist()[0] < 100


def test_a_longer_budget_continues_the_finished_runs_and_equals_a_straight_run(tmp_path):
    sets = splits()
    norm = Normalize.from_images(sets.train.images)
    options = dict(seeds=[0], train_transform=norm, test_transform=norm)
    short, longer = Recipe(lr=0.05, epochs=2, batch_size=32), Recipe(lr=0.05, epochs=3, batch_size=32)
    experiment.train_seeds("tiny", tiny, short, sets, checkpoints=tmp_path / "extended", **options)
    extended = experiment.train_seeds("tiny", tiny, longer, sets, checkpoints=tmp_path / "extended", **options)
    straight = experiment.train_seeds("tiny", tiny, longer, sets, **options)
    assert len(list((tmp_path / "extended").glob("*.pt"))) == 1  # one run, extended in place
    pd.testing.assert_frame_equal(extended.history.drop(columns="seconds"), straight.history.drop(columns="seconds"))
    assert torch.equal(extended.models[0][0].weight, straight.models[0][0].weight)
    with pytest.raises(engine.CheckpointMismatch, match="holds 3 epochs, more than the 2 asked for"):
        experiment.train_seeds("tiny", tiny, short, sets, checkpoints=tmp_path / "extended", **options)


def test_sweep_scores_a_diverging_rate_as_100_and_best_lr_picks_the_lowest_error():
    sets = splits(128)
    norm = Normalize.from_images(sets.train.images)
    sweep = experiment.sweep_lr("tiny", tiny, Recipe(lr=0, epochs=1, batch_size=32), [0.05, 1e12], sets,
                                train_transform=norm, test_transform=norm, extend=0)
    assert sweep["val_top1"].tolist() == [pytest.approx(sweep["val_top1"][0]), 100.0]
    assert sweep["val_top1"][0] < 100.0
    assert experiment.best_lr(sweep) == 0.05


def test_channels_last_wraps_a_transform():
    x = torch.randint(0, 256, (2, 3, 8, 8), dtype=torch.uint8)
    out = channels_last(None)(x, None)
    assert out.dtype == torch.float32 and out.is_contiguous(memory_format=torch.channels_last)


def test_ten_patch_errors_centre_and_ten_patches():
    """The centre patch's error and that of the ten patches' averaged softmax, each patch cut by hand:
    corners, centre and their mirror images, whatever order torchvision's ten_crop yields them in."""
    torch.manual_seed(0)
    test = data.synthetic(40, size=12)
    norm = Normalize.from_images(test.images)
    model = tiny()
    errors = experiment.ten_patch_errors(model, test, norm, 10, batch_size=16)
    x = norm(test.images)
    windows = [x[..., r : r + 10, c : c + 10] for r, c in [(0, 0), (0, 2), (2, 0), (2, 2), (1, 1)]]
    with torch.no_grad():
        probs = torch.stack([model(p).softmax(-1) for p in windows + [w.flip(-1) for w in windows]])
    centre = 100 * (probs[4].argmax(-1) != test.labels).float().mean().item()
    ten = 100 * (probs.mean(0).argmax(-1) != test.labels).float().mean().item()
    assert errors["centre_top1"] == pytest.approx(centre) and errors["ten_top1"] == pytest.approx(ten)
    assert 0 <= errors["ten_top5"] <= errors["ten_top1"]


def test_initial_model_is_where_train_seeds_started():
    sets = splits(64)
    norm = Normalize.from_images(sets.train.images)
    (still,) = experiment.train_seeds("t", tiny, Recipe(lr=0.0, epochs=1, batch_size=32), sets, seeds=[3],
                                      train_transform=norm, test_transform=norm).models
    (moved,) = experiment.train_seeds("t", tiny, Recipe(lr=0.1, epochs=1, batch_size=32), sets, seeds=[3],
                                      train_transform=norm, test_transform=norm).models
    start = experiment.initial_model(tiny, 3)
    assert all(torch.equal(a, b) for a, b in zip(still.parameters(), start.parameters()))
    assert not torch.equal(moved[0].weight, start[0].weight)


def test_sweep_extends_the_grid_past_an_edge_that_wins(monkeypatch):
    tried = []

    def fake_point(name, make_model, recipe, train, seed, options):
        tried.append(recipe.lr)
        return (math.log10(recipe.lr) + 2) ** 2  # best at 0.01

    monkeypatch.setattr(experiment, "_sweep_point", fake_point)
    sweep = experiment.sweep_lr("x", None, Recipe(lr=0, epochs=1), [0.1, 0.3, 1.0], None)
    assert tried[:3] == [0.1, 0.3, 1.0] and len(tried) == 5  # two extensions down by the grid's factor of 3
    assert tried[3] == pytest.approx(0.1 / 3) and tried[4] == pytest.approx(0.1 / 9)
    assert sweep["lr"].is_monotonic_increasing and experiment.best_lr(sweep) == pytest.approx(0.1 / 9)
    tried.clear()
    experiment.sweep_lr("x", None, Recipe(lr=0, epochs=1), [0.003, 0.01, 0.03], None)
    assert tried == [0.003, 0.01, 0.03]  # an inner minimum needs no extension


def test_describe_ratio_says_when_it_is_a_bound():
    ratios = pd.DataFrame({"ratio": [1.45, 1.5], "ratio_std": [0.07, 0.1], "n": [3, 3], "bound": [True, False]},
                          index=["paper", "pytorch"])
    assert experiment.describe_ratio(ratios.loc["paper"]) == "at least 1.45x ± 0.07"
    assert experiment.describe_ratio(ratios.loc["pytorch"]) == "1.50x ± 0.10"


def test_ensemble_averages_softmax_outputs():
    torch.manual_seed(0)
    test = data.synthetic(64, size=16)
    norm = Normalize.from_images(test.images)
    models = [tiny(), tiny()]
    errors = experiment.ensemble_errors(models, test, norm, batch_size=20)
    x = channels_last(norm)(test.images, None)
    with torch.no_grad():
        probs = torch.stack([m.eval()(x).softmax(-1) for m in models])
    assert errors["single"] == pytest.approx([100 * (p.argmax(-1) != test.labels).float().mean().item() for p in probs])
    assert errors["ensemble"] == pytest.approx(100 * (probs.mean(0).argmax(-1) != test.labels).float().mean().item())

def test_speedup_rows_become_the_stats_a_rule_judges_and_a_sentence():
    row = pd.Series({"relu_epochs": 2.0, "tanh_epochs": 6.0, "ratio": 3.0, "ratio_std": 0.5, "n": 3, "bound": True})
    assert experiment.ratio_spread(row) == {"mean": 3.0, "std": 0.5, "n": 3}
    said = experiment.describe_speedup("pytorch", row)
    assert "tanh in more than 6.00" in said and "at least 3.00x ± 0.50" in said
    assert "more than" not in experiment.describe_speedup("pytorch", row.copy().replace({True: False}))


def test_convergence_ratio_pairs_the_seeds():
    converged = pd.DataFrame({"variant": ["a", "a", "b", "b"], "seed": [0, 1, 0, 1], "epochs": [4, 6, 2, 2]})
    ratio = experiment.convergence_ratio(converged, "a", baseline="b")
    assert ratio["mean"] == pytest.approx(2.5) and ratio["n"] == 2


def test_first_to_learn_is_the_first_variant_that_learned_in_every_run():
    outcome = pd.DataFrame({"runs that learned": [0, 2, 3, 3]}, index=["paper", "bias 0", "caffe", "he"])
    assert experiment.first_to_learn(outcome, runs=3) == "caffe"
    assert experiment.first_to_learn(outcome, runs=4) is None
    said = experiment.describe_init_trials(outcome, "caffe", epochs=8, steps=600)
    assert "the paper's init had not started learning" in said and said.endswith("every run: caffe")


def test_describe_schedule_says_when_the_rate_never_dropped():
    assert "never dropped in 14 epochs" in experiment.describe_schedule(pd.Series({"paper": [], "torch": []}), 14)
    assert "dropped in 1 of 2 runs" in experiment.describe_schedule(pd.Series({"paper": [5], "torch": []}), 14)


def test_train_seeds_wants_the_test_time_transform_beside_the_training_one():
    sets = splits(64)
    norm = Normalize.from_images(sets.train.images)
    with pytest.raises(ValueError, match="pass test_transform too"):  # else validation would see raw pixels
        experiment.train_seeds("t", tiny, Recipe(lr=0.1, epochs=1, batch_size=32), sets, seeds=[0], train_transform=norm)


def _fake_runs(speed):
    """A stand-in train_seeds whose running training error falls 10 points per epoch times speed(lr, seed) from
    90%, honouring the recipe's cap and early ends, and counting the epochs it trains."""
    trained = []

    def train_seeds(name, make_model, recipe, sets, *, seeds, **options):
        (seed,) = seeds
        rows = []
        while len(rows) < recipe.epochs and not recipe.finished(rows):
            rows.append({"epoch": len(rows) + 1, "lr": recipe.lr, "val_top1": 50.0,
                         "train_top1": max(0.0, 90 - 10 * speed(recipe.lr, seed) * (len(rows) + 1))})
        trained.append((recipe.lr, seed, len(rows)))
        return experiment.Trained(pd.DataFrame(rows), pd.DataFrame(), [])

    return train_seeds, trained


def test_sweep_to_line_picks_the_rate_whose_slowest_seed_crosses_first_and_pruning_changes_nothing(monkeypatch):
    speeds = {0.1: (1.0, 0.5), 0.03: (0.8, 0.7), 0.01: (0.3, 0.3)}  # 0.1's seed 1 is slow: 0.03 wins on its slowest seed
    fake, trained = _fake_runs(lambda lr, seed: speeds[lr][seed])
    monkeypatch.setattr(experiment, "train_seeds", fake)
    sets = Splits(None, None, None)
    sweep = experiment.sweep_to_line("x", None, Recipe(lr=0, epochs=50), [0.01, 0.03, 0.1], sets, seeds=(0, 1),
                                     line=25.0, extend=0)
    assert sweep.loc[sweep["chosen"], "lr"].unique().tolist() == [0.03]
    no_pruning = {lr: max(65 / (10 * s) for s in pair) for lr, pair in speeds.items()}  # epochs from 90% to 25%
    assert min(no_pruning, key=no_pruning.get) == 0.03
    by_run = {(lr, seed): epochs for lr, seed, epochs in trained}
    assert by_run[0.1, 0] == 7 and by_run[0.1, 1] == 13  # the first rate runs to the line, capped at 50
    assert by_run[0.03, 0] == 9 and by_run[0.03, 1] == 10  # capped at 13 (0.1's slowest seed), crossing before it
    assert by_run[0.01, 0] == math.ceil(65 / 7)  # the slow rate gives up at the best's slowest seed (65/7 epochs)
    assert (0.01, 1) not in by_run  # and its other seed never runs


def test_sweep_to_line_grows_the_grid_past_a_winning_end(monkeypatch):
    fake, trained = _fake_runs(lambda lr, seed: min(lr, 0.1) * 3)  # faster up to 0.1, flat beyond
    monkeypatch.setattr(experiment, "train_seeds", fake)
    sweep = experiment.sweep_to_line("x", None, Recipe(lr=0, epochs=50), [0.01, 0.1], Splits(None, None, None),
                                     seeds=(0, 1), line=25.0, extend=2)
    assert sorted(sweep["lr"].unique()) == pytest.approx([0.01, 0.1, 1.0])  # 1.0 ties 0.1 at best: the grid stops
    assert sweep.loc[sweep["chosen"], "lr"].unique().tolist() == [0.1]


def test_the_chosen_rates_sweep_runs_continue_to_a_lower_line_as_if_trained_at_once(tmp_path):
    sets = splits()
    norm = Normalize.from_images(sets.train.images)
    options = dict(train_transform=norm, test_transform=norm, checkpoints=tmp_path)
    recipe = Recipe(lr=0.05, epochs=4, batch_size=32, plateau_drops=0)
    sweep = experiment.sweep_to_line("tiny", tiny, recipe, [0.05], sets, seeds=(0,), line=80.0, extend=0, **options)
    assert sweep["epochs_to_line"].notna().all()
    chosen = sweep.loc[sweep["chosen"], "lr"].iloc[0]  # as notebook 02 reads it: a numpy float, not a float
    lower = replace(recipe, lr=chosen, stop_at_train_top1=0.0)  # never reached: the run goes on to its cap
    continued = experiment.train_seeds(experiment.run_name("tiny", 0.05), tiny, lower, sets, seeds=[0], **options)
    straight = experiment.train_seeds("straight", tiny, lower, sets, seeds=[0], train_transform=norm, test_transform=norm)
    assert len(list(tmp_path.glob("*.pt"))) == 1 and len(continued.history) == 4
    pd.testing.assert_frame_equal(continued.history.drop(columns=["seconds", "variant"]),
                                  straight.history.drop(columns=["seconds", "variant"]))


def test_sweep_to_line_where_no_run_crosses_picks_the_lowest_final_training_error(monkeypatch):
    fake, _ = _fake_runs(lambda lr, seed: {0.1: 0.2, 0.03: 0.5, 0.01: 0.3}[lr])  # 2 epochs: nobody reaches 25%
    monkeypatch.setattr(experiment, "train_seeds", fake)
    sweep = experiment.sweep_to_line("x", None, Recipe(lr=0, epochs=2), [0.01, 0.03, 0.1], Splits(None, None, None),
                                     seeds=(0, 1), line=25.0, extend=0)
    assert sweep["epochs_to_line"].eq(math.inf).all() and sweep["cap"].eq(2).all()
    assert sweep.loc[sweep["chosen"], "lr"].unique().tolist() == [0.03]
