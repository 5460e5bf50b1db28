import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from alexnet_book import data
from alexnet_book.augment import Normalize
from alexnet_book.engine import FitOptions, NonFiniteLossError, error_rates, evaluate, fit, topk_errors, train_epoch
from alexnet_book.loaders import TensorLoader
from alexnet_book.backend import seed_everything


QUIET = FitOptions(progress=False)


def small_net(dropout=0.0):
    return nn.Sequential(nn.Conv2d(3, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(3, 2), nn.Flatten(),
                         nn.Dropout(dropout), nn.Linear(8 * 15 * 15, 10))


def loaders(n_train=256, n_val=128, seed=0):
    """A training loader and a validation loader (other synthetic images, in order)."""
    train, val = data.synthetic(n_train, seed=seed), data.synthetic(n_val, seed=seed + 1)
    norm = Normalize(*data.channel_stats(train.images))
    return (TensorLoader(train, 32, shuffle=True, seed=seed, transform=norm),
            TensorLoader(val, 64, transform=norm))


def test_topk_errors_counts_misses():
    logits = torch.tensor([[5.0, 4, 3, 2, 1, 0], [0, 1, 2, 3, 4, 5], [0, 1, 2, 3, 4, 5]])
    labels = torch.tensor([0, 0, 3])  # hit top-1; miss even top-5; miss top-1 but within top-5
    assert topk_errors(logits, labels).tolist() == [2, 1]
    assert topk_errors(logits[:, :3], torch.tensor([0, 0, 2])).tolist() == [1, 0]  # fewer classes than k


def test_evaluate_counts_and_ten_patches():
    """Plain: summed loss and misses; ten_crop: the centre patch and the averaged softmax of the ten
    patches (corners, centre, their mirrors), cut by hand here."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 5 * 5, 10))
    images, labels = torch.randn(12, 3, 9, 9), torch.randint(10, (12,))
    batches = [(images[:5], labels[:5]), (images[5:], labels[5:])]
    windows = [images[..., r : r + 5, c : c + 5] for r, c in [(0, 0), (0, 4), (4, 0), (4, 4), (2, 2)]]
    with torch.no_grad():
        probs = torch.stack([model(w).softmax(-1) for w in windows + [w.flip(-1) for w in windows]])
        plain = evaluate(model, [(windows[4], labels)])
    assert plain["images"] == 12 and plain["top1"] == (model(windows[4]).argmax(-1) != labels).sum().item()
    assert plain["loss"] == pytest.approx(F.cross_entropy(model(windows[4]), labels, reduction="sum").item(), rel=1e-5)
    counts = evaluate(model, batches, ten_crop=5)
    assert counts["images"] == 12
    assert counts["centre_top1"] == (probs[4].argmax(-1) != labels).sum().item()
    assert counts["ten_top1"] == (probs.mean(0).argmax(-1) != labels).sum().item()
    rates = error_rates(counts)
    assert rates["ten_top1"] == pytest.approx(100 * counts["ten_top1"] / 12) and "images" not in rates


def test_fit_learns_synthetic_shapes_and_returns_history():
    seed_everything(0)
    model, (train, val) = small_net(), loaders(512)
    before = error_rates(evaluate(model, val))
    history = fit(model, train, evaluate={"val": val}, optimizer=torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9),
                  epochs=8, options=QUIET)
    assert list(history.columns) == ["epoch", "lr", "train_loss", "train_top1", "train_top5",
                                     "val_loss", "val_top1", "val_top5", "seconds"]
    assert history["epoch"].tolist() == list(range(1, 9))
    assert before["top1"] > 70  # chance is 90% error
    assert history["val_top1"].iloc[-1] < 50  # well below chance
    assert history["train_loss"].iloc[-1] < 0.5 * history["train_loss"].iloc[0]


def test_scheduler_steps_once_per_epoch():
    model, (train, val) = small_net(), loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.1)
    history = fit(model, train, evaluate={"val": val}, optimizer=optimizer, scheduler=scheduler, epochs=3, options=QUIET)
    assert history["lr"].tolist() == pytest.approx([0.1, 0.01, 0.001])


def run(epochs, checkpoint=None):
    seed_everything(0)
    model, (train, val) = small_net(dropout=0.5), loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    history = fit(model, train, evaluate={"val": val, "train_eval": val}, optimizer=optimizer, scheduler=scheduler, epochs=epochs,
                  options=FitOptions(checkpoint=checkpoint, progress=False))
    return model, history


def test_resumed_run_is_bit_identical_to_an_uninterrupted_one(tmp_path):
    straight, straight_history = run(4)
    ckpt = tmp_path / "run.pt"
    run(2, ckpt)  # "interrupted" after two epochs: its checkpoint holds epoch 2
    seed_everything(123)  # a different process state must not matter
    resumed, resumed_history = run(4, ckpt)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    assert resumed_history.drop(columns="seconds").equals(straight_history.drop(columns="seconds"))


def test_finished_checkpoint_trains_nothing_more(tmp_path):
    ckpt = tmp_path / "run.pt"
    model, history = run(2, ckpt)
    again, again_history = run(2, ckpt)
    assert len(again_history) == 2 and torch.equal(model[0].weight, again[0].weight)


class NaNAfter(nn.Module):
    """Returns NaN logits from the given forward call on."""

    def __init__(self, step):
        super().__init__()
        self.net, self.calls, self.step = small_net(), 0, step

    def forward(self, x):
        self.calls += 1
        out = self.net(x)
        return out * math.nan if self.calls > self.step else out


def test_nan_loss_stops_with_the_step(tmp_path):
    model, (train, _) = NaNAfter(step=5), loaders()
    with pytest.raises(NonFiniteLossError, match="loss became nan at epoch 0, step 5"):
        fit(model, train, optimizer=torch.optim.SGD(model.parameters(), lr=0.01), epochs=2,
            options=FitOptions(checkpoint=tmp_path / "ckpt.pt", progress=False))
    assert not (tmp_path / "ckpt.pt").exists()  # nothing was saved from the broken epoch


def test_nan_guard_checks_every_block_of_steps():
    model, (train, _) = NaNAfter(step=3), loaders()
    with pytest.raises(NonFiniteLossError, match="step 3"):
        train_epoch(model, train, torch.optim.SGD(model.parameters(), lr=0.01), 0, check_every=2, progress=False)


def test_a_mid_epoch_checkpoint_resumes_only_with_its_world_size():
    from alexnet_book.checkpoint import CheckpointMismatch, check_world_size

    taken_by_two = {"partial": {"step": 3}, "loader": [{"step": 3}, {"step": 3}]}
    with pytest.raises(CheckpointMismatch, match="middle of an epoch by 2 process"):
        check_world_size(taken_by_two)  # this test is one process
    check_world_size({**taken_by_two, "partial": None})  # an epoch's end resumes with any number
    check_world_size({"partial": {"step": 3}, "loader": {"step": 3}})  # one process, as here


def test_a_cpu_run_saves_no_cuda_generator_state():
    from alexnet_book.checkpoint import rng_state

    assert set(rng_state(torch.device("cpu"))) == {"cpu"}


def test_bf16_autocast_falls_back_to_fp32_on_an_mps_without_it(monkeypatch):
    import contextlib

    from alexnet_book import backend

    monkeypatch.setattr(backend, "_mps_has_bf16", lambda: False)
    with pytest.warns(UserWarning, match="macOS 14"):
        context = backend.autocast(torch.device("mps"), torch.bfloat16)
    assert isinstance(context, contextlib.nullcontext)
    assert isinstance(backend.autocast(torch.device("cpu"), torch.bfloat16), torch.autocast)


def test_running_sums_avoid_float64_on_mps_which_has_none():
    from alexnet_book.engine import sum_dtype

    assert sum_dtype(torch.device("mps")) == torch.float32
    assert sum_dtype(torch.device("cpu")) == sum_dtype(torch.device("cuda")) == torch.float64


def test_fit_ends_when_finished_says_so_and_a_rerun_trains_nothing_more(tmp_path):
    ckpt = tmp_path / "run.pt"
    calls = []

    def finished(history):
        calls.append(len(history))
        return len(history) == 2  # e.g. Recipe.finished: the schedule is spent

    seed_everything(0)
    model, (train, val) = small_net(), loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    options = FitOptions(checkpoint=ckpt, finished=finished, progress=False)
    history = fit(model, train, evaluate={"val": val}, optimizer=optimizer, epochs=5, options=options)
    assert history["epoch"].tolist() == [1, 2] and calls == [1, 2]
    weights = model[0].weight.detach().clone()
    again = fit(model, train, evaluate={"val": val}, optimizer=optimizer, epochs=5, options=options)
    assert again["epoch"].tolist() == [1, 2] and torch.equal(model[0].weight, weights)


def test_fit_takes_no_test_set_and_a_plateau_schedule_needs_validation():
    model, (train, val) = small_net(), loaders()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ValueError, match="fit evaluates no test set"):
        fit(model, train, evaluate={"val": val, "test": val}, optimizer=optimizer, epochs=1, options=QUIET)
    plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer)
    with pytest.raises(ValueError, match="steps on the validation error"):
        fit(model, train, evaluate={"train_eval": val}, optimizer=optimizer, scheduler=plateau, epochs=1, options=QUIET)


def plateau_rates(errors, lr=0.05, patience=1):
    """The learning rate of each epoch under ReduceLROnPlateau stepped on `errors`, replayed without a net."""
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=patience)
    rates = []
    for error in errors:
        rates.append(optimizer.param_groups[0]["lr"])
        scheduler.step(error)
    return rates


def test_the_plateau_schedule_steps_on_the_validation_error_only():
    """The "val" images carry wrong labels (each shifted by one class): the better the net learns, the worse
    its validation error, which stalls at once, so the rate drops; on its own training images (train_eval),
    which keep improving, the schedule would not have dropped. The rates fit used are those a plateau
    schedule fed the val column gives, and not those the train_eval column gives."""
    seed_everything(0)
    train_set = data.synthetic(512, seed=0)
    norm = Normalize(*data.channel_stats(train_set.images))
    shifted = data.ImageSet(train_set.images, (train_set.labels + 1) % 10, train_set.classes)
    evaluate = {"val": TensorLoader(shifted, 64, transform=norm), "train_eval": TensorLoader(train_set, 64, transform=norm)}
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.02, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=1)
    history = fit(model, TensorLoader(train_set, 32, shuffle=True, transform=norm), evaluate=evaluate,
                  optimizer=optimizer, scheduler=scheduler, epochs=6, options=QUIET)
    assert history["lr"].tolist() == pytest.approx(plateau_rates(history["val_top1"], lr=0.02))
    assert history["lr"].iloc[-1] < 0.02  # the stalled validation curve made it drop
    assert plateau_rates(history["train_eval_top1"], lr=0.02) != pytest.approx(history["lr"].tolist())
