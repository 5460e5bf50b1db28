import pytest


@pytest.fixture(autouse=True)
def isolated_dirs(tmp_path, monkeypatch):
    """Every test writes its caches and results under its own tmp_path."""
    monkeypatch.setenv("ALEXNET_BOOK_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ALEXNET_BOOK_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("ALEXNET_BOOK_PROFILE", raising=False)
    monkeypatch.delenv("ALEXNET_BOOK_DOWNLOAD", raising=False)


def assert_close_in_norm(actual, expected, terms: int, dtype=None):
    """`actual` equals `expected` up to the rounding of sums of `terms` products in `dtype`.

    Two correct kernels (a grouped convolution and two half convolutions, oneDNN's AVX-512 and AVX2 paths)
    add the same products in different orders, so they differ by about sqrt(terms) roundings of the sum's
    magnitude, spread over elements. The bound scales with the tensor's own size (its largest element), not
    a hand-picked absolute number: 8 * sqrt(terms) * eps, a factor 8 of room over the random-walk estimate.
    """
    import torch

    eps = torch.finfo(dtype or expected.dtype).eps
    bound = 8 * terms**0.5 * eps * expected.abs().max().item()
    worst = (actual - expected).abs().max().item()
    assert worst <= bound, f"largest difference {worst:.3g} exceeds {bound:.3g} (8 sqrt({terms}) eps of the largest element)"
