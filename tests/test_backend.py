"""backend: the autocast dtype follows what the device runs fast, and a profile can still force one."""

import os
import subprocess
import sys

import pytest
import torch

from alexnet_book import backend

AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def test_auto_picks_bf16_only_where_the_device_runs_it_fast(monkeypatch):
    monkeypatch.delenv(backend.AMP_ENV, raising=False)
    cpu = torch.device("cpu")
    monkeypatch.setattr(backend, "cpu_runs_bf16_natively", lambda: True)
    assert backend.amp_dtype(cpu, "auto") is torch.bfloat16
    monkeypatch.setattr(backend, "cpu_runs_bf16_natively", lambda: False)
    assert backend.amp_dtype(cpu, "auto") is None
    assert backend.amp_dtype(torch.device("mps"), "auto") is None  # no bf16 arithmetic before Apple's M3: fp32


def test_a_profile_or_the_environment_forces_a_dtype(monkeypatch):
    monkeypatch.delenv(backend.AMP_ENV, raising=False)
    monkeypatch.setattr(backend, "cpu_runs_bf16_natively", lambda: False)
    cpu = torch.device("cpu")
    assert backend.amp_dtype(cpu, "bfloat16") is torch.bfloat16
    assert backend.amp_dtype(cpu, "float32") is None and backend.amp_dtype(cpu, None) is None
    monkeypatch.setenv(backend.AMP_ENV, "bfloat16")
    assert backend.amp_dtype(cpu, "float32") is torch.bfloat16
    monkeypatch.setenv(backend.AMP_ENV, "fp8")
    with pytest.raises(ValueError, match="auto, bfloat16, float32"):
        backend.amp_dtype(cpu, "auto")


def test_the_avx2_emulation_reads_as_a_cpu_without_native_bf16():
    code = "from alexnet_book import backend; print(backend.cpu_runs_bf16_natively())"
    out = subprocess.run([sys.executable, "-c", code], env={**os.environ, **AVX2}, capture_output=True, text=True,
                         check=True).stdout.split()[-1]
    assert out == "False"


def test_dtype_names_as_results_record_them():
    assert backend.dtype_name(None) == "float32" and backend.dtype_name(torch.bfloat16) == "bfloat16"


def test_setup_records_the_chosen_dtype(tmp_path, monkeypatch, capsys):
    from alexnet_book.runtime import setup

    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(tmp_path))
    monkeypatch.setenv(backend.AMP_ENV, "bfloat16")
    run = setup("00_setup", "smoke")
    assert run.amp_dtype is torch.bfloat16 and run.results.record["dtype"] == "bfloat16"
    assert "dtype    bfloat16" in capsys.readouterr().out
