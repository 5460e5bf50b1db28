from __future__ import annotations

import pytest
import torch
from torch import nn

from alexnet_book.augment import (IMAGENET_EIGVAL, IMAGENET_EIGVEC, TestTransform, TrainTransform, center_crop,
                                  Normalize, pca_lighting, random_crop_flip, rgb_pca)
from alexnet_book.data import synthetic
from alexnet_book.loaders import TensorLoader


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def position_image(h: int, w: int, n: int, offset: int = 0) -> torch.Tensor:
    """n copies of a 1-channel image whose pixel (r, c) holds r * w + c + offset."""
    return (torch.arange(h * w, dtype=torch.float32) + offset).view(1, 1, h, w).expand(n, 1, h, w)


def decode(out: torch.Tensor, w: int, offset: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(top, left, flipped) of each crop of a position image, read back from its pixel values."""
    v = out[:, 0] - offset
    corner = v.flatten(1).min(dim=1).values.long()
    return corner // w, corner % w, v[:, 0, 1] < v[:, 0, 0]


def expected_windows(top, left, flipped, size: int, w: int) -> torch.Tensor:
    step = torch.arange(size)
    windows = ((top[:, None, None] + step[:, None]) * w + left[:, None, None] + step).float()
    return torch.where(flipped.view(-1, 1, 1), windows.flip(-1), windows).unsqueeze(1)


def chi_square(counts: torch.Tensor) -> float:
    expected = counts.sum() / len(counts)
    return float(((counts - expected) ** 2 / expected).sum())


# ---------------------------------------------------------------- random_crop_flip


def test_crop_offsets_and_flips_are_uniform_and_independent():
    n, h, w, size = 20_000, 6, 6, 4  # 3 x 3 offsets x 2 reflections = 18 cells
    out = random_crop_flip(position_image(h, w, n), size, gen(1))
    top, left, flipped = decode(out, w)
    torch.testing.assert_close(out, expected_windows(top, left, flipped, size, w), rtol=0, atol=0)
    counts = torch.bincount((top * 3 + left) * 2 + flipped.long(), minlength=18).float()
    assert len(counts) == 18 and counts.min() > 0
    assert chi_square(counts) < 40.8  # chi-square, 17 degrees of freedom, p = 0.001
    assert abs(flipped.float().mean().item() - 0.5) < 0.02


def test_a_flipped_crop_is_the_mirror_of_its_window():
    x = torch.randint(0, 256, (64, 3, 9, 9), dtype=torch.uint8, generator=gen(0))
    out = random_crop_flip(position_image(9, 9, 64), 5, gen(2))
    top, left, flipped = decode(out, 9)
    crops = random_crop_flip(x, 5, gen(2))  # same draws, real pixels
    assert flipped.any() and not flipped.all()
    for i in range(len(x)):
        window = x[i, :, top[i] : top[i] + 5, left[i] : left[i] + 5]
        assert torch.equal(crops[i], window.flip(-1) if flipped[i] else window)


def test_no_flip_keeps_orientation():
    out = random_crop_flip(position_image(6, 6, 2000), 4, gen(3), flip=False)
    assert not decode(out, 6)[2].any()


def test_padding_crops_uniformly_from_the_zero_padded_image():
    n, h, w, size, pad = 20_000, 4, 4, 4, 1  # 3 x 3 offsets in the 6 x 6 padded image
    out = random_crop_flip(position_image(h, w, n, offset=1), size, gen(4), padding=pad, flip=False)
    # pixel (1, 1) of every crop is inside the image; its value gives the offset in padded coordinates
    corner = out[:, 0, 1, 1].long() - 1
    top, left = corner // w, corner % w
    counts = torch.bincount(top * 3 + left, minlength=9).float()
    assert len(counts) == 9 and counts.min() > 0 and chi_square(counts) < 26.1  # 8 dof, p = 0.001
    # the zero border covers 1 - (10/3)^2 / 16 of a crop on average
    zero_rate = (out == 0).float().mean().item()
    assert abs(zero_rate - (1 - (10 / 3) ** 2 / 16)) < 0.01
    padded = torch.nn.functional.pad(position_image(h, w, 1, offset=1)[0], (pad,) * 4)
    for i in range(20):
        assert torch.equal(out[i], padded[:, top[i] : top[i] + size, left[i] : left[i] + size])


def test_same_seed_same_crops_and_uint8_stays_uint8():
    x = torch.randint(0, 256, (32, 3, 12, 12), dtype=torch.uint8, generator=gen(0))
    a = random_crop_flip(x, 8, gen(5), padding=2)
    assert a.dtype == torch.uint8 and a.shape == (32, 3, 8, 8)
    assert torch.equal(a, random_crop_flip(x, 8, gen(5), padding=2))
    assert not torch.equal(a, random_crop_flip(x, 8, gen(6), padding=2))
    assert torch.equal(a.float(), random_crop_flip(x.float(), 8, gen(5), padding=2))


def test_crop_larger_than_the_image_names_both_sizes():
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError, match=r"40x40.*36x36 after padding 2"):
        random_crop_flip(x, 40, gen(), padding=2)
    with pytest.raises(ValueError, match=r"33x33.*32x32"):
        center_crop(x, 33)


# ---------------------------------------------------------------- PCA lighting


def sign_fixed(eigvec: torch.Tensor) -> torch.Tensor:
    largest = eigvec.abs().argmax(dim=0)
    return eigvec * eigvec[largest, torch.arange(eigvec.shape[1])].sign()


def test_rgb_pca_recovers_a_known_covariance():
    eigval = torch.tensor([4e-3, 1e-3, 2.5e-4], dtype=torch.float64)  # std 0.063 .. 0.016 around mid-grey
    eigvec = torch.linalg.qr(torch.randn(3, 3, generator=gen(0), dtype=torch.float64))[0]
    z = torch.randn(200 * 16 * 16, 3, generator=gen(1), dtype=torch.float64)
    pixels = 0.5 + (z * eigval.sqrt()) @ eigvec.T
    images = (pixels * 255).round().clamp(0, 255).to(torch.uint8).view(200, 16, 16, 3).permute(0, 3, 1, 2)

    values, vectors = rgb_pca(images, chunk=7)  # chunks that do not divide the set
    assert values.dtype == vectors.dtype == torch.float32
    assert (values[:-1] > values[1:]).all()
    torch.testing.assert_close(vectors.T @ vectors, torch.eye(3), atol=1e-5, rtol=0)
    torch.testing.assert_close(values.double(), eigval, rtol=0.05, atol=0)
    torch.testing.assert_close(vectors.double(), sign_fixed(eigvec), atol=0.05, rtol=0)
    assert (vectors.gather(0, vectors.abs().argmax(0).unsqueeze(0)) > 0).all()  # the sign convention

    # chunking is exact: the same as the covariance of all pixels at once
    flat = images.double().div(255).transpose(0, 1).reshape(3, -1)
    exact_values, exact_vectors = torch.linalg.eigh(torch.cov(flat, correction=0))
    torch.testing.assert_close(values.double(), exact_values.flip(0), rtol=1e-5, atol=0)
    torch.testing.assert_close(vectors.double(), sign_fixed(exact_vectors.flip(1)), atol=1e-5, rtol=0)


def test_imagenet_constants_are_eigenvectors_as_columns():
    torch.testing.assert_close(IMAGENET_EIGVEC.T @ IMAGENET_EIGVEC, torch.eye(3), atol=2e-3, rtol=0)
    torch.testing.assert_close(IMAGENET_EIGVEC[:, 0], torch.full((3,), -0.577), atol=0.01, rtol=0)  # brightness
    assert (IMAGENET_EIGVAL[:-1] > IMAGENET_EIGVAL[1:]).all()


def test_pca_lighting_noise_has_the_paper_covariance():
    n, std, scale = 20_000, 0.1, 255.0
    x = torch.zeros(n, 3, 1, 1)
    offsets = pca_lighting(x, IMAGENET_EIGVAL, IMAGENET_EIGVEC, gen(0), std=std, scale=scale).view(n, 3)
    expected = scale**2 * IMAGENET_EIGVEC @ torch.diag((std * IMAGENET_EIGVAL) ** 2) @ IMAGENET_EIGVEC.T
    biggest = expected.abs().max()
    assert ((torch.cov(offsets.T) - expected).abs().max() / biggest) < 0.05
    assert (offsets.mean(0).abs().max() / biggest.sqrt()) < 0.05
    assert torch.equal(x, torch.zeros(n, 3, 1, 1))  # not modified in place


def test_pca_lighting_shifts_every_pixel_of_an_image_alike():
    x = torch.rand(4, 3, 5, 5, generator=gen(0)) * 255
    shift = pca_lighting(x, IMAGENET_EIGVAL, IMAGENET_EIGVEC, gen(1)) - x
    torch.testing.assert_close(shift, shift[..., :1, :1].expand_as(shift))
    assert not torch.allclose(shift[0, :, 0, 0], shift[1, :, 0, 0])  # drawn per image
    again = pca_lighting(x, IMAGENET_EIGVAL, IMAGENET_EIGVEC, gen(1)) - x
    assert torch.equal(shift, again)


# ---------------------------------------------------------------- transforms


def normalize() -> Normalize:
    return Normalize(torch.tensor([120.0, 110.0, 100.0]), torch.tensor([60.0, 50.0, 40.0]))


def test_train_transform_is_crop_flip_then_lighting_then_normalize():
    x = torch.randint(0, 256, (8, 3, 12, 12), dtype=torch.uint8, generator=gen(0))
    lighting = (IMAGENET_EIGVAL, IMAGENET_EIGVEC)
    transform = TrainTransform(normalize(), crop=8, padding=2, lighting=lighting, lighting_std=0.2)
    out = transform(x, gen(7))
    assert out.shape == (8, 3, 8, 8) and out.dtype == torch.float32
    assert torch.equal(out, transform(x, gen(7))) and not torch.equal(out, transform(x, gen(8)))
    g = gen(7)
    manual = random_crop_flip(x, 8, g, padding=2).float()
    manual = normalize()(pca_lighting(manual, *lighting, g, std=0.2, scale=255.0))
    torch.testing.assert_close(out, manual)


def test_train_transform_without_augmentation_only_normalizes():
    x = torch.randint(0, 256, (4, 3, 6, 6), dtype=torch.uint8, generator=gen(0))
    torch.testing.assert_close(TrainTransform(normalize(), flip=False)(x, gen()), normalize()(x))
    flipped = TrainTransform(normalize())(x, gen(1))  # crop=None keeps the size, flips still apply
    assert flipped.shape == x.shape
    assert all(torch.equal(f, n) or torch.equal(f, n.flip(-1)) for f, n in zip(flipped, normalize()(x)))


def test_test_transform_is_centre_crop_then_normalize():
    x = torch.randint(0, 256, (4, 3, 9, 9), dtype=torch.uint8, generator=gen(0))
    torch.testing.assert_close(TestTransform(normalize(), crop=6)(x), normalize()(x[..., 1:7, 1:7]))
    torch.testing.assert_close(TestTransform(normalize())(x), normalize()(x))


def test_train_transform_runs_inside_tensor_loader_repeatably():
    images = synthetic(20, size=16, seed=0)
    loader = TensorLoader(images, 8, shuffle=True, transform=TrainTransform(normalize(), crop=12, padding=1))
    first, again = [x for x, _ in loader], [x for x, _ in loader]
    assert first[0].shape == (8, 3, 12, 12)
    assert all(torch.equal(a, b) for a, b in zip(first, again))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_augmentation_runs_on_cuda_like_on_cpu():
    x = torch.randint(0, 256, (16, 3, 12, 12), dtype=torch.uint8, generator=gen(0)).cuda()
    g = torch.Generator("cuda").manual_seed(0)
    out = TrainTransform(normalize(), crop=8, padding=2, lighting=(IMAGENET_EIGVAL, IMAGENET_EIGVEC))(x, g)
    assert out.device.type == "cuda" and out.shape == (16, 3, 8, 8)
    assert rgb_pca(x)[0].device.type == "cpu"
