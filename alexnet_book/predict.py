"""Ask a trained net what it sees: `alexnet-book-predict --run DIR image.jpg ...` (also `python -m alexnet_book.predict`).

It prints each image's five most probable classes by name, with their probabilities: from the centre
patch, or with --ten-patch from the average of section 4.1's ten patches. `top5` is the one code path:
the command, notebook 12's grid and notebook 09's Figure 4 (through qualitative.top5) all call it.
"""

from __future__ import annotations

import argparse
import functools
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch

from . import folders
from .backend import amp_dtype, autocast, pick_device
from .data import DataError
from .engine import ten_patch_probabilities, topk_errors
from .results import shown


@dataclass
class TrainedRun:
    """A finished `alexnet-book-train --images` run, ready to predict: its net (eval mode, on its device), class
    names, the side its images were resized to, and its test transforms (centre patch; whole images for ten)."""

    model: torch.nn.Module
    classes: tuple[str, ...]
    image_size: int
    centre: object
    whole: object
    amp_dtype: torch.dtype | None

    def probabilities(self, images: torch.Tensor, ten_patch: bool = False, batch_size: int = 64) -> torch.Tensor:
        from .train import INPUT

        transform, crop = (self.whole, INPUT) if ten_patch else (self.centre, None)
        return probabilities(self.model, images, transform, ten_crop=crop, batch_size=batch_size, amp_dtype=self.amp_dtype)

    def top5(self, images: torch.Tensor, ten_patch: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        return top5_of(self.probabilities(images, ten_patch))


def load_run(run: str | Path, device: str | torch.device | None = None) -> TrainedRun:
    """The net, classes and preprocessing of a run folder written by `alexnet-book-train --images`."""
    from .train import make_model, transforms  # the run's own model and transforms, built as in training

    run = Path(run)
    needed = [run / name for name in ("config.json", "images.json", "checkpoint.pt")]
    missing = [p.name for p in needed if not p.exists()]
    if missing:
        raise DataError(f"{run} is not a finished `alexnet-book-train --images` run (no {', '.join(missing)})")
    config, record = (json.loads(p.read_text()) for p in needed[:2])
    device = pick_device(device)
    model = make_model(config, len(record["classes"]))
    model.load_state_dict(torch.load(needed[2], map_location="cpu", weights_only=False)["model"])
    model = model.to(device, memory_format=torch.channels_last if config["channels_last"] else torch.preserve_format).eval()
    mean, std = torch.tensor(record["mean"]), torch.tensor(record["std"])
    _, centre, whole = transforms(record["image_size"], mean, torch.ones(3) if record["mean_only"] else std, None, config)
    centre = functools.partial(centre, generator=None)  # the loaders' transforms take one; a test patch draws nothing
    return TrainedRun(model, tuple(record["classes"]), record["image_size"], centre, whole, amp_dtype(device, config["amp"]))


@torch.no_grad()
def probabilities(model: torch.nn.Module, images: torch.Tensor, transform, *, ten_crop: int | None = None,
                  batch_size: int = 64, amp_dtype: torch.dtype | None = None) -> torch.Tensor:
    """Softmax outputs (N x classes, fp32, on the CPU) for uint8 `images`, in batches, in eval mode:
    `transform` gives the model's input, or with `ten_crop=size` whole images whose ten patches are averaged."""
    device = next(model.parameters()).device
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        x = transform(images[start:start + batch_size].to(device))
        if ten_crop is None:
            with autocast(device, amp_dtype):
                out.append(model(x).float().softmax(dim=1).cpu())
        else:
            out.append(ten_patch_probabilities(model, x, ten_crop, amp_dtype).mean(dim=0).cpu())
    return torch.cat(out)


def top5_of(probs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, classes) of the five most probable classes per row, most probable first (all of
    them when there are fewer than five)."""
    return probs.topk(min(5, probs.shape[1]), dim=1)


def top5(model: torch.nn.Module, images: torch.Tensor, transform, amp_dtype: torch.dtype | None = None, *,
         ten_crop: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(probabilities, classes) of the five most probable classes per image, most probable first, on the CPU."""
    return top5_of(probabilities(model, images, transform, ten_crop=ten_crop, amp_dtype=amp_dtype))


def confusion(probs: torch.Tensor, labels: torch.Tensor, classes) -> pd.DataFrame:
    """Counts of true class (rows) against the most probable class (columns), every class shown."""
    names = pd.Categorical.from_codes
    return pd.crosstab(names(labels.tolist(), list(classes)), names(probs.argmax(dim=1).tolist(), list(classes)),
                       rownames=["true"], colnames=["predicted"], dropna=False)


def errors(probs: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Top-1 and top-5 error (%) of the predictions `probs` (N x classes) against the true labels."""
    top1, top5 = topk_errors(probs, labels).tolist()
    return {"top1": 100 * top1 / len(labels), "top5": 100 * top5 / len(labels)}


def lines(name: str, probs: torch.Tensor, classes: torch.Tensor, names) -> list[str]:
    """One image's answer as the command prints it: its name, then a line per class, most probable first."""
    return [name, *(f"  {p:6.1%}  {names[c]}" for p, c in zip(probs.tolist(), classes.tolist()))]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="alexnet-book-predict", description=__doc__.splitlines()[0])
    parser.add_argument("--run", required=True, type=Path, help="the --out folder of `alexnet-book-train --images`")
    parser.add_argument("images", nargs="+", type=Path, help="image files, any size (resized as in training)")
    parser.add_argument("--ten-patch", action="store_true", help="average the ten 224 patches (section 4.1), not the centre one")
    parser.add_argument("--device", help="default: $ALEXNET_BOOK_DEVICE, else cuda, mps, cpu")
    parser.add_argument("--debug", action="store_true", help="show the traceback of an error, not just its message")
    args = parser.parse_args(argv)
    try:
        trained = load_run(args.run, args.device)
        probs, classes = trained.top5(folders.load_images(args.images, trained.image_size), args.ten_patch)
    except (DataError, ValueError) as error:
        if args.debug:
            raise
        print(f"alexnet-book-predict: error: {error}", file=sys.stderr)
        return 2
    for path, p, c in zip(args.images, probs, classes):
        print("\n".join(lines(str(shown(path)), p, c, trained.classes)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
