import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test writes its caches and results under its own tmp_path."""
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("ALEXNET_BOOK_PROFILE", raising=False)
    monkeypatch.delenv("ALEXNET_BOOK_DOWNLOAD", raising=False)
