"""The one training and evaluation core that every notebook (and the CLI) uses.

fit() takes a model, loaders, an optimizer and an optional LR schedule, and returns the history
as a pandas DataFrame with one row per epoch: top-1 and top-5 error (the paper reports error,
not accuracy), train and test. It checkpoints every epoch and resumes from the checkpoint, and
stops with a message naming the step when the loss turns NaN or infinite.

The hot path holds no host syncs: losses and error counts accumulate on the device and are
read once per `check_every` steps (the NaN guard) and once per epoch.

The second half of the file is the full-training command, `python -m alexnet_book.train`
(also installed as `alexnet-book-train`): config, data, model, optimizer, fit, evaluation.
`torchrun --nproc_per_node=N -m alexnet_book.train ...` runs it data-parallel (distributed.py).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F

with warnings.catch_warnings():  # without ipywidgets tqdm.auto falls back to text bars, and says so in every notebook
    warnings.filterwarnings("ignore", "IProgress not found")
    from tqdm.auto import tqdm

from . import data, distributed
from .augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, TestTransform, TrainTransform, rgb_pca
from .model import LRN_CONVENTIONS, AlexNet, he_init_, paper_init_
from .profiles import get_profile
from .results import results_root, run_record
from .runtime import pick_device, seed_everything
from .versions import check_versions


class NonFiniteLossError(RuntimeError):
    """The training loss became NaN or infinite."""


class Interrupted(KeyboardInterrupt):
    """Training stopped on request (Ctrl-C) between two steps; `partial` holds the unfinished
    epoch's sums, which a checkpoint keeps so the resumed epoch reports the same numbers."""

    def __init__(self, epoch: int, step: int, partial: dict | None = None):
        super().__init__(f"stopped at epoch {epoch}, step {step}")
        self.epoch, self.step, self.partial = epoch, step, partial


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
    totals = torch.zeros(4, device=device, dtype=torch.float64)  # loss sum, top-1 errors, top-5 errors, images
    for x, y in loader:
        with autocast(device, amp_dtype):
            logits = model(x)
        totals[0] += F.cross_entropy(logits.float(), y, reduction="sum")
        totals[1:3] += topk_errors(logits, y)
        totals[3] += len(y)
    totals = distributed.all_sum(totals)  # every rank's share of the loader, in a distributed run
    loss, top1, top5 = (totals[:3] / totals[3]).tolist()
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
                progress: bool = True, stop: Callable[[], bool] | None = None,
                resume: dict | None = None) -> dict[str, float]:
    """One pass over `loader`; returns mean loss and top-1 / top-5 training error (in %).

    `stop()`, asked after every step, ends the epoch early by raising Interrupted with the sums so
    far; `resume` (those sums) finishes such an epoch from a loader positioned at its next step.
    """
    if len(loader) == 0:
        raise ValueError("the training loader yields no batches (dataset smaller than one batch with drop_last?)")
    model.train()
    device = next(model.parameters()).device
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
    totals = distributed.all_sum(torch.cat([losses.mean().double().view(1), errors.double(),
                                            torch.tensor([count], device=device, dtype=torch.float64)]))
    top1, top5 = (100 * totals[1:3] / totals[3]).tolist()
    return {"loss": (totals[0] / distributed.world_size()).item(), "top1": top1, "top5": top5}


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


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    """The plain module inside DistributedDataParallel and torch.compile: checkpoints hold its
    weights, so a run can resume with any number of processes, compiled or not."""
    while True:
        if isinstance(model, torch.nn.parallel.DistributedDataParallel):
            model = model.module
        elif hasattr(model, "_orig_mod"):  # torch.compile's wrapper
            model = model._orig_mod
        else:
            return model


def fit(model: torch.nn.Module, train_loader, test_loader=None, *, optimizer: torch.optim.Optimizer,
        epochs: int, scheduler=None, checkpoint: str | Path | None = None, amp_dtype: torch.dtype | None = None,
        desc: str = "train", progress: bool = True, batch_progress: bool = True,
        stop_at_train_top1: float | None = None, stop: Callable[[], bool] | None = None,
        write_checkpoint: bool = True, on_epoch: Callable[[list[dict]], None] | None = None) -> pd.DataFrame:
    """Train for `epochs` epochs and return the per-epoch history as a DataFrame.

    The scheduler steps once per epoch (ReduceLROnPlateau on the test top-1 error, else
    `.step()`). With `checkpoint`, the state is saved after every epoch and a rerun resumes
    from it: on CPU the resumed run ends with the same weights as an uninterrupted one.
    `stop_at_train_top1` ends training early once the training error falls to that value (in %).
    `batch_progress=False` keeps the per-epoch bar and drops the per-batch one (for many short runs).

    `stop()` (e.g. Ctrl-C) ends training at the next step with Interrupted; when the loader can
    report its position (data.EpochPosition) the checkpoint then holds the unfinished epoch too,
    and the rerun continues from that step. `write_checkpoint=False` reads the checkpoint to
    resume but never writes it (all ranks but one of a distributed run). `on_epoch(history)` runs
    after each epoch's checkpoint (e.g. to log it).
    """
    checkpoint = Path(checkpoint) if checkpoint else None
    history, start, partial = [], 0, None
    if checkpoint and checkpoint.exists():
        state = torch.load(checkpoint, map_location="cpu", weights_only=False)
        unwrap(model).load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None:
            scheduler.load_state_dict(state["scheduler"])
        set_rng_state(distributed.own(state["rng"]))
        history, start, partial = state["history"], state["epoch"] + 1, state.get("partial")
        if stop_at_train_top1 is not None and history and history[-1]["train_top1"] <= stop_at_train_top1:
            return pd.DataFrame(history)  # the run had already stopped early

    def save(last_epoch: int, **extra) -> None:
        # every rank's RNG state (a collective), so a resumed distributed run draws on as before
        rng = distributed.gather(rng_state())
        if checkpoint and write_checkpoint:
            save_checkpoint(checkpoint, model=unwrap(model).state_dict(), optimizer=optimizer.state_dict(),
                            scheduler=scheduler.state_dict() if scheduler is not None else None,
                            rng=rng, history=history, epoch=last_epoch, **extra)

    bar = tqdm(range(start, epochs), desc=desc, unit="epoch", disable=not progress, initial=start, total=epochs)
    for epoch in bar:
        if hasattr(train_loader, "set_epoch"):
            train_loader.set_epoch(epoch)
        if partial is not None:  # the checkpoint was taken in the middle of this epoch
            train_loader.load_state_dict(distributed.own(state["loader"]))
        tic = time.perf_counter()
        lr = optimizer.param_groups[0]["lr"]
        try:
            train = train_epoch(model, train_loader, optimizer, epoch, amp_dtype=amp_dtype,
                                progress=progress and batch_progress, stop=stop, resume=partial)
        except Interrupted as interrupted:
            if checkpoint and hasattr(train_loader, "state_dict"):
                save(epoch - 1, partial=interrupted.partial, loader=distributed.gather(train_loader.state_dict()))
            raise
        partial = None
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
            save(epoch)
        if on_epoch is not None:
            on_epoch(history)
        if stop_at_train_top1 is not None and train["top1"] <= stop_at_train_top1:
            break
        if stop is not None and epoch + 1 < epochs and stop():
            raise Interrupted(epoch + 1, 0)
    return pd.DataFrame(history)


# ---------------------------------------------------------------- the command: python -m alexnet_book.train

NOTEBOOK = "08_full_training"  # the profiles' budget entry, and the default results folder
INPUT = 224  # the network's input side (section 3.5)
STATS_IMAGES = 1000  # ImageNet training images sampled for the channel mean and std
AMP = {"bf16": torch.bfloat16, "none": None}
PATCH_KEYS = ("centre_top1", "centre_top5", "ten_top1", "ten_top5")  # experiment.crop_errors' results
# Settings a resumed run may change; changing any other needs --fresh or another --out.
RESUMABLE = {"epochs", "out", "fresh", "benchmark", "device", "amp", "channels_last", "compile", "workers",
             "data_root", "world_size"}


def model_throughput(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch_size: int, num_classes: int,
                     *, steps: int = 5, amp_dtype: torch.dtype | None = None,
                     channels_last: bool = False) -> dict[str, float]:
    """Training img/s of the model alone: `steps` steps of train_epoch on random 224x224 images
    already on the device, after one warm-up step (which also pays for torch.compile and
    cudnn.benchmark). Set it beside data.loader_throughput. It trains `model` on noise: pass one
    you can discard."""
    from .experiment import channels_last as to_channels_last  # experiment imports this module
    from .timing import sync

    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(0)
    n = batch_size * (steps + 1)
    images = torch.randint(0, 256, (n, 3, INPUT, INPUT), dtype=torch.uint8, generator=g)
    labels = torch.randint(num_classes, (n,), generator=g)
    transform = to_channels_last(None) if channels_last else None
    warm_up, timed = (data.TensorLoader(data.ImageSet(images[part], labels[part], ()), batch_size, device=device,
                                        transform=transform)
                      for part in (slice(0, batch_size), slice(batch_size, n)))
    train_epoch(model, warm_up, optimizer, 0, amp_dtype=amp_dtype, progress=False)
    sync(device)
    tic = time.perf_counter()
    train_epoch(model, timed, optimizer, 0, amp_dtype=amp_dtype, progress=False)
    sync(device)
    seconds = time.perf_counter() - tic
    return {"images": n - batch_size, "seconds": seconds, "img_per_s": (n - batch_size) / seconds}


def widths(text: str) -> float | tuple[float, ...]:
    """--width 0.5, or one multiplier per conv layer: --width 0.5,0.5,0.5,0.5,1."""
    values = tuple(float(v) for v in text.split(","))
    return values[0] if len(values) == 1 else values


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="alexnet-book-train",
        description="Train the paper's AlexNet on a profile's data, in one process or in N under "
                    "`torchrun --nproc_per_node=N -m alexnet_book.train`. A rerun resumes from the checkpoint in --out.")
    p.add_argument("--profile", help="smoke | cifar | imagenet (default: $ALEXNET_BOOK_PROFILE, else cifar)")
    budget = p.add_argument_group(f"budget (default: the profile's {NOTEBOOK!r} entry in profiles.py)")
    budget.add_argument("--epochs", type=int)
    budget.add_argument("--batch-size", type=int, help="global batch, split evenly over the processes")
    budget.add_argument("--train-size", type=int, help="training images, a fixed subset (0: all)")
    budget.add_argument("--test-size", type=int, help="test images, a fixed subset (0: all)")
    optim = p.add_argument_group("optimizer (section 5)")
    optim.add_argument("--lr", type=float, default=0.01)
    optim.add_argument("--momentum", type=float, default=0.9)
    optim.add_argument("--weight-decay", type=float, default=5e-4)
    optim.add_argument("--rule", choices=("torch", "paper"), default="torch",
                       help="torch.optim.SGD, or section 5's update rule (optim.PaperSGD)")
    optim.add_argument("--plateau-drops", type=int, default=3,
                       help="divide the lr by 10 when the test error stops improving, at most this often")
    optim.add_argument("--patience", type=int, default=2, help="epochs without improvement before a drop")
    optim.add_argument("--seed", type=int, help="default: the profile's")
    net = p.add_argument_group("model (section 3)")
    net.add_argument("--groups", type=int, choices=(1, 2), default=2, help="2: the two-GPU connectivity")
    net.add_argument("--width", type=widths, default=1.0,
                     help="kernel multiplier, one or five (conv1..conv5); "
                          "C2's one-GPU net: --groups 1 --width 0.5,0.5,0.5,0.5,1")
    net.add_argument("--fc-size", type=int, default=4096)
    net.add_argument("--lrn", choices=(*LRN_CONVENTIONS, "none"), default="cuda-convnet")
    net.add_argument("--pool-size", type=int, choices=(2, 3), default=3)
    net.add_argument("--dropout", type=float, default=0.5)
    net.add_argument("--init", choices=("he", "torch", "paper", "caffe"), default="he",
                     help="He's N(0, 2/fan_in) (the default: on CIFAR-10 the others sit at chance for epochs, "
                          "notebooks 07 and 08), PyTorch's default, section 5's N(0, 0.01) with biases 1, or Caffe's fix of it")
    inputs = p.add_argument_group("data (section 4.1)")
    inputs.add_argument("--augment", choices=("paper", "none"), default="paper",
                        help="paper: random 224/256 patches, flips, PCA lighting; none: the centre patch")
    inputs.add_argument("--mean-only", action="store_true",
                        help="subtract the mean only, as the paper (default: also divide by the std)")
    inputs.add_argument("--data-root", help="default: $ALEXNET_BOOK_DATA")
    inputs.add_argument("--workers", type=int, default=8, help="decoding processes per GPU (ImageFolder data)")
    speed = p.add_argument_group("speed")
    speed.add_argument("--device", help="default: $ALEXNET_BOOK_DEVICE, else cuda, mps, cpu")
    speed.add_argument("--amp", choices=tuple(AMP), help="autocast dtype (default: the profile's)")
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    speed.add_argument("--compile", action="store_true", help="torch.compile the model")
    speed.add_argument("--benchmark", action="store_true", help="measure the loader's and the model's img/s, then exit")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, help=f"default: results/<profile>/{NOTEBOOK}/")
    run.add_argument("--fresh", action="store_true", help="discard the checkpoint in --out and start again")
    return p.parse_args(argv)


class StopRequest:
    """Ctrl-C (SIGINT) or SIGTERM asks training to stop after the current step and save a
    checkpoint. A context manager; it restores the previous handlers on exit."""

    def __init__(self):
        self.requested = False

    def __enter__(self) -> StopRequest:
        self.previous = {s: signal.signal(s, self._handle) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc) -> None:
        for s, handler in self.previous.items():
            signal.signal(s, handler)

    def _handle(self, signum, frame) -> None:
        if not self.requested:
            print("\nstopping after this step to save a checkpoint", file=sys.stderr)
        self.requested = True

    def __call__(self) -> bool:
        return self.requested


def resolve_config(args: argparse.Namespace) -> dict:
    """Every setting of the run, the profile's budget filled in: what config.json records."""
    profile = get_profile(args.profile)
    budget = profile.budget(NOTEBOOK)
    config = {**vars(args), "profile": profile.name, "world_size": distributed.world_size()}
    for key in ("epochs", "batch_size", "train_size", "test_size"):
        if config[key] is None:
            config[key] = getattr(budget, key)
    for key in ("train_size", "test_size"):
        config[key] = config[key] or None  # 0: all
    config["seed"] = profile.seed if args.seed is None else args.seed
    config["amp"] = args.amp or ("bf16" if profile.amp == "bfloat16" else "none")
    config["out"] = args.out or results_root() / profile.name / NOTEBOOK
    if config["batch_size"] % config["world_size"]:
        raise SystemExit(f"--batch-size {config['batch_size']} does not split over {config['world_size']} processes")
    return json.loads(json.dumps(config, default=str))  # as config.json will read back


def prepare_out(config: dict) -> Path:
    """The run's folder; returns its checkpoint path. A checkpoint there is resumed (unless --fresh),
    and only with the settings it was made with: a changed setting outside RESUMABLE is an error,
    not a silent mix of two runs."""
    out = Path(config["out"])
    checkpoint, saved = out / "checkpoint.pt", out / "config.json"
    if distributed.is_main():
        out.mkdir(parents=True, exist_ok=True)
        if config["fresh"]:
            checkpoint.unlink(missing_ok=True)
        elif checkpoint.exists() and saved.exists():
            before = json.loads(saved.read_text())
            changed = sorted(k for k in before.keys() | config.keys()
                             if k not in RESUMABLE and before.get(k) != config.get(k))
            if changed:
                raise SystemExit(f"{checkpoint} was made with other settings ({', '.join(changed)}); "
                                 "pass --fresh to start again, or choose another --out")
        saved.write_text(json.dumps(config, indent=2) + "\n")
    distributed.barrier()  # no rank looks for the checkpoint before --fresh has removed it
    return checkpoint


def make_model(config: dict, num_classes: int) -> torch.nn.Module:
    width = tuple(config["width"]) if isinstance(config["width"], list) else config["width"]
    model = AlexNet(num_classes, lrn=None if config["lrn"] == "none" else config["lrn"], pool_size=config["pool_size"],
                    groups=config["groups"], dropout=config["dropout"], width=width, fc_size=config["fc_size"])
    if config["init"] == "he":
        he_init_(model)
    elif config["init"] == "paper":
        paper_init_(model)
    elif config["init"] == "caffe":
        paper_init_(model, bias=0.1, fc_weight_std=0.005)
    return model


def transforms(side: int, mean: torch.Tensor, std: torch.Tensor, lighting, config: dict):
    """Section 4.1 at any image side: training patches of 224/256 of the side (28 of CIFAR's 32)
    with flips and PCA lighting, test patches from the centre, each resized to 224; and the
    normalization to a 256 side that the ten 224 test patches are cut from."""
    from .experiment import channels_last  # experiment imports this module

    crop = round(side * INPUT / 256)
    patch, whole = data.Normalize(mean, std, size=INPUT), data.Normalize(mean, std, size=256)
    test = TestTransform(patch, crop)
    train = TrainTransform(patch, crop=crop, lighting=lighting) if config["augment"] == "paper" else test
    if config["channels_last"]:
        train, test = channels_last(train), channels_last(test)
    return train, test, whole


def memory_sets(profile, config: dict) -> tuple[data.ImageSet, data.ImageSet, torch.Tensor, torch.Tensor]:
    """A run's training and test images (CIFAR-10 or synthetic shapes) and the mean and std it normalizes by."""
    train = data.load_dataset(profile, "train", config["data_root"], limit=config["train_size"])
    test = data.load_dataset(profile, "test", config["data_root"], limit=config["test_size"])
    mean, std = data.channel_stats(train.images)
    return train, test, mean, torch.ones(3) if config["mean_only"] else std


def memory_inputs(profile, config: dict, device: torch.device) -> dict:
    """CIFAR-10 or synthetic shapes, held on the device (data.TensorLoader)."""
    train, test, mean, std = memory_sets(profile, config)
    train_tf, test_tf, whole = transforms(train.images.shape[-1], mean, std, rgb_pca(train.images), config)
    rank, world, batch = distributed.rank(), distributed.world_size(), config["batch_size"] // distributed.world_size()
    share = data.shard(torch.arange(len(test)), rank, world, drop_last=False)
    return {
        "train": data.TensorLoader(train, batch, shuffle=True, seed=config["seed"], transform=train_tf, device=device,
                                   drop_last=True, rank=rank, world_size=world),
        "test": data.TensorLoader(test, batch, transform=test_tf, device=device, rank=rank, world_size=world),
        "test_images": lambda: [(test.images[share], test.labels[share])],
        "normalize": whole, "classes": train.classes,
    }


def folder_inputs(profile, config: dict, device: torch.device) -> dict:
    """ILSVRC-2012 in ImageFolder layout, decoded by DataLoader workers (data.FolderLoader)."""
    root = data.data_root(config["data_root"]) / "imagenet"
    train_set, val_set = data.ImageFolderDataset(root, "train"), data.ImageFolderDataset(root, "val")

    def part(dataset, n):
        return torch.utils.data.Subset(dataset, data.evenly_spaced(len(dataset), n)) if n else dataset

    def channel_stats() -> dict:
        sample = data.load_dataset(profile, "train", config["data_root"], limit=STATS_IMAGES)
        return dict(zip(("mean", "std"), data.channel_stats(sample.images)))

    stats = data.cached("imagenet-stats", root / "train", channel_stats)
    std = torch.ones(3) if config["mean_only"] else stats["std"]
    train_tf, test_tf, whole = transforms(256, stats["mean"], std, (IMAGENET_EIGVAL, IMAGENET_EIGVEC), config)
    batch = config["batch_size"] // distributed.world_size()
    common = dict(device=device, rank=distributed.rank(), world_size=distributed.world_size(),
                  workers=config["workers"])
    val = part(val_set, config["test_size"])
    return {
        "train": data.FolderLoader(part(train_set, config["train_size"]), batch, shuffle=True, seed=config["seed"],
                                   transform=train_tf, **common),
        "test": data.FolderLoader(val, batch, transform=test_tf, **common),
        "test_images": lambda: data.FolderLoader(val, batch, **common),  # whole 256x256 images, after training
        "normalize": whole, "classes": train_set.classes,
    }


def patch_errors(model: torch.nn.Module, batches, normalize: data.Normalize, amp_dtype: torch.dtype | None,
                 batch_size: int) -> dict[str, float]:
    """Top-1 and top-5 error (%) of the centre patch and of the ten-patch average (section 4.1,
    experiment.crop_errors), over test batches and every rank's share of them."""
    from .experiment import crop_errors  # experiment imports this module

    device = next(model.parameters()).device
    sums = torch.zeros(5, dtype=torch.float64, device=device)  # errors for each of PATCH_KEYS, images
    for images, labels in batches:
        errors = crop_errors(model, data.ImageSet(images, labels, ()), normalize, INPUT, batch_size=batch_size,
                             amp_dtype=amp_dtype)
        counts = torch.tensor([errors[k] for k in PATCH_KEYS], dtype=torch.float64) * len(labels) / 100
        sums[:4] += counts.round().to(device)
        sums[4] += len(labels)
    sums = distributed.all_sum(sums)
    return dict(zip(PATCH_KEYS, (100 * sums[:4] / sums[4]).tolist()))


def with_speed(history: list[dict] | pd.DataFrame, images_per_epoch: int) -> pd.DataFrame:
    frame = pd.DataFrame(history)
    frame["img_per_s"] = images_per_epoch / frame["seconds"]  # training only; a resumed epoch counts its rest
    return frame


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_versions()
    device = distributed.start(pick_device(args.device))
    try:
        return train(resolve_config(args), device)
    finally:
        distributed.finish()


def train(config: dict, device: torch.device) -> int:
    """The full training: config, data, model, optimizer, fit (checkpoint, resume), evaluation, logs."""
    from .experiment import Recipe  # experiment imports this module

    tic, main_rank = time.perf_counter(), distributed.is_main()
    profile, out = get_profile(config["profile"]), Path(config["out"])
    checkpoint = prepare_out(config)
    seed_everything(config["seed"] + distributed.rank())  # each rank its own dropout masks; DDP syncs the init
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one input size: let cuDNN time its kernels once and pick
    amp_dtype = AMP[config["amp"]]
    inputs = (folder_inputs if profile.dataset == "imagenet" else memory_inputs)(profile, config, device)
    batch = config["batch_size"] // distributed.world_size()

    model = make_model(config, len(inputs["classes"]))
    model = model.to(device, memory_format=torch.channels_last if config["channels_last"] else torch.preserve_format)
    recipe = Recipe(lr=config["lr"], epochs=config["epochs"], momentum=config["momentum"],
                    weight_decay=config["weight_decay"], batch_size=config["batch_size"], rule=config["rule"],
                    plateau_drops=config["plateau_drops"], patience=config["patience"])
    optimizer, net = recipe.optimizer(model), distributed.wrap(model, device)
    scheduler = recipe.scheduler(optimizer)
    if config["compile"]:
        net = torch.compile(net)
    if main_rank:
        print(f"profile {profile.name}, {config['epochs']} epochs at batch {config['batch_size']} "
              f"over {distributed.world_size()} process(es) on {device}, amp {config['amp']}; "
              f"{'resuming' if checkpoint.exists() else 'writing'} {checkpoint}", file=sys.stderr)

    if config["benchmark"]:
        speed = {"loader": data.loader_throughput(inputs["train"], batches=min(20, len(inputs["train"]) - 1)),
                 "model": model_throughput(net, optimizer, batch, len(inputs["classes"]), amp_dtype=amp_dtype,
                                           channels_last=config["channels_last"])}
        if main_rank:
            (out / "benchmark.json").write_text(json.dumps({**run_record(profile.name, device, [config["seed"]]),
                                                            "config": config, **speed}, indent=2) + "\n")
            print(json.dumps(speed, indent=2))
        return 0

    images_per_epoch = len(inputs["train"]) * config["batch_size"]
    with StopRequest() as stop:
        try:
            history = fit(net, inputs["train"], inputs["test"], optimizer=optimizer, epochs=config["epochs"],
                          scheduler=scheduler, checkpoint=checkpoint, amp_dtype=amp_dtype, desc=profile.name,
                          progress=main_rank, stop=distributed.agreed(stop), write_checkpoint=main_rank,
                          on_epoch=(lambda h: with_speed(h, images_per_epoch).to_csv(out / "history.csv", index=False))
                          if main_rank else None)
        except Interrupted as interrupted:
            if main_rank:
                print(f"{interrupted}; checkpoint saved in {out}: run the same command again to resume",
                      file=sys.stderr)
            return 130  # the shell's code for "ended by Ctrl-C"
    final = patch_errors(model, inputs["test_images"](), inputs["normalize"], amp_dtype, max(1, batch // 2))
    if main_rank:
        record = {**run_record(profile.name, device, [config["seed"]]), "wall_time_s": time.perf_counter() - tic,
                  "config": config, "final": final, "history": with_speed(history, images_per_epoch).to_dict("records")}
        (out / "run.json").write_text(json.dumps(record, indent=2) + "\n")
        print(pd.Series(final).round(2).to_string(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
