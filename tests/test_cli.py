"""The full-training command (python -m alexnet_book.train): logs, checkpoints, resume after a
kill or a Ctrl-C, and fit's mid-epoch stop underneath. Tiny AlexNets on smoke data, seconds each."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from alexnet_book import data, engine, paper_runs, train
from alexnet_book.augment import Normalize, TrainTransform
from alexnet_book.loaders import TensorLoader
from alexnet_book.profiles import Budget, get_profile
from alexnet_book.backend import seed_everything

EPOCHS = 6
# A tiny AlexNet (kernels 6-16-24-24-16, fc 32) on 96 synthetic images: 6 steps an epoch. On the CPU
# even on a GPU machine: a resume is bit-identical on the CPU (engine.fit); on CUDA, cuDNN may pick other
# kernels in another process (make gpu-check resumes on CUDA).
TINY = ["--profile", "smoke", "--epochs", str(EPOCHS), "--train-size", "96", "--val-size", "32", "--test-size", "32",
        "--batch-size", "16", "--width", "0.0625", "--fc-size", "32", "--lr", "0.02", "--device", "cpu"]


def run_cli(args: list[str]) -> subprocess.Popen:
    # the in-process runs' thread count: CPU kernels reduce in a different order with another count
    env = {**os.environ, "OMP_NUM_THREADS": str(torch.get_num_threads())}
    return subprocess.Popen([sys.executable, "-m", "alexnet_book.train", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def wait_for(path: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until `path` exists; fail (with the run's output) if the run ends first or time runs out."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended (code {proc.returncode}) before writing {path}:\n{proc.communicate()[1]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"no {path} after {timeout} s")
        time.sleep(0.02)


def weights(out: Path) -> dict[str, torch.Tensor]:
    return torch.load(out / "checkpoint.pt", weights_only=False)["model"]


def assert_same_run(out: Path, reference: Path) -> None:
    """Bit-identical final weights, and the same per-epoch history apart from the timings."""
    ours, theirs = weights(out), weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    timing = ["seconds", "img_per_s"]
    pd.testing.assert_frame_equal(pd.read_csv(out / "history.csv").drop(columns=timing),
                                  pd.read_csv(reference / "history.csv").drop(columns=timing))


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted run, in this process: what the interrupted runs must end with."""
    out = tmp_path_factory.mktemp("reference")
    assert train.main([*TINY, "--out", str(out)]) == 0
    return out


def test_a_run_writes_history_record_and_checkpoint(reference):
    history = pd.read_csv(reference / "history.csv")
    assert history["epoch"].tolist() == list(range(1, EPOCHS + 1))
    assert {"train_top1", "val_top1", "val_top5", "lr", "img_per_s"} <= set(history.columns)
    assert not any(column.startswith("test") for column in history.columns)  # its held-out set is named val
    assert (history["img_per_s"] > 0).all()
    record = json.loads((reference / "run.json").read_text())
    assert record["profile"] == "smoke" and record["git"] and record["versions"]["torch"] == torch.__version__
    assert set(record["final"]) == {"centre_top1", "centre_top5", "ten_top1", "ten_top5"}
    assert all(0 <= v <= 100 for v in record["final"].values())
    assert record["config"]["batch_size"] == 16 and record["config"]["width"] == 0.0625
    assert len(record["history"]) == EPOCHS and all(row["img_per_s"] > 0 for row in record["history"])
    # the model learnt something: synthetic shapes are easy
    assert history["train_loss"].iloc[-1] < history["train_loss"].iloc[0]


def test_sigkill_after_the_first_checkpoint_then_rerun_is_bit_identical(reference, tmp_path):
    out = tmp_path / "killed"
    proc = run_cli([*TINY, "--out", str(out)])
    wait_for(out / "checkpoint.pt", proc)
    proc.kill()  # SIGKILL: no handler runs, only the epoch checkpoint is left
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] < EPOCHS - 1, "the run finished before the kill; the test proves nothing"
    assert train.main([*TINY, "--out", str(out)]) == 0  # the rerun resumes
    assert_same_run(out, reference)


def test_ctrl_c_saves_a_checkpoint_and_the_rerun_finishes_bit_identical(reference, tmp_path):
    out = tmp_path / "interrupted"
    proc = run_cli([*TINY, "--out", str(out)])
    wait_for(out / "checkpoint.pt", proc)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "checkpoint saved" in stderr
    saved = torch.load(out / "checkpoint.pt", weights_only=False)
    assert saved["epoch"] < EPOCHS - 1 and not (out / "run.json").exists()
    assert train.main([*TINY, "--out", str(out)]) == 0
    assert_same_run(out, reference)


def test_changed_settings_refuse_to_resume_unless_fresh(reference, tmp_path, capsys):
    out = tmp_path / "run"
    args = [*TINY, "--epochs", "1", "--train-size", "32", "--out", str(out)]
    assert train.main(args) == 0
    assert train.main([*args, "--lr", "0.1"]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("alexnet-book-train: error: ") and "other settings (lr)" in last and "--fresh" in last
    assert train.main([*args, "--lr", "0.1", "--fresh"]) == 0
    assert json.loads((out / "config.json").read_text())["lr"] == 0.1
    assert train.main([*args, "--lr", "0.1", "--epochs", "2"]) == 0  # more epochs: resumes
    assert pd.read_csv(out / "history.csv")["epoch"].tolist() == [1, 2]


def test_a_checkpoint_scheduled_on_the_test_split_is_not_resumed(tmp_path, capsys):
    out = tmp_path / "v1"
    args = [*TINY, "--epochs", "1", "--train-size", "32", "--out", str(out)]
    assert train.main(args) == 0
    config = json.loads((out / "config.json").read_text())
    del config["schedule_split"]  # as protocol v1 wrote it
    (out / "config.json").write_text(json.dumps(config))
    assert train.main(args) == 2
    assert "other settings (schedule_split)" in capsys.readouterr().err


def test_validation_images_are_training_images_held_out_of_training():
    """The command's validation split comes from the training split, outside the training subset (the training
    subset is the one a section experiment of that size trains on); its test set is the test split."""
    smoke = get_profile("smoke")
    config = train.resolve_config(train.parse_args([*TINY, "--out", "unused"]), torch.device("cpu"))
    sets, _, _ = train.memory_sets(smoke, config)
    full, test_split = data.load_dataset(smoke, "train"), data.load_dataset(smoke, "test")
    rows = {tuple(image.flatten().tolist()) for image in full.images}
    assert (len(sets.train), len(sets.val), len(sets.test)) == (96, 32, 32)
    assert all(tuple(image.flatten().tolist()) in rows for image in sets.val.images)
    assert not {tuple(i.flatten().tolist()) for i in sets.val.images} & {tuple(i.flatten().tolist()) for i in sets.train.images}
    assert torch.equal(sets.test.images, test_split.subset(32, smoke.seed).images)
    section = data.experiment_data(smoke, Budget(train_size=96))  # its validation split is another size (300)
    assert torch.equal(sets.train.images, section.train.images) and len(section.val) != len(sets.val)


def test_the_schedule_and_the_history_never_read_the_test_images(tmp_path, monkeypatch):
    """Issue 32 for the training command: a run whose test images carry wrong labels trains exactly as one with the
    right labels, epoch by epoch, learning-rate drops included; only the final ten-patch report differs."""
    args = [*TINY, "--epochs", "4", "--patience", "0", "--lr", "0.05"]
    assert train.main([*args, "--out", str(tmp_path / "right")]) == 0
    load = data.load_dataset

    def wrong_test_labels(profile, split="train", root=None, limit=None):
        images = load(profile, split, root, limit)
        return images if split == "train" else data.ImageSet(images.images, (images.labels + 1) % 10, images.classes)

    monkeypatch.setattr(data, "load_dataset", wrong_test_labels)
    assert train.main([*args, "--out", str(tmp_path / "wrong")]) == 0
    right, wrong = (pd.read_csv(tmp_path / run / "history.csv").drop(columns=["seconds", "img_per_s"])
                    for run in ("right", "wrong"))
    pd.testing.assert_frame_equal(right, wrong)
    assert right["lr"].nunique() > 1, "no learning-rate drop: the test proves nothing about the schedule"
    finals = [json.loads((tmp_path / run / "run.json").read_text())["final"]["ten_top1"] for run in ("right", "wrong")]
    assert finals[0] != finals[1]


@pytest.mark.parametrize("flags, code, message", [
    (["--profile", "huge"], 2, "unknown profile 'huge'; valid profiles: smoke, cifar, imagenet"),
    (["--profile", "cifar", "--data-root", "/nonexistent"], 2, "CIFAR-10 not found. Looked in:"),
    (["--lr", "1e30"], 1, "loss became"),
])
def test_errors_end_in_one_line_and_an_exit_code(tmp_path, capsys, monkeypatch, flags, code, message):
    monkeypatch.delenv("ALEXNET_BOOK_DATA", raising=False)
    args = [*TINY, "--epochs", "1", "--train-size", "32", "--out", str(tmp_path / "run"), *flags]
    assert train.main(args) == code
    err = capsys.readouterr().err
    assert f"alexnet-book-train: error: {message}" in err and "Traceback" not in err
    with pytest.raises(Exception):  # --debug keeps the traceback
        train.main([*args, "--debug", "--fresh"])


def test_benchmark_measures_loader_and_model_separately(tmp_path):
    assert train.main([*TINY, "--benchmark", "--out", str(tmp_path)]) == 0
    speed = json.loads((tmp_path / "benchmark.json").read_text())
    assert speed["loader"]["img_per_s"] > 0 and speed["model"]["img_per_s"] > 0
    assert speed["model"]["images"] == 5 * 16  # five timed steps after the warm-up
    assert not (tmp_path / "checkpoint.pt").exists()


def test_help_names_the_speed_and_model_options(capsys):
    with pytest.raises(SystemExit) as done:
        train.main(["--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--amp", "--channels-last", "--compile", "--groups", "--width", "--fresh", "--out"):
        assert flag in text


# ------------------------------------------------------------------ fit's stop, in process


def small_net():
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Dropout(0.5), nn.Linear(4 * 12 * 12, 10))


def stopped_at(step: int):
    """A stop request that comes true after `step` training steps (counting from the first call)."""
    calls = 0

    def stop() -> bool:
        nonlocal calls
        calls += 1
        return calls == step

    return stop


def run_fit(checkpoint, stop=None, epochs=3):
    seed_everything(0)
    train_set = data.synthetic(96, size=24)
    normalize = Normalize.from_images(train_set.images)
    # random crops, flips and lighting: the resumed epoch must draw exactly what the straight one drew
    transform = TrainTransform(normalize, crop=24, padding=2, lighting=(torch.ones(3) * 0.01, torch.eye(3)))
    loader = TensorLoader(train_set, 16, shuffle=True, transform=transform, drop_last=True)
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 1, gamma=0.5)
    history = engine.fit(model, loader, optimizer=optimizer, scheduler=scheduler, epochs=epochs,
                         options=engine.FitOptions(checkpoint=checkpoint, progress=False, stop=stop))
    return model, history


def test_a_stop_mid_epoch_checkpoints_the_position_and_resumes_bit_identical(tmp_path):
    straight, straight_history = run_fit(None)
    ckpt = tmp_path / "run.pt"
    with pytest.raises(engine.Interrupted, match="epoch 1, step 3"):
        run_fit(ckpt, stop=stopped_at(6 + 1 + 3))  # six steps and the end-of-epoch check, then 3 steps
    saved = torch.load(ckpt, weights_only=False)
    assert saved["epoch"] == 0 and saved["partial"]["step"] == 3 and saved["loader"]["step"] == 3
    seed_everything(123)  # a different process state must not matter
    resumed, resumed_history = run_fit(ckpt)
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    pd.testing.assert_frame_equal(resumed_history.drop(columns="seconds"), straight_history.drop(columns="seconds"))


def test_a_stop_between_epochs_keeps_the_epoch_checkpoint(tmp_path):
    ckpt = tmp_path / "run.pt"
    with pytest.raises(engine.Interrupted, match="epoch 1, step 0"):
        run_fit(ckpt, stop=stopped_at(6 + 1))  # the check at the end of epoch 0
    saved = torch.load(ckpt, weights_only=False)
    assert saved["epoch"] == 0 and saved.get("partial") is None


def test_the_cuda_budget_applies_on_cuda_only():
    args = train.parse_args(["--profile", "cifar"])
    on_gpu, on_cpu = (train.resolve_config(args, torch.device(kind)) for kind in ("cuda", "cpu"))
    cifar = get_profile("cifar")
    gpu, cpu = cifar.budget("08_full_training", "cuda"), cifar.budget("08_full_training", "cpu")
    assert (on_gpu["epochs"], on_gpu["train_size"]) == (gpu.epochs, None) and gpu.epochs != cpu.epochs
    assert (on_cpu["epochs"], on_cpu["train_size"]) == (cpu.epochs, cpu.train_size) and cpu.train_size is not None


def test_a_run_leaves_cudnn_benchmark_as_it_found_it(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)  # a CPU run turns it off for itself
    monkeypatch.setattr(train, "train", lambda config, device: seen.append(torch.backends.cudnn.benchmark) or 0)
    assert train.main([*TINY, "--out", str(tmp_path / "run")]) == 0
    assert seen == [False] and torch.backends.cudnn.benchmark is True


def test_run_seeds_trains_each_seed_into_its_own_folder_and_says_which_failed(tmp_path):
    short = [*TINY[:2], "--epochs", "2", *TINY[4:]]
    records = paper_runs.run_seeds(short, tmp_path / "net", seeds=(0, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net-seed0", "net-seed1"]
    assert [records[s]["config"]["seed"] for s in (0, 1)] == [0, 1]
    assert not torch.equal(weights(tmp_path / "net-seed0")["features.conv1.weight"],
                           weights(tmp_path / "net-seed1")["features.conv1.weight"])
    row = paper_runs.run_summary(records[1])
    assert row["epochs"] == 2 and row["train img/s"] > 0 and row["ten_top1"] == records[1]["final"]["ten_top1"]
    rerun = paper_runs.run_seeds(short, tmp_path / "net", seeds=(1,))  # finished: resumes only to evaluate
    assert paper_runs.run_summary(rerun[1])["train hours"] == row["train hours"] > 0
    with pytest.raises(RuntimeError, match="net-seed2: training stopped with status 2"):
        paper_runs.run_seeds([*short, "--profile", "nope"], tmp_path / "net", seeds=(2,))


def test_budget_args_hand_a_profile_budget_to_the_command():
    budget = get_profile("smoke").budget("08_full_training", "cpu")
    args = train.parse_args(["--profile", "smoke", *paper_runs.budget_args(budget)])
    assert (args.epochs, args.batch_size) == (budget.epochs, budget.batch_size)
    assert args.train_size == (budget.train_size or 0) and args.test_size == (budget.test_size or 0)
    assert args.val_size == args.test_size  # as many held-out training images as test images
    cuda = train.parse_args(paper_runs.budget_args(get_profile("cifar").budget("08_full_training", "cuda")))
    assert (cuda.train_size, cuda.val_size, cuda.test_size) == (0, 0, 0)  # all 45,000, the profile's 5,000, all 10,000
