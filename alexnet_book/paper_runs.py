"""The paper's AlexNet trained through the command line (`python -m alexnet_book.train`), once per seed,
and the claims its runs measure (notebook 08): C2, two GPUs against one, and C10, the ILSVRC error.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from . import claims, train
from .experiment import spread


def budget_args(budget) -> list[str]:
    """A profile's budget as the flags of `python -m alexnet_book.train` (size 0: every image). The budget's
    held-out size sizes both held-out sets: that many training images held out as the validation split, which
    the schedule reads, and that many test images, which the final ten-patch pass reports on (0: the profile's
    validation split, every test image)."""
    held_out = str(budget.test_size or 0)
    return ["--epochs", str(budget.epochs), "--batch-size", str(budget.batch_size),
            "--train-size", str(budget.train_size or 0), "--val-size", held_out, "--test-size", held_out]


def run_seeds(argv: list[str], out: Path, seeds) -> dict[int, dict]:
    """`train.main(argv)` (the command line) once per seed, each into its own folder `<out>-seed<s>` so
    that a rerun resumes every seed from its own checkpoint; each seed's run.json record."""
    records = {}
    for seed in seeds:
        folder = out.with_name(f"{out.name}-seed{seed}")
        status = train.main([*argv, "--out", str(folder), "--seed", str(seed)])
        if status != 0:  # 130: interrupted, resumable; 1 or 2: the command printed why (a diverged run, a setting)
            advice = "run it again to resume from its checkpoint" if status == 130 else "its error is printed above"
            raise RuntimeError(f"{folder.name}: training stopped with status {status}; {advice}")
        records[seed] = json.loads((folder / "run.json").read_text())
    return records


def histories(records: dict[tuple[str, int], dict]) -> pd.DataFrame:
    """Every run's per-epoch history ({(net, seed): run.json record}) as one frame, with variant and seed, and
    the plateau_drops and patience its schedule ran with (regime.converged reads them). Its val_* columns are
    the CLI's held-out images, which the schedule read."""
    return pd.concat([pd.DataFrame(r["history"]).assign(variant=net, seed=seed, plateau_drops=r["config"]["plateau_drops"],
                                                        patience=r["config"]["patience"])
                      for (net, seed), r in records.items()], ignore_index=True)


def run_summary(record: dict) -> dict:
    """One run.json as a table row: its ten-patch errors, epochs, training hours and median training speed.

    The hours sum the history's per-epoch training seconds, which the checkpoint carries: run.json's
    wall_time_s is only the last process's, and a run resumed just to evaluate would show minutes."""
    history = pd.DataFrame(record["history"])
    return {**record["final"], "epochs": len(history), "train hours": history["seconds"].sum() / 3600,
            "train img/s": history["img_per_s"].median()}


def net_gain(final: pd.DataFrame, worse: str, better: str, column: str = "ten_top1") -> dict:
    """How much lower `column` ends for net `better` than for `worse`, seed by seed, from run_summary's
    rows indexed by (net, seed), as mean, std and n."""
    by_net = final[column].unstack("net")
    return spread(by_net[worse] - by_net[better])


def c10_entry(final: pd.DataFrame, net: str, profile) -> dict:
    """C10's claim entry (run.results.claim's arguments) from `net`'s ten-patch errors, mean over seeds:
    judged on ILSVRC (the imagenet profile); elsewhere not measured, the profile's numbers in the note."""
    errors = final.xs(net, level="net").mean()
    imagenet = profile.dataset == "imagenet"
    verdict, rule, note, _ = claims.c10_imagenet_error(errors.ten_top1, errors.ten_top5, imagenet)  # no threshold range
    if imagenet:
        return dict(measured=f"{errors.ten_top1:.1f} / {errors.ten_top5:.1f}", verdict=verdict, rule=rule,
                    unit="% top-1 / top-5 error", note=note)
    images = "CIFAR-10" if profile.dataset == "cifar10" else "synthetic images"
    return dict(measured=None, verdict=verdict, rule=rule, unit="",
                note=(f"{note}: {profile.name} gives {errors.ten_top1:.1f}% / {errors.ten_top5:.1f}% top-1/top-5 on "
                      f"{images}, not comparable; needs about 90 epochs over 1.28M ILSVRC images on GPUs"))
