"""make gpu-check on a machine without a GPU: every check skips, the run finishes and writes its json."""

import json

import pytest
import torch

from alexnet_book import gpucheck


@pytest.mark.skipif(torch.cuda.is_available(), reason="with a GPU, `make gpu-check` runs the checks for real")
def test_gpu_check_skips_every_cuda_check_on_cpu(tmp_path, capsys):
    assert gpucheck.main() == 0
    record = json.loads((tmp_path / "results" / "gpu-check" / "gpu-check.json").read_text())
    assert [row["check"] for row in record["checks"]] == [check.__name__ for check in gpucheck.CHECKS]
    assert {row["status"] for row in record["checks"]} == {"skip"}
    assert "SKIP two_towers_on_two_gpus: needs 2 GPU(s), this machine has 0" in capsys.readouterr().out


def test_a_failing_check_is_reported_not_raised(capsys):
    def broken():
        raise AssertionError("12 host syncs")

    rows = gpucheck.run_checks([broken])
    assert rows[0]["status"] == "fail" and "12 host syncs" in rows[0]["detail"]
    assert capsys.readouterr().out.startswith("FAIL broken: AssertionError: 12 host syncs")
