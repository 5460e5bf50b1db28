import json

from alexnet_book import report
from alexnet_book.results import REPO


def test_readme_results_match_what_the_committed_results_generate(monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(REPO / "results"))
    readme = (REPO / "README.md").read_text()
    assert report.START in readme and report.END in readme, "README.md has no generated results section"
    committed = report.START + readme.split(report.START, 1)[1].split(report.END, 1)[0] + report.END
    assert committed == report.readme_block("cifar"), "README.md's results are stale: run `make report`"


def test_block_lists_every_claim_the_figures_that_exist_and_the_run_time(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(tmp_path))
    nb = tmp_path / "cifar" / "02_relu_vs_tanh"
    nb.mkdir(parents=True)
    (nb / "figure1.png").write_bytes(b"png")
    run = {"device": "cpu: test", "versions": {"torch": "2", "python": "3.11"}, "git": "abc", "seeds": [0], "wall_time_s": 1,
           "budget": {"epochs": 15, "train_size": 10_000, "seeds": [0, 1, 2]}}
    claim = {"id": "C1", "measured": 1.5, "spread": 0.1, "n": 3, "unit": "x", "verdict": "partly", "rule": "r", "note": ""}
    (nb / "metrics.json").write_text(json.dumps({"run": run, "metrics": {}, "claims": [claim]}))
    (tmp_path / "cifar" / "reproduce.json").write_text(json.dumps({"02_relu_vs_tanh": 120.0}))
    block = report.readme_block("cifar")
    assert block.startswith(report.START) and block.endswith(report.END)
    assert all(f"| C{i} |" in block for i in range(1, 14))
    assert "1 partly" in block and "12 not measured yet" in block
    assert "figure1.png" in block and "lrn_ablation.png" not in block  # only figures that exist
    assert "took 2 minutes of notebook time on cpu: test" in block
    assert ("- **C1** (02_relu_vs_tanh): regime: every run crosses every training-error line it is judged at (20, 25 and 30%); "
            "15 epoch(s) on 10,000 training images, 3 seeds") in block
    # a notebook continued from its checkpoints: its last process took 1 s, the book's record says 2 minutes
    records = report.run_records(tmp_path / "cifar")
    assert records[["notebook_min", "last_process_s"]].values.tolist() == [[2.0, 1]]


def test_with_block_replaces_only_the_generated_part():
    readme = f"intro\n{report.START}\nold\n{report.END}\nafter\n## Layout\nx\n"
    assert report.with_block(readme, "NEW") == "intro\nNEW\nafter\n## Layout\nx\n"
    fresh = report.with_block("intro\n## The two commands\nx\n", "NEW")
    assert fresh == "intro\n## Paper vs reproduced (cifar profile)\n\nNEW\n\n## The two commands\nx\n"


def test_write_claims_says_where_relative_to_the_checkout(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("alexnet_book.results.REPO", tmp_path)  # the checkout, as results.shown sees it
    report.write_claims(tmp_path / "results" / "cifar")
    out = capsys.readouterr().out
    assert "wrote results/cifar/claims.csv and results/cifar/claims.md" in out and str(tmp_path) not in out


def test_the_key_figures_are_shown_as_saved_each_under_its_caption(tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr("IPython.display.display", lambda *objects: shown.append(objects))
    nb = tmp_path / "02_relu_vs_tanh"
    nb.mkdir()
    (nb / "figure1.png").write_bytes(b"\x89PNG\r\n\x1a\nsaved")
    images = report.show_key_figures(tmp_path)
    assert [image.data for image in images] == [b"\x89PNG\r\n\x1a\nsaved"]  # the file itself: nothing redrawn
    assert "Figure 1 redrawn" in shown[0][0].data and shown[0][1] is images[0]


def test_every_committed_key_figure_is_small_enough_to_show_in_the_report():
    cifar = REPO / "results" / "cifar"
    sizes = {path: (cifar / path).stat().st_size for path in report.key_figures(cifar)}
    assert sizes and not {p: n for p, n in sizes.items() if n > report.KEY_FIGURE_MAX_BYTES}


def c2_run(tmp_path, verdict):
    """A cifar profile whose notebook 08 judged C2 `verdict` and saved its learning curves."""
    nb = tmp_path / "cifar" / "08_full_training"
    nb.mkdir(parents=True, exist_ok=True)
    (nb / "learning_curves.png").write_bytes(b"png")
    run = {"budget": {"epochs": 3, "train_size": 4_000, "seeds": [0, 1]}}
    claim = {"id": "C2", "measured": 4.2, "n": 2, "unit": "points", "verdict": verdict, "rule": "r", "note": ""}
    (nb / "metrics.json").write_text(json.dumps({"run": run, "metrics": {}, "claims": [claim]}))


def test_c2s_learning_curves_are_withheld_while_c2_is_undecided(tmp_path, monkeypatch):
    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(tmp_path))
    c2_run(tmp_path, "inconclusive at this budget")
    block = report.readme_block("cifar")
    assert "![" not in block and "no figure here: C2 is inconclusive at this budget" in block
    assert report.key_figures(tmp_path / "cifar") == {}  # notebook 11 leaves it out too
    c2_run(tmp_path, "reproduced")
    assert "![the paper's AlexNet: two GPUs vs one (C2)](results/cifar/08_full_training/learning_curves.png)" \
        in report.readme_block("cifar").replace(str(tmp_path) + "/", "results/")


def test_a_bootstrap_row_shows_its_interval_not_the_per_image_sd():
    """A paired difference over test images is -100, 0 or +100 per image: its SD (~23 for a 5-point gain) is
    no spread a reader can set beside the mean, so the row shows the mean and the bootstrap interval."""
    interval = {"n": 10_000, "counts": "test images", "kind": "paired bootstrap (BCa)", "low": 4.84, "high": 5.74}
    entry = {"measured": 5.28, "spread": 22.86, "unit": "points", "interval": interval}
    assert report.format_value(entry) == "5.28 points (n=10,000 test images; 95% CI 4.84 to 5.74)"
    over_seeds = {**entry, "spread": 2.04, "interval": {**interval, "n": 5, "counts": "seeds", "kind": "Student t"}}
    assert report.format_value(over_seeds) == "5.28 ± 2 points (n=5 seeds; 95% CI 4.84 to 5.74)"
