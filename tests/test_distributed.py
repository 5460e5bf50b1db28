"""Data parallelism: how batches are sharded over ranks, and two gloo processes on CPU (torchrun)
against one process at the same global batch."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from alexnet_book import data, distributed, train
from alexnet_book.backend import seed_everything
from alexnet_book.loaders import TensorLoader, shard


def numbered(n: int) -> data.ImageSet:
    """n blank images whose labels are their indices, so a batch shows which images it holds."""
    return data.ImageSet(torch.zeros(n, 3, 2, 2, dtype=torch.uint8), torch.arange(n), ())


@pytest.mark.parametrize("saved, rank, expected", [
    (["r0", "r1"], 1, "r1"),
    (["r0", "r1"], 3, None),  # a run resumed on more ranks: rank 3 must not take rank 1's generator state
    ({"state": "one process"}, 0, {"state": "one process"}),
    ({"state": "one process"}, 1, None),
])
def test_each_rank_takes_its_own_saved_state_or_none(monkeypatch, saved, rank, expected):
    monkeypatch.setattr(distributed, "rank", lambda: rank)
    assert distributed.own(saved) == expected


def test_a_mid_epoch_position_saved_on_another_device_type_resumes_with_a_warning():
    def noisy(x, generator):
        return x.float() + torch.rand(x.shape, generator=generator, device=x.device)

    loader = TensorLoader(numbered(8), 2, shuffle=True, transform=noisy)
    batches = iter(loader)
    next(batches)
    state = {**loader.state_dict(), "generator": torch.zeros(16, dtype=torch.uint8), "generator_device": "cuda"}
    loader.load_state_dict(state)
    with pytest.warns(UserWarning, match="saved on cuda"):
        rest = [y.tolist() for _, y in loader]
    full = [y.tolist() for _, y in TensorLoader(numbered(8), 2, shuffle=True)]
    assert rest == full[1:]  # the order goes on where it stopped; only the augmentation draws differ


def test_the_ranks_kth_batches_together_are_one_process_kth_batch():
    images = numbered(37)  # not a multiple of anything: the shards are cut to 36
    one = TensorLoader(images, 8, shuffle=True, seed=3, drop_last=True)
    ranks = [TensorLoader(images, 4, shuffle=True, seed=3, drop_last=True, rank=r, world_size=2) for r in (0, 1)]
    for loader in (one, *ranks):
        loader.set_epoch(5)
    assert len(one) == len(ranks[0]) == len(ranks[1]) == 4  # every rank takes the same number of steps
    for (_, whole), (_, a), (_, b) in zip(one, *ranks):
        assert len(a) == len(b) == 4 and not set(a.tolist()) & set(b.tolist())
        assert sorted(torch.cat([a, b]).tolist()) == sorted(whole.tolist())


def test_evaluation_shards_count_every_image_once():
    images = numbered(37)
    seen = [y for r in range(3) for _, y in TensorLoader(images, 5, rank=r, world_size=3)]
    assert sorted(torch.cat(seen).tolist()) == list(range(37))


def test_shard_matches_torch_distributed_sampler():
    order = torch.randperm(23, generator=torch.Generator().manual_seed(0))
    sampler = torch.utils.data.DistributedSampler(range(23), num_replicas=3, rank=1, shuffle=False, drop_last=True)
    expected = [order[i].item() for i in sampler]  # the sampler's positions, applied to the same order
    assert shard(order, 1, 3, drop_last=True).tolist() == expected


TINY = ["--profile", "smoke", "--epochs", "1", "--train-size", "64", "--test-size", "32", "--batch-size", "16",
        "--width", "0.0625", "--fc-size", "32", "--lr", "0.05", "--amp", "float32", "--device", "cpu",
        # the same arithmetic in both runs: no dropout masks and no random crops, which differ per rank;
        # PyTorch's init keeps this tiny net's activations small: with He's (the default) a ReLU flips sign
        # within four steps and the runs part by ~0.4% of the step, more than rounding
        "--dropout", "0", "--augment", "none", "--init", "torch"]


@pytest.mark.parametrize("groups", [1, 2])
def test_alexnet_has_no_buffers_so_ddp_syncs_nothing_in_forward(groups):
    from alexnet_book.model import AlexNet

    assert not list(AlexNet(groups=groups).buffers())  # distributed.wrap relies on it: evaluation needs no collective


def test_two_gloo_processes_reach_the_weights_of_one_at_the_same_global_batch(tmp_path):
    two, one = tmp_path / "two", tmp_path / "one"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               "-m", "alexnet_book.train", *TINY, "--out", str(two)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-4000:]
    assert train.main([*TINY, "--out", str(one)]) == 0

    config = json.loads((one / "config.json").read_text())
    assert json.loads((two / "config.json").read_text())["world_size"] == 2 and config["world_size"] == 1
    seed_everything(config["seed"])
    start = train.make_model(config, 10).state_dict()  # the init both runs began from
    w1 = torch.load(one / "checkpoint.pt", weights_only=False)["model"]
    w2 = torch.load(two / "checkpoint.pt", weights_only=False)["model"]
    moved = max((w1[k] - start[k]).abs().max().item() for k in w1)
    apart = max((w1[k] - w2[k]).abs().max().item() for k in w1)
    # four steps of training, the same to rounding: gloo sums the two halves' gradients in another order than
    # one process's batch, so the weights differ by roundings, measured against how far training moved them
    assert moved > 1e-2 and apart < 1e-4 * moved

    # the logged metrics are every rank's together, not rank 0's half
    h1, h2 = pd.read_csv(one / "history.csv"), pd.read_csv(two / "history.csv")
    columns = ["train_loss", "train_top1", "val_loss", "val_top1", "val_top5"]
    pd.testing.assert_frame_equal(h2[columns], h1[columns], rtol=1e-4)
    final = [json.loads((out / "run.json").read_text())["final"] for out in (one, two)]
    assert final[1] == pytest.approx(final[0])


def _build_then_read(rank: int, tmp: str) -> None:
    import time

    import torch.distributed as dist

    from alexnet_book import distributed

    dist.init_process_group("gloo", init_method=f"file://{tmp}/store", rank=rank, world_size=2)
    try:
        with distributed.rank0_first():
            cache = Path(tmp, "cache.txt")
            if rank == 0:
                time.sleep(1)  # a slow download and decode: rank 1 must wait for it, not start its own
                cache.write_text("built by rank 0")
            Path(tmp, f"rank{rank}.txt").write_text(cache.read_text() if cache.exists() else "no cache yet")
    finally:
        dist.destroy_process_group()


def test_rank_0_builds_the_data_first_and_the_others_read_it(tmp_path):
    torch.multiprocessing.spawn(_build_then_read, args=(str(tmp_path),), nprocs=2)
    assert (tmp_path / "rank1.txt").read_text() == "built by rank 0"
