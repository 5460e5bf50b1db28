"""How a net is optimized: the Recipe (SGD, learning rate, schedule), section 5's update rule, and a
small experiment showing where that rule differs from torch.optim.SGD.

The paper (eps = learning rate):  v <- 0.9 v - 0.0005 eps w - eps grad;  w <- w + v.
PyTorch's SGD:                    b <- m b + grad + wd w;               w <- w - lr b.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pandas as pd
import torch
from torch import nn

# Section 5's starting learning rate. The architecture and regularizer ablations (04-06, 10) train every
# variant at it: a sweep of 1-2 epochs there chose rates (0.1) at which the full runs stalled, because a
# short sweep rewards a fast start over a good finish.
PAPER_LR = 0.01


class PaperSGD(torch.optim.Optimizer):
    """SGD with momentum and weight decay exactly as section 5 writes it.

        v <- momentum * v - weight_decay * lr * w - lr * grad;   w <- w + v

    lr is read from the param group at every step, so LR schedulers work. The velocity is kept
    in `state[p]["velocity"]`. While lr is constant this is torch.optim.SGD (same momentum and
    weight decay, dampening 0): the velocities differ by the factor -lr and the steps are equal.
    They part at a learning-rate change: torch multiplies its whole buffer by the new lr, while
    the paper's velocity still carries the steps taken at the old rate, so its first steps after
    a drop are larger (about `factor` times, decaying as momentum**k). `compare_after_drop`
    shows it.
    """

    def __init__(self, params: Iterable, lr: float, momentum: float = 0.9, weight_decay: float = 5e-4):
        if lr < 0 or not 0 <= momentum < 1 or weight_decay < 0:
            raise ValueError(f"need lr >= 0, 0 <= momentum < 1, weight_decay >= 0; got {lr}, {momentum}, {weight_decay}")
        super().__init__(params, dict(lr=lr, momentum=momentum, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None) -> torch.Tensor | None:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, momentum, weight_decay = group["lr"], group["momentum"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                if p.grad.is_sparse:
                    raise RuntimeError("PaperSGD does not support sparse gradients; use torch.optim.SGD")
                state = self.state[p]
                if "velocity" not in state:
                    state["velocity"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                v = state["velocity"]
                v.mul_(momentum).add_(p, alpha=-weight_decay * lr).add_(p.grad, alpha=-lr)
                p.add_(v)
        return loss


def _regression_problem(seed: int, n: int = 64, dims: int = 8) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A fixed least-squares problem (inputs, targets, starting weights), in float64 so the two
    optimizers agree to rounding before the drop."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, dims, generator=g, dtype=torch.float64)
    y = x @ torch.randn(dims, generator=g, dtype=torch.float64) + 0.1 * torch.randn(n, generator=g, dtype=torch.float64)
    return x, y, torch.randn(dims, generator=g, dtype=torch.float64)


def compare_after_drop(steps: int = 40, drop_at: int = 20, lr: float = 0.1, factor: float = 10,
                       momentum: float = 0.9, weight_decay: float = 5e-4, seed: int = 0) -> pd.DataFrame:
    """Train one linear regression twice, with PaperSGD and torch.optim.SGD, under the same
    schedule (lr divided by `factor` from step `drop_at` on), and return one row per step.

    Columns: step, lr (used at that step), paper_update and torch_update (the norm of the
    weight change |dw| of each), and distance (|w_paper - w_torch| after the step). Before the
    drop the updates coincide and the distance is ~0; after it the paper's are larger.
    """
    x, y, w0 = _regression_problem(seed)
    weights = {name: w0.clone().requires_grad_() for name in ("paper", "torch")}
    optimizers = {
        "paper": PaperSGD([weights["paper"]], lr=lr, momentum=momentum, weight_decay=weight_decay),
        "torch": torch.optim.SGD([weights["torch"]], lr=lr, momentum=momentum, weight_decay=weight_decay),
    }
    schedulers = [torch.optim.lr_scheduler.MultiStepLR(opt, [drop_at], gamma=1 / factor) for opt in optimizers.values()]
    rows = []
    for step in range(steps):
        row = {"step": step, "lr": optimizers["paper"].param_groups[0]["lr"]}
        for name, w in weights.items():
            before = w.detach().clone()
            optimizers[name].zero_grad()
            (0.5 * (x @ w - y).square().mean()).backward()
            optimizers[name].step()
            row[f"{name}_update"] = (w.detach() - before).norm().item()
        row["distance"] = (weights["paper"] - weights["torch"]).norm().item()
        rows.append(row)
        for scheduler in schedulers:
            scheduler.step()
    return pd.DataFrame(rows)


PAPER_DROPS = 3  # section 5: the rate "was reduced three times prior to termination"


def schedule_spent(rates: list[float], errors: list[float], drops: int, patience: int) -> bool:
    """Whether a plateau schedule of `drops` divisions is over: it has made its last drop, and the validation
    error (`errors`, one per epoch, as `rates`) has since gone `patience` + 1 epochs at the final rate without
    a new best, the point where it would drop again. More epochs at the final rate then buy nothing but time."""
    if not drops or sum(b < a for a, b in zip(rates, rates[1:])) < drops:
        return False
    since_best = len(errors) - 1 - errors.index(min(errors))
    at_final_rate = len(rates) - rates.index(rates[-1])
    return min(since_best, at_final_rate) > patience


@dataclass(frozen=True)
class Recipe:
    """How one variant is trained: SGD with momentum for at most `epochs` epochs (the cap), the learning rate
    divided by 10 whenever the validation error stops improving for `patience` epochs, `plateau_drops` times
    (section 5's three by default; 0: a constant rate). A run ends when its schedule is spent (`finished`)."""

    lr: float
    epochs: int
    momentum: float = 0.9
    weight_decay: float = 0.0
    batch_size: int = 128
    stop_at_train_top1: float | None = None  # end a run early once its training error (%) falls to this
    give_up_after: int | None = None  # end a run after this many epochs, for a sweep's pruning (sweep_to_line)
    rule: str = "torch"  # "torch": torch.optim.SGD; "paper": section 5's update rule (optim.PaperSGD)
    plateau_drops: int = PAPER_DROPS
    patience: int = 2
    # Per-layer weight decay, as cuda-convnet's layer-params files give it (`wc`): ((layer name, decay), ...).
    # The named layers' weights decay at their own rate and every bias at none, as in cuda-convnet, whose `wc`
    # is a weights-only setting; a layer not named keeps `weight_decay`. Its update adds wc * epsW * W to the
    # step of a mean gradient scaled by epsW, which is torch's weight_decay * lr * W: wc carries over unchanged.
    layer_weight_decay: tuple[tuple[str, float], ...] = ()

    def __post_init__(self):
        # A rate read from a pandas table is a numpy float, whose repr is not a float's; the checkpoint key
        # (checkpoint.run_path) is the recipe's repr, so without this one run would get two files.
        object.__setattr__(self, "lr", float(self.lr))

    def finished(self, history: list[dict]) -> bool:
        """Whether a run ends before its epochs run out: its running training error has fallen to
        `stop_at_train_top1`, or its schedule is spent on the validation error (`schedule_spent`). Reads no
        test error: fit's history has none."""
        if not history:
            return False
        if self.stop_at_train_top1 is not None and history[-1]["train_top1"] <= self.stop_at_train_top1:
            return True
        if self.give_up_after is not None and len(history) >= self.give_up_after:
            return True
        return self.schedule_spent(history)

    def schedule_spent(self, history: list[dict]) -> bool:
        """Whether the plateau schedule has made its `plateau_drops` drops and then run out (schedule_spent)."""
        return schedule_spent([row["lr"] for row in history], [row["val_top1"] for row in history],
                              self.plateau_drops, self.patience)

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        if self.rule not in ("torch", "paper"):
            raise ValueError(f"unknown update rule {self.rule!r}; valid: 'torch', 'paper'")
        make = PaperSGD if self.rule == "paper" else torch.optim.SGD
        return make(self.parameter_groups(model), lr=self.lr, momentum=self.momentum, weight_decay=self.weight_decay)

    def parameter_groups(self, model: nn.Module) -> list[dict]:
        """One optimizer group per weight decay: all parameters at `weight_decay`, or with `layer_weight_decay`
        each named layer's weights at its own decay and the biases at none."""
        if not self.layer_weight_decay:
            return [{"params": list(model.parameters())}]
        decays, groups = dict(self.layer_weight_decay), {}
        for name, param in model.named_parameters():
            layer, kind = name.split(".")[-2:]  # "features.conv1.weight" -> conv1, weight
            decay = 0.0 if kind == "bias" else decays.get(layer, self.weight_decay)
            groups.setdefault(decay, []).append(param)
        unknown = set(decays) - {name.split(".")[-2] for name, _ in model.named_parameters()}
        if unknown:
            raise ValueError(f"layer_weight_decay names layers the model lacks: {sorted(unknown)}")
        return [{"params": params, "weight_decay": decay} for decay, params in groups.items()]

    def scheduler(self, optimizer: torch.optim.Optimizer):
        """ReduceLROnPlateau, which engine.fit steps on the validation top-1 error; None for a constant rate."""
        if not self.plateau_drops:
            return None
        # min_lr stops it after `plateau_drops` divisions by 10 (the margin absorbs rounding)
        floor = self.lr * 0.1**self.plateau_drops * (1 - 1e-6)
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, factor=0.1, patience=self.patience, min_lr=floor)
