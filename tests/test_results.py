import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

from alexnet_book.claims import CLAIMS
from alexnet_book.report import collect_claims, to_markdown, write_claims
from alexnet_book.results import REPO, Results, shown
from alexnet_book.backend import pick_device, seed_everything
from alexnet_book.runtime import setup


def test_setup_resolves_profile_budget_and_results(tmp_path, capsys):
    run = setup("00_setup", "smoke")
    assert run.profile.name == "smoke" and run.budget == run.profile.budget("00_setup")
    assert run.results.dir == tmp_path / "results" / "smoke" / "00_setup" and run.results.dir.is_dir()
    printed = capsys.readouterr().out
    assert "profile  smoke" in printed and f"device   {pick_device().type}" in printed


def test_printed_paths_are_relative_to_the_checkout_when_inside_it(tmp_path):
    assert shown(REPO / "results" / "cifar" / "02_relu_vs_tanh") == Path("results/cifar/02_relu_vs_tanh")
    assert shown(tmp_path / "elsewhere") == tmp_path / "elsewhere"  # outside the checkout: as it is


def test_setup_rejects_unknown_profile():
    with pytest.raises(ValueError, match="valid profiles: smoke, cifar, imagenet"):
        setup("00_setup", "huge")


def test_seed_everything_repeats_random_draws():
    seed_everything(7)
    a = torch.randn(5)
    seed_everything(7)
    assert torch.equal(a, torch.randn(5))


def test_device_override(monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_DEVICE", "cpu")
    assert pick_device().type == "cpu"


def test_metrics_json_records_the_run_and_claims(tmp_path):
    results = Results("02_relu_vs_tanh", "smoke", torch.device("cpu"), seeds=(0, 1))
    results.claim("C1", 4.2, "partly", "ratio >= 3", spread=0.5, n=2, unit="x")
    results.claim("C1", 4.5, "partly", "ratio >= 3", spread=0.5, n=2, unit="x")  # replaces the first entry
    payload = results.save(epochs_to_25=[3, 18])
    written = json.loads((results.dir / "metrics.json").read_text())
    assert written == json.loads(json.dumps(payload))
    run = written["run"]
    assert run["profile"] == "smoke" and run["seeds"] == [0, 1] and run["device"].startswith("cpu")
    assert {"python", "torch", "torchvision"} <= set(run["versions"]) and "git" in run and run["wall_time_s"] >= 0
    assert written["metrics"] == {"epochs_to_25": [3, 18]}
    assert [c["measured"] for c in written["claims"]] == [4.5] and written["claims"][0]["paper"] == "6x fewer epochs"


def test_claim_rejects_unknown_ids_and_verdicts():
    results = Results("x", "smoke", torch.device("cpu"))
    with pytest.raises(ValueError, match="unknown claim id 'C14'; valid ids: C1, C2"):
        results.claim("C14", 1, "reproduced", "")
    with pytest.raises(ValueError, match="valid verdicts: reproduced, partly"):
        results.claim("C1", 1, "sort of", "")


def test_claims_table_has_every_claim_and_the_measured_ones(tmp_path):
    root = tmp_path / "results" / "smoke"
    results = Results("03_local_response_norm", "smoke", torch.device("cpu"), seeds=(0, 1, 2))
    results.claim("C4", 1.8, "partly", "gap > 0", spread=0.3, n=3, unit="pp")
    results.claim("C3", None, "not measured at this scale", "needs ImageNet", note="imagenet profile only")
    results.save()
    table = write_claims(root)
    assert table["id"].tolist() == list(CLAIMS)
    c4 = table.set_index("id").loc["C4"]
    assert c4["ours"] == "1.8 ± 0.3 pp (n=3)" and c4["verdict"] == "partly" and c4["notebook"] == "03_local_response_norm"
    assert table.set_index("id").loc["C3", ["ours", "note"]].tolist() == ["—", "imagenet profile only"]
    assert table.set_index("id").loc["C1", "verdict"] == "not measured yet"
    assert pd.read_csv(root / "claims.csv")["id"].tolist() == list(CLAIMS)
    markdown = (root / "claims.md").read_text()
    assert "[03_local_response_norm](../../notebooks/03_local_response_norm.ipynb)" in markdown
    assert markdown.count("\n") == len(CLAIMS) + 2
    assert "| verdict | note |" in markdown and "imagenet profile only" in markdown


def test_markdown_escapes_pipes():
    table = collect_claims(__import__("pathlib").Path("/nonexistent"))
    table.loc[0, "rule"] = "a | b"
    assert "a \\| b" in to_markdown(table)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="THP_MEM_ALLOC_ENABLE is read on Linux only")
def test_importing_the_book_puts_large_tensors_on_huge_pages_unless_turned_off():
    code = "import alexnet_book; from alexnet_book.results import huge_page_allocations; print(huge_page_allocations())"
    seen = {}
    for setting in (None, "0", "1"):
        env = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
        if setting is not None:
            env["THP_MEM_ALLOC_ENABLE"] = setting
        seen[setting] = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                                       check=True).stdout.strip()
    assert seen == {None: "True", "0": "False", "1": "True"}


TRAIN_TWO_STEPS = """
import hashlib, torch, alexnet_book
from alexnet_book.cifar_nets import ConvLocal
from alexnet_book.backend import seed_everything
seed_everything(0)
model = ConvLocal(lrn=True).to(memory_format=torch.channels_last)  # activations of 8-16 MB: on huge pages
optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
for _ in range(2):
    x = (60 * torch.randn(128, 3, 32, 32)).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(10, (128,)))
    optimizer.zero_grad(); loss.backward(); optimizer.step()
print(hashlib.sha1(b"".join(p.detach().numpy().tobytes() for p in model.parameters())).hexdigest())
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="THP_MEM_ALLOC_ENABLE is read on Linux only")
def test_huge_pages_leave_training_bit_identical():
    weights = [subprocess.run([sys.executable, "-c", TRAIN_TWO_STEPS], env={**os.environ, "THP_MEM_ALLOC_ENABLE": setting},
                              capture_output=True, text=True, check=True).stdout.strip() for setting in ("0", "1")]
    assert len(weights[0]) == 40 and weights[0] == weights[1]


def test_git_sha_is_dirty_only_when_the_code_changed(tmp_path, monkeypatch):
    from alexnet_book import results

    def git(*args):
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    (tmp_path / "alexnet_book").mkdir()
    (tmp_path / "results").mkdir()
    (tmp_path / "alexnet_book" / "model.py").write_text("x = 1\n")
    (tmp_path / "results" / "metrics.json").write_text("{}\n")
    git("init", "-q")
    git("add", ".")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "start")
    monkeypatch.setattr(results, "REPO", tmp_path)
    (tmp_path / "results" / "metrics.json").write_text('{"a": 1}\n')  # what a run writes
    assert not results.git_sha().endswith("+dirty")
    (tmp_path / "alexnet_book" / "model.py").write_text("x = 2\n")
    assert results.git_sha().endswith("+dirty")
