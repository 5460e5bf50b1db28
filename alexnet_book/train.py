"""The full-training command: `python -m alexnet_book.train` (also installed as `alexnet-book-train`).

It reads top to bottom: arguments -> config -> data -> model -> optimizer -> fit (engine.py:
checkpoint, resume) -> ten-patch test -> logs. Training images held out of training (--val-size) are the
validation split, which the schedule reads (history's val_*); the final ten-patch pass alone reads the test images
(--test-size). `torchrun --nproc_per_node=N -m alexnet_book.train ...` runs it data-parallel (distributed.py).
Notebook 08 calls `main` with a profile's budget; `--images DIR` trains on any folder of labelled images
(folders.py), as notebook 12 does: it has no test split, so its final pass reports on its validation split.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from . import data, distributed, engine, folders
from .augment import IMAGENET_EIGVAL, IMAGENET_EIGVEC, Normalize, TestTransform, TrainTransform, channels_last, rgb_pca
from .engine import FitOptions, Interrupted, fit
from .loaders import FolderLoader, TensorLoader, shard
from .lrn import LRN_CONVENTIONS
from .model import AlexNet, he_init_, paper_init_
from .optim import Recipe
from .profiles import get_profile
from .results import results_root, run_record, shown
from .backend import AMP_CHOICES, amp_dtype, dtype_name, pick_device, seed_everything
from .timing import loader_throughput, model_throughput, with_speed
from .versions import check_versions


NOTEBOOK = "08_full_training"  # the profiles' budget entry, and the default results folder
OWN_IMAGES = "12_your_own_images"  # the budget entry of a run on --images
INPUT = 224  # the network's input side (section 3.5)
STATS_IMAGES = 1000  # ImageNet training images sampled for the channel mean and std
# Settings a resumed run may change; changing any other needs --fresh or another --out.
RESUMABLE = {"epochs", "out", "fresh", "benchmark", "device", "amp", "channels_last", "compile", "workers",
             "data_root", "world_size", "eval_batch_size", "debug"}


class UsageError(ValueError):
    """Settings that cannot run; the message says which and what to do instead."""


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
    budget.add_argument("--val-size", type=int, help="held-out training images the schedule reads (0: the profile's)")
    budget.add_argument("--test-size", type=int, help="test images the final ten-patch pass reads, a fixed subset (0: all)")
    budget.add_argument("--eval-batch-size", type=int, default=64,
                        help="test images per process and batch (the ten-patch test runs 10x as many patches)")
    optim = p.add_argument_group("optimizer (section 5)")
    optim.add_argument("--lr", type=float, default=0.01)
    optim.add_argument("--momentum", type=float, default=0.9)
    optim.add_argument("--weight-decay", type=float, default=5e-4)
    optim.add_argument("--rule", choices=("torch", "paper"), default="torch",
                       help="torch.optim.SGD, or section 5's update rule (optim.PaperSGD)")
    optim.add_argument("--plateau-drops", type=int, default=3,
                       help="divide the lr by 10 when the validation error stops improving, at most this often")
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
    inputs.add_argument("--images", type=Path, metavar="DIR",
                        help=f"train on your own labelled images instead of the profile's data: {folders.LAYOUTS}; "
                             f"epochs and batch from the profile's {OWN_IMAGES!r} budget, every image unless --train-size")
    inputs.add_argument("--image-size", type=int, default=folders.SIDE,
                        help="--images: the side images are resized to (shorter side, then the centre), 256 as the "
                             "paper; training patches are 224/256 of it, resized to 224")
    inputs.add_argument("--val-fraction", type=float, default=folders.VAL_FRACTION,
                        help="--images in one tree: the share of each class held out for validation")
    inputs.add_argument("--split-seed", type=int, default=0, help="--images in one tree: the seed of that split")
    inputs.add_argument("--workers", type=int,
                        help="decoding processes per GPU (ImageFolder data); default: the node's cores per process, at most 8")
    speed = p.add_argument_group("speed")
    speed.add_argument("--device", help="default: $ALEXNET_BOOK_DEVICE, else cuda, mps, cpu")
    speed.add_argument("--amp", choices=AMP_CHOICES,
                       help="autocast dtype; auto: bf16 where the device runs it natively, else fp32 (default: the profile's)")
    speed.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    speed.add_argument("--compile", action="store_true", help="torch.compile the model")
    speed.add_argument("--benchmark", action="store_true", help="measure the loader's and the model's img/s, then exit")
    run = p.add_argument_group("run")
    run.add_argument("--out", type=Path, help=f"default: results/<profile>/{NOTEBOOK}/")
    run.add_argument("--fresh", action="store_true", help="discard the checkpoint in --out and start again")
    run.add_argument("--debug", action="store_true", help="show the traceback of an error, not just its message")
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


def resolve_config(args: argparse.Namespace, device: torch.device) -> dict:
    """Every setting of the run, the profile's budget for this device filled in: what config.json records."""
    profile = get_profile(args.profile)
    budget = profile.budget(OWN_IMAGES if args.images else NOTEBOOK, device.type)
    config = {**vars(args), "profile": profile.name, "world_size": distributed.world_size()}
    for key in ("epochs", "batch_size", "train_size", "test_size"):
        if config[key] is None:  # your own images: all of them (the budget's sizes are notebook 12's folder)
            config[key] = 0 if args.images and key in ("train_size", "test_size") else getattr(budget, key)
    for key in ("train_size", "test_size"):
        config[key] = config[key] or None  # 0: all
    config["val_size"] = None if args.images else config["val_size"] or profile.val_size
    config["seed"] = profile.seed if args.seed is None else args.seed
    config["amp"] = args.amp or profile.amp or "float32"
    # a profile's checkpoint with another value (protocol v1, v2's first run of notebook 08) was scheduled on test
    # images: prepare_out refuses to resume it; your own images were always scheduled on their validation photos
    config["schedule_split"] = "val" if args.images else "held-out training images"
    default_out = f"images-{args.images.resolve().name}" if args.images else NOTEBOOK
    config["out"] = args.out or results_root() / profile.name / default_out
    if args.images:
        config["images"] = str(args.images.resolve())
    else:  # a run on a profile's data keeps the config it always had, so its checkpoints still resume
        for key in ("images", "image_size", "val_fraction", "split_seed"):
            del config[key]
    if config["batch_size"] % config["world_size"]:
        raise UsageError(f"--batch-size {config['batch_size']} does not split over {config['world_size']} processes")
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
                raise UsageError(f"{checkpoint} was made with other settings ({', '.join(changed)}); "
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
    crop = round(side * INPUT / 256)
    patch, whole = Normalize(mean, std, size=INPUT), Normalize(mean, std, size=256)
    test = TestTransform(patch, crop)
    train = TrainTransform(patch, crop=crop, lighting=lighting) if config["augment"] == "paper" else test
    if config["channels_last"]:
        train, test = channels_last(train), channels_last(test)
    return train, test, whole


def memory_sets(profile, config: dict) -> tuple[data.Splits, torch.Tensor, torch.Tensor]:
    """A run's training, validation (held out of training) and test images, CIFAR-10 or synthetic shapes, and the
    mean and std it normalizes by. n training images are the n a section experiment of n trains on."""
    full = data.load_dataset(profile, "train", config["data_root"])
    train, val = data.split_validation(full, config["val_size"], config["train_size"], profile.seed)
    test = data.load_dataset(profile, "test", config["data_root"], limit=config["test_size"])
    mean, std = data.channel_stats(train.images)
    return data.Splits(train, val, test), mean, torch.ones(3) if config["mean_only"] else std


def memory_inputs(profile, config: dict, device: torch.device) -> dict:
    """CIFAR-10 or synthetic shapes, held on the device (loaders.TensorLoader)."""
    with distributed.rank0_first():  # one process downloads, decodes and caches; the others read its cache
        sets, mean, std = memory_sets(profile, config)
    return tensor_loaders(sets, mean, std, rgb_pca(sets.train.images), config, device)


def own_inputs(profile, config: dict, device: torch.device) -> dict:
    """Your own labelled images (folders.py): decoded once at --image-size and held on the device like
    CIFAR-10, normalized and lit with their own statistics; their record and split go to the run's folder."""
    with distributed.rank0_first():  # one process decodes and caches; the others read its cache
        own = folders.load(config["images"], config["image_size"], config["val_fraction"], config["split_seed"])
    std = torch.ones(3) if config["mean_only"] else own.stats["std"]
    train, val = own.train.subset(config["train_size"], config["seed"]), own.val.subset(config["test_size"], config["seed"])
    lighting = (own.stats["eigval"], own.stats["eigvec"])
    sets = data.Splits(train, val, val)  # no test split: the final ten-patch pass reports on the validation photos
    return {**tensor_loaders(sets, own.stats["mean"], std, lighting, config, device),
            "record": {**own.record, "mean_only": config["mean_only"]}, "split": own.split}


def tensor_loaders(sets: data.Splits, mean: torch.Tensor, std: torch.Tensor, lighting, config: dict,
                   device: torch.device) -> dict:
    """Training and validation loaders over images in memory (loaders.TensorLoader); the test set's ten-patch
    loader is made only when the final evaluation asks for it."""
    train, val, test = sets
    train_tf, test_tf, whole = transforms(train.images.shape[-1], mean, std, lighting, config)
    shards = dict(device=device, rank=distributed.rank(), world_size=distributed.world_size())
    batch, eval_batch = config["batch_size"] // distributed.world_size(), config["eval_batch_size"]
    return {
        "train": TensorLoader(train, batch, shuffle=True, seed=config["seed"], transform=train_tf, drop_last=True,
                              **shards),
        "val": TensorLoader(val, eval_batch, transform=test_tf, **shards),
        "ten_patch": lambda: TensorLoader(test, eval_batch, transform=whole, **shards),
        "classes": train.classes,
    }


def folder_inputs(profile, config: dict, device: torch.device) -> dict:
    """ILSVRC-2012 in ImageFolder layout, decoded by DataLoader workers (loaders.FolderLoader). The validation
    split is --val-size training images spread evenly over the classes and held out of training; ILSVRC-2012's
    own validation set, where the paper reports, is the test set that the final ten-patch pass reads."""
    root = data.data_root(config["data_root"]) / "imagenet"
    train_set, test_set = data.ImageFolderDataset(root, "train"), data.ImageFolderDataset(root, "val")
    kept, held_out = data.split_listing(len(train_set), config["val_size"])

    def part(dataset, indices, n):  # n of the indices, spread evenly (all of them when n is None)
        return torch.utils.data.Subset(dataset, [indices[i] for i in data.evenly_spaced(len(indices), n)] if n else indices)

    sample = data.evenly_spaced(len(train_set), STATS_IMAGES)  # every class, as the sorted listing has them

    def channel_stats() -> dict:
        return dict(zip(("mean", "std"), data.channel_stats(torch.stack([train_set[i][0] for i in sample]))))

    with distributed.rank0_first():  # one process samples the statistics; the others read its cache
        stats = data.cached("imagenet-stats", root / "train", channel_stats, files=[train_set.path(i) for i in sample])
    std = torch.ones(3) if config["mean_only"] else stats["std"]
    train_tf, test_tf, whole = transforms(256, stats["mean"], std, (IMAGENET_EIGVAL, IMAGENET_EIGVEC), config)
    batch, eval_batch = config["batch_size"] // distributed.world_size(), config["eval_batch_size"]
    common = dict(device=device, rank=distributed.rank(), world_size=distributed.world_size(),
                  workers=config["workers"])
    test = part(test_set, range(len(test_set)), config["test_size"])
    return {
        "train": FolderLoader(part(train_set, kept, config["train_size"]), batch, shuffle=True, seed=config["seed"],
                              transform=train_tf, **common),
        "val": FolderLoader(torch.utils.data.Subset(train_set, held_out), eval_batch, transform=test_tf, **common),
        "ten_patch": lambda: FolderLoader(test, eval_batch, transform=whole, **common),  # whole 256x256 images
        "classes": train_set.classes,
    }


# Errors that are the user's to fix end as one line (exit 2); a diverged run is not a usage error (exit 1).
USER_ERRORS = (data.DataError, UsageError, engine.CheckpointMismatch, ValueError, FileNotFoundError)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    check_versions()
    try:
        device = distributed.start(pick_device(args.device))
        benchmark = torch.backends.cudnn.benchmark
        try:
            torch.backends.cudnn.benchmark = device.type == "cuda"  # one input size: cuDNN times its kernels once
            return train(resolve_config(args, device), device)
        finally:
            torch.backends.cudnn.benchmark = benchmark  # only for this run: the caller's setting comes back
            distributed.finish()
    except (*USER_ERRORS, engine.NonFiniteLossError) as error:
        if args.debug:
            raise
        print(f"alexnet-book-train: error: {error}", file=sys.stderr)
        return 1 if isinstance(error, engine.NonFiniteLossError) else 2


def train(config: dict, device: torch.device) -> int:
    """The full training: config, data, model, optimizer, fit (checkpoint, resume), evaluation, logs."""
    tic, main_rank = time.perf_counter(), distributed.is_main()
    profile, out = get_profile(config["profile"]), Path(config["out"])
    checkpoint = prepare_out(config)
    seed_everything(config["seed"] + distributed.rank())  # each rank its own dropout masks; DDP syncs the init
    dtype = amp_dtype(device, config["amp"])
    load = own_inputs if config.get("images") else folder_inputs if profile.dataset == "imagenet" else memory_inputs
    inputs = load(profile, config, device)
    if main_rank and "record" in inputs:  # what alexnet-book-predict needs besides the weights, and the split
        (out / "images.json").write_text(json.dumps(inputs["record"], indent=2) + "\n")
        (out / "split.json").write_text(json.dumps(inputs["split"], indent=2) + "\n")
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
              f"over {distributed.world_size()} process(es) on {device}, {dtype_name(dtype)} ({config['amp']}); "
              f"{'resuming' if checkpoint.exists() else 'writing'} {shown(checkpoint)}", file=sys.stderr)

    if config["benchmark"]:
        speed = {"loader": loader_throughput(inputs["train"], batches=min(20, len(inputs["train"]) - 1)),
                 "model": model_throughput(net, optimizer, batch, len(inputs["classes"]), side=INPUT, amp_dtype=dtype,
                                           channels_last_inputs=config["channels_last"])}
        if main_rank:
            (out / "benchmark.json").write_text(json.dumps({**run_record(profile.name, device, [config["seed"]], dtype_name(dtype)),
                                                            "config": config, **speed}, indent=2) + "\n")
            print(json.dumps(speed, indent=2))
        return 0

    images_per_epoch = len(inputs["train"]) * config["batch_size"]
    with StopRequest() as stop:
        try:
            options = FitOptions(checkpoint=checkpoint, write_checkpoint=main_rank, amp_dtype=dtype, desc=profile.name,
                                 progress=main_rank, stop=distributed.agreed(stop),
                                 on_epoch=(lambda h: with_speed(h, images_per_epoch).to_csv(out / "history.csv", index=False))
                                 if main_rank else None)
            history = fit(net, inputs["train"], evaluate={"val": inputs["val"]}, optimizer=optimizer, epochs=config["epochs"],
                          scheduler=scheduler, options=options)
        except Interrupted as interrupted:
            if main_rank:
                print(f"{interrupted}; checkpoint saved in {out}: run the same command again to resume",
                      file=sys.stderr)
            return 130  # the shell's code for "ended by Ctrl-C"
    if main_rank:
        print(f"training: {with_speed(history, images_per_epoch)['img_per_s'].median():.1f} img/s "
              f"(median over {len(history)} epochs)", file=sys.stderr)
        if config.get("images"):
            import matplotlib.pyplot as plt  # only where a figure is drawn

            from .plots import train_test_curves

            curves = history.assign(variant="AlexNet", seed=config["seed"])
            fig = train_test_curves(curves, title=f"{Path(config['images']).name}: {len(inputs['classes'])} classes")
            fig.savefig(out / "learning_curves.png", dpi=120, bbox_inches="tight")
            plt.close(fig)  # saved, not shown: a notebook calling main would draw it again
    final = engine.error_rates(engine.evaluate(model, inputs["ten_patch"](), dtype, ten_crop=INPUT))
    if main_rank:
        record = {**run_record(profile.name, device, [config["seed"]], dtype_name(dtype)), "wall_time_s": time.perf_counter() - tic,
                  "config": config, "final": final, "history": with_speed(history, images_per_epoch).to_dict("records")}
        (out / "run.json").write_text(json.dumps(record, indent=2) + "\n")
        print(pd.Series(final).round(2).to_string(), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
