"""The training core that every notebook and the CLI use: train_epoch, fit, evaluate.

fit() takes a model, a training loader, the loaders it evaluates after every epoch (by name: "val", the
validation split the plateau schedule reads, and e.g. "train_eval"), an optimizer and an optional LR
schedule, and returns the history as a pandas DataFrame with one row per epoch: top-1 and top-5 error (the
paper reports error, not accuracy) of the training pass and of each named evaluation. It takes no test
set: the test set is read once, after training (experiment.train_seeds), so nothing fit decides can depend
on it. It checkpoints every epoch and resumes from the checkpoint, and stops with a message naming the step
when the loss turns NaN or infinite.

The hot path holds no host syncs: losses and error counts accumulate on the device and are
read once per `check_every` steps (the NaN guard) and once per epoch.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torchvision.transforms.v2.functional import ten_crop as ten_patches

from . import checkpoint, distributed
from .backend import autocast
from .checkpoint import CheckpointMismatch

with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text bars, and says so in every notebook
    warnings.filterwarnings("ignore", "IProgress not found")
    from tqdm.auto import tqdm


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Training stopped on request (Ctrl-C) between two steps; `partial` holds the unfinished
    epoch's sums, which a checkpoint keeps so the resumed epoch reports the same numbers."""

    def __init__(self, epoch: int, step: int, partial: dict | None = None):
        super().__init__(f"stopped at epoch {epoch}, step {step}")
        self.epoch, self.step, self.partial = epoch, step, partial


def topk_errors(logits: torch.Tensor, labels: torch.Tensor, ks=(1, 5)) -> torch.Tensor:
    """Number of samples whose label is not among the top-k logits, for each k (a device tensor).
    Ranked in fp32: bf16 logits (autocast's) carry 8 bits of mantissa, and topk's kernels order the ties
    that makes likely among 1,000 classes differently by dtype and device."""
    k_max = min(max(ks), logits.shape[1])
    top = logits.float().topk(k_max, dim=1).indices
    hit = top == labels.unsqueeze(1)
    return torch.stack([(~hit[:, : min(k, k_max)].any(dim=1)).sum() for k in ks])


def sum_dtype(device: torch.device) -> torch.dtype:
    """The dtype of the running sums of losses and error counts: float64, except on mps, which has no
    float64 at all (pytorch#122602) and keeps float32 (exact for counts below 2^24)."""
    return torch.float32 if device.type == "mps" else torch.float64


def model_device(model: torch.nn.Module) -> torch.device:
    return next(model.parameters()).device


# ---------------------------------------------------------------- evaluation


@torch.no_grad()
def evaluate(model: torch.nn.Module, loader, amp_dtype: torch.dtype | None = None, *,
             ten_crop: int | None = None) -> dict[str, float]:
    """Error counts of `model` over `loader` (and every rank's share of it): the one evaluation.

    Plain: {"loss": summed cross-entropy, "top1", "top5": misses, "images"}, the loader yielding
    the model's inputs. With `ten_crop=size` (section 4.1's test procedure) the loader yields whole
    normalized images; each is cut into its ten size x size patches (corners, centre and their
    mirror images) and the counts are {"centre_top1", "centre_top5", "ten_top1", "ten_top5",
    "images"}: the centre patch alone, and the softmax outputs of the ten averaged.
    `error_rates` turns counts into percentages.
    """
    model.eval()
    device = model_device(model)
    keys = ("loss", "top1", "top5") if ten_crop is None else ("centre_top1", "centre_top5", "ten_top1", "ten_top5")
    sums = torch.zeros(len(keys) + 1, device=device, dtype=sum_dtype(device))
    for x, y in loader:
        if ten_crop is None:
            with autocast(device, amp_dtype):
                logits = model(x)
            sums[0] += F.cross_entropy(logits.float(), y, reduction="sum")
            sums[1:3] += topk_errors(logits, y)
        else:
            probs = ten_patch_probabilities(model, x, ten_crop, amp_dtype)
            sums[0:2] += topk_errors(probs[4], y)  # patch 4 is the centre
            sums[2:4] += topk_errors(probs.mean(dim=0), y)
        sums[-1] += len(y)
    sums = distributed.all_sum(sums)
    return dict(zip((*keys, "images"), sums.tolist()))


def ten_patch_probabilities(model: torch.nn.Module, x: torch.Tensor, size: int,
                            amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Section 4.1's test patches: the softmax outputs (10 x N x classes, fp32) of each whole image's ten
    size x size patches, the four corners and the centre (index 4) and their mirror images."""
    patches = torch.stack(ten_patches(x, [size])).flatten(0, 1).contiguous(memory_format=torch.channels_last)
    with autocast(model_device(model), amp_dtype):
        return model(patches).float().softmax(dim=-1).view(10, len(x), -1)


def epoch_errors(model: torch.nn.Module, loaders: dict, amp_dtype: torch.dtype | None = None) -> dict[str, float]:
    """Each named loader's error rates in eval mode, as history columns `<name>_loss`, `<name>_top1`, ..."""
    return {f"{name}_{k}": v for name, loader in loaders.items()
            for k, v in error_rates(evaluate(model, loader, amp_dtype)).items()}


def error_rates(counts: dict[str, float]) -> dict[str, float]:
    """evaluate's counts as rates: errors in %, the loss as a mean."""
    images = counts["images"]
    return {k: v / images if k == "loss" else 100 * v / images for k, v in counts.items() if k != "images"}


# ---------------------------------------------------------------- training


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
                progress: bool = True, stop: Callable[[], bool] | None = None,
                resume: dict | None = None) -> dict[str, float]:
    """One pass over `loader`; returns mean loss and top-1 / top-5 training error (in %).

    `stop()`, asked after every step, ends the epoch early by raising Interrupted with the sums so
    far; `resume` (those sums) finishes such an epoch from a loader positioned at its next step.
    """
    if len(loader) == 0:
        raise ValueError("the training loader yields no batches (dataset smaller than one batch with drop_last?)")
    model.train()
    device = model_device(model)
    losses = torch.zeros(len(loader), device=device)
    errors = torch.zeros(2, device=device, dtype=torch.long)
    count = checked = first = 0
    if resume is not None:
        first = checked = resume["step"]
        losses[:first], count = resume["losses"].to(device), resume["count"]
        errors += resume["errors"].to(device)
    bar = tqdm(total=len(loader.dataset) // distributed.world_size(), initial=count, desc=f"epoch {epoch}",
               unit="img", leave=False, disable=not progress, mininterval=2)
    for step, (x, y) in enumerate(loader, first):
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
        if stop is not None and stop():
            bar.close()
            check_finite(losses[checked : step + 1], checked, epoch)  # never checkpoint a broken state
            sums = {"step": step + 1, "losses": losses[: step + 1].cpu(), "errors": errors.cpu(), "count": count}
            raise Interrupted(epoch, step + 1, sums)
    bar.close()
    check_finite(losses[checked:], checked, epoch)
    # in a distributed run: every rank's mean loss and error counts (the ranks take equal steps)
    dtype = sum_dtype(device)
    totals = distributed.all_sum(torch.cat([losses.mean().to(dtype).view(1), errors.to(dtype),
                                            torch.tensor([count], device=device, dtype=dtype)]))
    top1, top5 = (100 * totals[1:3] / totals[3]).tolist()
    return {"loss": (totals[0] / distributed.world_size()).item(), "top1": top1, "top5": top5}


@dataclass
class FitOptions:
    """How fit runs a training, apart from what it trains; every field is optional.

    checkpoint: the file fit resumes from and saves to after every epoch (on CPU a resumed run ends with
    the same weights as an uninterrupted one); write_checkpoint=False reads it to resume but never writes
    it (all ranks but one of a distributed run). progress: the epoch bar; batch_progress=False drops the
    per-batch bar under it (for many short runs). finished(history), asked after every epoch, ends
    training early when true (e.g. Recipe.finished). stop(), asked after every step (e.g. Ctrl-C), ends
    it with Interrupted; when the loader can report its position (loaders.EpochPosition) the checkpoint
    then holds the unfinished epoch too, and the rerun continues from that step. on_epoch(history) runs
    after each epoch's checkpoint (e.g. to log it).
    """

    checkpoint: str | Path | None = None
    write_checkpoint: bool = True
    amp_dtype: torch.dtype | None = None
    desc: str = "train"
    progress: bool = True
    batch_progress: bool = True
    finished: Callable[[list[dict]], bool] | None = None
    stop: Callable[[], bool] | None = None
    on_epoch: Callable[[list[dict]], None] | None = None


def fit(model: torch.nn.Module, train_loader, *, evaluate: dict | None = None, optimizer: torch.optim.Optimizer,
        epochs: int, scheduler=None, options: FitOptions | None = None) -> pd.DataFrame:
    """Train for `epochs` epochs and return the per-epoch history as a DataFrame.

    Columns: epoch, lr, train_loss/train_top1/train_top5 (the running train-mode numbers of the epoch's pass:
    dropout on, augmented inputs), then `<name>_loss`, `<name>_top1`, `<name>_top5` for each loader of
    `evaluate` ({name: loader}, evaluated in eval mode after every epoch), and seconds (the training pass).
    The scheduler steps once per epoch: ReduceLROnPlateau on `val_top1` (so `evaluate` must hold "val"), any
    other with `.step()`. A loader named "test" is refused: the test set only reports, after fit.
    `options` (FitOptions): the checkpoint, autocast dtype, progress bars, and when to end early.
    """
    evaluate = dict(evaluate or {})
    plateau = isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)
    if "test" in evaluate:
        raise ValueError("fit evaluates no test set: the schedule and the early end read the validation split, "
                         "and the test set is evaluated once, after training")
    if plateau and "val" not in evaluate:
        raise ValueError("a plateau schedule steps on the validation error: pass evaluate={'val': loader}")
    run = options or FitOptions()
    path = Path(run.checkpoint) if run.checkpoint else None
    device = model_device(model)
    history, start, partial = [], 0, None
    if path and path.exists():
        state = checkpoint.restore(path, model, optimizer, scheduler, device)
        history, start, partial = state["history"], state["epoch"] + 1, state.get("partial")
        if start > epochs:  # a shorter history than the checkpoint's cannot be had without training again
            raise CheckpointMismatch(f"{path} holds {start} epochs, more than the {epochs} asked for; "
                                     "ask for at least as many, or delete it to start again")
        if run.finished is not None and run.finished(history):
            return pd.DataFrame(history)  # the run had already ended

    def save(last_epoch: int, **extra) -> None:
        # every rank's RNG state (a collective), so a resumed distributed run draws on as before
        rng = distributed.gather(checkpoint.rng_state(device))
        if path and run.write_checkpoint:
            checkpoint.save(path, model=checkpoint.unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            rng=rng, history=history, epoch=last_epoch, **extra)

    bar = tqdm(range(start, epochs), desc=run.desc, unit="epoch", disable=not run.progress, initial=start, total=epochs)
    for epoch in bar:
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        if partial is not None:  # the checkpoint was taken in the middle of this epoch
            train_loader.load_state_dict(distributed.own(state["loader"]))
        tic = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        try:
            train = train_epoch(model, train_loader, optimizer, epoch, amp_dtype=run.amp_dtype,
                                progress=run.progress and run.batch_progress, stop=run.stop, resume=partial)
        except Interrupted as interrupted:
            if path and hasattr(train_loader, "state_dict"):
                save(epoch - 1, partial=interrupted.partial, loader=distributed.gather(train_loader.state_dict()))
            raise
        partial = None
        seconds = time.perf_counter() - tic
        row = {"epoch": epoch + 1, "lr": lr, **{f"train_{k}": v for k, v in train.items()},
               **epoch_errors(model, evaluate, run.amp_dtype), "seconds": seconds}
        history.append(row)
        bar.set_postfix({f"{split}_top1": f"{row[f'{split}_top1']:.1f}%" for split in ("train", "val") if f"{split}_top1" in row})
        if scheduler is not None:
            scheduler.step(row["val_top1"]) if plateau else scheduler.step()
        if path:
            save(epoch)
        if run.on_epoch is not None:
            run.on_epoch(history)
        if run.finished is not None and run.finished(history):
            break
        if run.stop is not None and epoch + 1 < epochs and run.stop():
            raise Interrupted(epoch + 1, 0)
    return pd.DataFrame(history)
