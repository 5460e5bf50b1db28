"""The one training and evaluation core that every notebook (and the CLI) uses.

fit() takes a model, loaders, an optimizer and an optional LR schedule, and returns the history
as a pandas DataFrame with one row per epoch: top-1 and top-5 error (the paper reports error,
not accuracy), train and test. It checkpoints every epoch and resumes from the checkpoint, and
stops with a message naming the step when the loss turns NaN or infinite.

The hot path holds no host syncs: losses and error counts accumulate on the device and are
read once per `check_every` steps (the NaN guard) and once per epoch.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


def topk_errors(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> torch.Tensor:
    """Number of samples whose label is not among the top-k logits, for each k (a device tensor)."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.topk(k_max, dim=1).indices
    hit = top == labels.unsqueeze(1)
    return torch.stack([(~hit[:, : min(k, k_max)].any(dim=1)).sum() for k in ks])


def autocast(device: torch.device, dtype: torch.dtype | None):
    """bf16/fp16 autocast when a dtype is given, else nothing."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Mean loss and top-1 / top-5 error (in %) of `model` over `loader`."""
    model.eval()
    device = next(model.parameters()).device
    totals = torch.zeros(3, device=device, dtype=torch.float64)  # loss sum, top-1 errors, top-5 errors
    count = 0
    for x, y in loader:
        with autocast(device, amp_dtype):
            logits = model(x)
        totals[0] += F.cross_entropy(logits.float(), y, reduction="sum")
        totals[1:] += topk_errors(logits, y)
        count += len(y)
    loss, top1, top5 = (totals / count).tolist()
    return {"loss": loss, "top1": 100 * top1, "top5": 100 * top5}


def check_finite(losses: torch.Tensor, first_step: int, epoch: int) -> None:
    """Raise NonFiniteLossError naming the first step whose loss is NaN or infinite."""
    bad = (~torch.isfinite(losses)).nonzero()
    if len(bad):
        step = first_step + int(bad[0])
        raise NonFiniteLossError(
            f"loss became {losses[bad[0]].item()} at epoch {epoch}, step {step}; training stopped. "
            f"Lower the learning rate or check the data; the last good checkpoint (if any) is kept."
        )


def train_epoch(model, loader, optimizer, epoch: int, *, amp_dtype=None, check_every: int = 50,
                progress: bool = True) -> dict[str, float]:
    """One pass over `loader`; returns mean loss and top-1 / top-5 training error (in %)."""
    if len(loader) == 0:
        raise ValueError("the training loader yields no batches (dataset smaller than one batch with drop_last?)")
    model.train()
    device = next(model.parameters()).device
    losses = torch.zeros(len(loader), device=device)
    errors = torch.zeros(2, device=device, dtype=torch.long)
    count = checked = 0
    bar = tqdm(total=len(loader.dataset), desc=f"epoch {epoch}", unit="img", leave=False,
               disable=not progress, mininterval=2)
    for step, (x, y) in enumerate(loader):
        with autocast(device, amp_dtype):
            logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses[step] = loss.detach()
        errors += topk_errors(logits.detach(), y)
        count += len(y)
        bar.update(len(y))
        if step + 1 - checked == check_every:
            check_finite(losses[checked : step + 1], checked, epoch)
            checked = step + 1
    bar.close()
    check_finite(losses[checked:], checked, epoch)
    top1, top5 = (100 * errors.double() / count).tolist()
    return {"loss": losses.mean().item(), "top1": top1, "top5": top5}


def save_checkpoint(path: Path, **state) -> None:
    """Write atomically, so an interrupted save never leaves a broken checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)


def rng_state() -> dict:
    state = {"cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def fit(model: torch.nn.Module, train_loader, test_loader=None, *, optimizer: torch.optim.Optimizer,
        epochs: int, scheduler=None, checkpoint: str | Path | None = None, amp_dtype: torch.dtype | None = None,
        desc: str = "train", progress: bool = True, batch_progress: bool = True,
        stop_at_train_top1: float | None = None) -> pd.DataFrame:
    """Train for `epochs` epochs and return the per-epoch history as a DataFrame.

    The scheduler steps once per epoch (ReduceLROnPlateau on the test top-1 error, else
    `.step()`). With `checkpoint`, the state is saved after every epoch and a rerun resumes
    from it: on CPU the resumed run ends with the same weights as an uninterrupted one.
    `stop_at_train_top1` ends training early once the training error falls to that value (in %).
    `batch_progress=False` keeps the per-epoch bar and drops the per-batch one (for many short runs).
    """
    checkpoint = Path(checkpoint) if checkpoint else None
    history, start = [], 0
    if checkpoint and checkpoint.exists():
        state = torch.load(checkpoint, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(state["rng"])
        history, start = state["history"], state["epoch"] + 1
        if stop_at_train_top1 is not None and history[-1]["train_top1"] <= stop_at_train_top1:
            return pd.DataFrame(history)  # the run had already stopped early
    bar = tqdm(range(start, epochs), desc=desc, unit="epoch", disable=not progress, initial=start, total=epochs)
    for epoch in bar:
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        tic = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        train = train_epoch(model, train_loader, optimizer, epoch, amp_dtype=amp_dtype,
                            progress=progress and batch_progress)
        seconds = time.perf_counter() - tic
        test = evaluate(model, test_loader, amp_dtype) if test_loader is not None else {}
        row = {"epoch": epoch + 1, "lr": lr, **{f"train_{k}": v for k, v in train.items()},
               **{f"test_{k}": v for k, v in test.items()}, "seconds": seconds}
        history.append(row)
        bar.set_postfix({f"{split}_top1": f"{row[f'{split}_top1']:.1f}%" for split in ("train", "test") if f"{split}_top1" in row})
        if scheduler is not None:
            plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
            scheduler.step(test["top1"]) if plateau else scheduler.step()
        if checkpoint:
            save_checkpoint(checkpoint, model=model.state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            rng=rng_state(), history=history, epoch=epoch)
        if stop_at_train_top1 is not None and train["top1"] <= stop_at_train_top1:
            break
    return pd.DataFrame(history)
