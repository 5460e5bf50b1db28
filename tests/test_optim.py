from __future__ import annotations

import copy
import math

import pytest
import torch
from torch import nn

from alexnet_book.optim import PaperSGD, compare_after_drop

LR, MOMENTUM, WD = 0.05, 0.9, 5e-4


def tiny_model(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def batch(step: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(100 + step)
    return torch.randn(16, 4, generator=g), torch.randint(0, 3, (16,), generator=g)


def train(model: nn.Module, optimizer, steps: range, scheduler=None, drop_at: int | None = None) -> None:
    for step in steps:
        if step == drop_at:
            for group in optimizer.param_groups:
                group["lr"] /= 10
        x, y = batch(step)
        optimizer.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()


def max_difference(a: nn.Module, b: nn.Module) -> float:
    return max((p - q).abs().max().item() for p, q in zip(a.parameters(), b.parameters()))


def paper_and_torch(drop_at: int | None, steps: int) -> float:
    paper, reference = tiny_model(), tiny_model()
    train(paper, PaperSGD(paper.parameters(), LR, MOMENTUM, WD), range(steps), drop_at=drop_at)
    sgd = torch.optim.SGD(reference.parameters(), LR, momentum=MOMENTUM, weight_decay=WD)
    train(reference, sgd, range(steps), drop_at=drop_at)
    return max_difference(paper, reference)


def test_equals_torch_sgd_while_lr_is_constant():
    assert paper_and_torch(drop_at=None, steps=20) < 1e-6


def test_differs_from_torch_sgd_after_a_drop():
    # Right after the drop the paper's step still carries momentum * old-rate velocity.
    assert paper_and_torch(drop_at=20, steps=20) < 1e-6
    assert paper_and_torch(drop_at=20, steps=23) > 1e-3


def test_first_velocity_is_minus_lr_times_grad_plus_decay():
    model = tiny_model()
    optimizer = PaperSGD(model.parameters(), LR, MOMENTUM, WD)
    x, y = batch(0)
    nn.functional.cross_entropy(model(x), y).backward()
    before = [(p.detach().clone(), p.grad.clone()) for p in model.parameters()]
    optimizer.step()
    for p, (w, grad) in zip(model.parameters(), before):
        velocity = optimizer.state[p]["velocity"]
        torch.testing.assert_close(velocity, -LR * (grad + WD * w), rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(p.detach(), w + velocity, rtol=0, atol=0)


def reference_run(model: nn.Module, lrs: list[list[float]], steps: int) -> None:
    """The paper's formula written out, one learning rate per parameter per step."""
    velocities = [torch.zeros_like(p) for p in model.parameters()]
    for step in range(steps):
        x, y = batch(step)
        model.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        with torch.no_grad():
            for p, v, lr in zip(model.parameters(), velocities, lrs[step]):
                v.copy_(MOMENTUM * v - WD * lr * p - lr * p.grad)
                p.add_(v)


def test_follows_step_lr_with_param_groups():
    model, reference = tiny_model(), tiny_model()
    first, second = list(model[0].parameters()), list(model[2].parameters())
    optimizer = PaperSGD([{"params": first}, {"params": second, "lr": 2 * LR}], LR, MOMENTUM, WD)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=4, gamma=0.1)
    train(model, optimizer, range(10), scheduler)
    lrs = [[LR * 0.1 ** (s // 4)] * 2 + [2 * LR * 0.1 ** (s // 4)] * 2 for s in range(10)]
    reference_run(reference, lrs, 10)
    assert max_difference(model, reference) < 1e-6


def test_state_dict_round_trip_resumes_exactly():
    whole = tiny_model()
    optimizer = PaperSGD(whole.parameters(), LR, MOMENTUM, WD)
    train(whole, optimizer, range(5))
    saved = copy.deepcopy((optimizer.state_dict(), whole.state_dict()))  # as torch.save would
    assert "velocity" in saved[0]["state"][0]
    train(whole, optimizer, range(5, 10))

    resumed = tiny_model(seed=1)
    resumed.load_state_dict(saved[1])
    fresh = PaperSGD(resumed.parameters(), lr=1.0)
    fresh.load_state_dict(saved[0])
    train(resumed, fresh, range(5, 10))
    assert max_difference(whole, resumed) == 0


def test_closure_and_sparse_gradients():
    model = tiny_model()
    optimizer = PaperSGD(model.parameters(), LR)
    x, y = batch(0)

    def closure():
        optimizer.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    assert math.isfinite(optimizer.step(closure).item())
    embedding = nn.Embedding(5, 2, sparse=True)
    embedding(torch.tensor([1, 2])).sum().backward()
    with pytest.raises(RuntimeError, match="sparse"):
        PaperSGD(embedding.parameters(), LR).step()


def test_compare_after_drop_coincides_then_parts():
    table = compare_after_drop(steps=30, drop_at=15)
    assert list(table.columns) == ["step", "lr", "paper_update", "torch_update", "distance"]
    assert len(table) == 30 and table.lr.iloc[14] == pytest.approx(0.1) and table.lr.iloc[15] == pytest.approx(0.01)
    before, after = table.iloc[:15], table.iloc[15:]
    torch.testing.assert_close(torch.tensor(before.paper_update.values), torch.tensor(before.torch_update.values),
                               rtol=1e-5, atol=0)
    assert before.distance.max() < 1e-10
    # First step after the drop: about factor times larger (momentum * old-rate velocity).
    assert after.paper_update.iloc[0] > 5 * after.torch_update.iloc[0]
    assert after.distance.iloc[-1] > 0.1


def rows(rates, errors, train=50.0):
    """fit's history rows: `errors` the validation error, which the schedule reads."""
    return [{"epoch": e + 1, "lr": lr, "train_top1": train, "val_top1": err} for e, (lr, err) in enumerate(zip(rates, errors))]


def test_a_plateau_run_is_finished_once_its_last_rate_goes_patience_plus_one_epochs_without_a_new_best():
    from alexnet_book.optim import Recipe

    recipe = Recipe(lr=0.1, epochs=50, plateau_drops=2, patience=2)
    two_drops = [0.1, 0.1, 0.01, 0.01, 0.001, 0.001, 0.001]
    assert not recipe.finished(rows(two_drops[:6], [50, 40, 35, 33, 32, 32.5]))  # 1 epoch since the best
    assert not recipe.finished(rows(two_drops, [50, 40, 35, 33, 32, 32.5, 32.1]))  # 2: the scheduler waits too
    assert recipe.finished(rows(two_drops + [0.001], [50, 40, 35, 33, 32, 32.5, 32.1, 32.3]))  # 3 > patience
    assert not recipe.finished(rows(two_drops + [0.001], [50, 40, 35, 33, 32, 32.5, 32.1, 31.9]))  # a new best
    one_drop = [0.1, 0.1, 0.01, 0.01, 0.01, 0.01]
    assert not recipe.finished(rows(one_drop, [50, 40, 35, 36, 37, 38]))  # one drop still to come
    # the best came before the last drop: the run needs patience + 1 epochs at the last rate all the same
    assert not recipe.finished(rows([0.1, 0.01, 0.001, 0.001], [30, 35, 36, 36]))
    assert recipe.finished(rows([0.1, 0.01, 0.001, 0.001, 0.001], [30, 35, 36, 36, 36]))
    assert not Recipe(lr=0.1, epochs=50, plateau_drops=0).finished(rows([0.1] * 9, [30] + [40] * 8))  # a constant rate never ends early


def test_recipes_anneal_three_times_by_default_on_the_validation_error():
    from alexnet_book.optim import PAPER_DROPS, Recipe

    recipe = Recipe(lr=0.01, epochs=50)
    assert recipe.plateau_drops == PAPER_DROPS == 3  # section 5: "reduced three times prior to termination"
    scheduler = recipe.scheduler(recipe.optimizer(torch.nn.Linear(2, 2)))
    assert scheduler.min_lrs[0] == pytest.approx(1e-5, rel=1e-5)  # three divisions by 10, no fourth
    three = [0.01, 0.01, 0.001, 0.001, 0.0001, 0.0001, 0.00001, 0.00001, 0.00001, 0.00001]
    history = rows(three, [50, 40, 39, 38, 37, 36, 35, 36, 36, 36])
    assert recipe.finished(history) and not recipe.finished(history[:-1])  # 3 epochs after the best, not 2
    assert not recipe.finished([{**row, "val_top1": 60 - row["epoch"]} for row in history])  # validation still improving


def test_a_run_is_finished_at_its_training_error_target():
    from alexnet_book.optim import Recipe

    recipe = Recipe(lr=0.1, epochs=50, stop_at_train_top1=25.0)
    assert not recipe.finished([]) and not recipe.finished(rows([0.1], [60], train=25.1))
    assert recipe.finished(rows([0.1, 0.1], [60, 50], train=25.0))


def test_layer_weight_decay_decays_each_named_layer_at_its_own_rate_and_no_bias():
    """cuda-convnet's -11pct config: no decay on conv1/conv2, 0.004 on the rest; one SGD step from zero gradient
    moves each weight by exactly -lr * decay * w, and leaves every bias where it was."""
    import torch
    from alexnet_book.cifar_nets import ConvLocal
    from alexnet_book.optim import Recipe

    model = ConvLocal(lrn=False)
    recipe = Recipe(lr=0.5, epochs=1, layer_weight_decay=ConvLocal.CUDA_CONVNET_WEIGHT_DECAY)
    optimizer = recipe.optimizer(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    decays = dict(ConvLocal.CUDA_CONVNET_WEIGHT_DECAY)
    for name, p in model.named_parameters():
        layer, kind = name.split(".")[-2:]
        expected = before[name] * (1 - 0.5 * (decays[layer] if kind == "weight" else 0.0))
        torch.testing.assert_close(p.detach(), expected, rtol=1e-6, atol=0)
    assert sorted(g["weight_decay"] for g in optimizer.param_groups) == [0.0, 0.004]


def test_layer_weight_decay_refuses_a_layer_the_model_lacks():
    import pytest
    from alexnet_book.cifar_nets import ConvLocal
    from alexnet_book.optim import Recipe

    with pytest.raises(ValueError, match="local3"):
        Recipe(lr=0.1, epochs=1, layer_weight_decay=(("local3", 0.004),)).optimizer(ConvLocal())
