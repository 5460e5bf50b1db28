"""The paper's input pipeline (section 4.1) as batched tensor ops, on CPU or CUDA alike.

Training: a random crop of each image plus a horizontal reflection half the time
(`random_crop_flip`), and PCA colour noise (`pca_lighting`). Testing: the centre crop
(`center_crop`); the ten-patch test is engine.evaluate(..., ten_crop=size), with torchvision's
ten_crop. `Normalize` subtracts the training mean; `channels_last` hands batches to the model in
the memory layout its convolutions run fastest in. Every random draw comes from the `generator`
passed in, so a seeded epoch repeats exactly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import channel_stats

# fb.resnet.torch's ImageNet PCA for pixels in [0, 1]; eigenvectors are the columns.
IMAGENET_EIGVAL = torch.tensor([0.2175, 0.0188, 0.0045])
IMAGENET_EIGVEC = torch.tensor([
    [-0.5675, 0.7192, 0.4009],
    [-0.5808, -0.0045, -0.8140],
    [-0.5836, -0.6948, 0.4203],
])


# ---------------------------------------------------------------- crops and reflections


def _check_fits(height: int, width: int, image_height: int, image_width: int, padding: int = 0) -> None:
    if not (1 <= height <= image_height and 1 <= width <= image_width):
        padded = f" after padding {padding}" if padding else ""
        raise ValueError(f"crop size {height}x{width} does not fit in the image of "
                         f"{image_height}x{image_width}{padded}")


def _windows(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, height: int, width: int,
             flip: torch.Tensor) -> torch.Tensor:
    """One height x width window per image at (top[n], left[n]), mirrored where flip[n]: a single gather."""
    n, c = x.shape[:2]
    step_r = torch.arange(height, device=x.device)
    step_c = torch.arange(width, device=x.device)
    rows = top[:, None] + step_r  # N x height
    cols = left[:, None] + torch.where(flip[:, None], width - 1 - step_c, step_c)  # N x width, reversed if flipped
    image = torch.arange(n, device=x.device).view(n, 1, 1, 1)
    channel = torch.arange(c, device=x.device).view(1, c, 1, 1)
    return x[image, channel, rows.view(n, 1, height, 1), cols.view(n, 1, 1, width)]


def _random_window(x: torch.Tensor, height: int, width: int, generator: torch.Generator,
                   padding: int = 0, flip: bool = True) -> torch.Tensor:
    if padding:
        x = F.pad(x, (padding, padding, padding, padding))  # zeros, as in the cuda-convnet CIFAR translations
    n, _, image_height, image_width = x.shape
    _check_fits(height, width, image_height, image_width, padding)
    # randint per axis: every (top, left) offset is equally likely, independently per image
    top = torch.randint(image_height - height + 1, (n,), generator=generator, device=x.device)
    left = torch.randint(image_width - width + 1, (n,), generator=generator, device=x.device)
    if flip:
        mirrored = torch.rand(n, generator=generator, device=x.device) < 0.5
    else:
        mirrored = torch.zeros(n, dtype=torch.bool, device=x.device)
    return _windows(x, top, left, height, width, mirrored)


def random_crop_flip(x: torch.Tensor, size: int, generator: torch.Generator, padding: int = 0,
                     flip: bool = True) -> torch.Tensor:
    """A random size x size patch of each image (after zero-padding by `padding`), mirrored with p = 0.5.

    The paper's training patches: 224x224 out of 256x256 gives 32*32 offsets times 2 reflections,
    the factor of 2048. N x C x H x W -> N x C x size x size, same dtype.
    """
    return _random_window(x, size, size, generator, padding, flip)


def _centre(height: int, width: int, size: int) -> tuple[int, int]:
    # an odd leftover puts the extra pixel below and right of the window
    return (height - size) // 2, (width - size) // 2


def center_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central size x size window: the paper's single-patch test input."""
    height, width = x.shape[-2:]
    _check_fits(size, size, height, width)
    top, left = _centre(height, width, size)
    return x[..., top : top + size, left : left + size]


# ---------------------------------------------------------------- PCA colour augmentation


def rgb_pca(images: torch.Tensor, chunk: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """PCA of the RGB values of all pixels, on the [0, 1] scale like IMAGENET_EIGVAL/EIGVEC.

    images: uint8 N x 3 x H x W, summed `chunk` images at a time in float64 (memory-safe for all
    of CIFAR-10). Returns float32 (eigenvalues descending, eigenvectors as columns) on the CPU.
    Sign convention: each eigenvector's largest-magnitude component is positive (the published
    ImageNet matrix follows none; a sign does not change pca_lighting's distribution).
    """
    total = torch.zeros(3, dtype=torch.float64, device=images.device)
    outer = torch.zeros(3, 3, dtype=torch.float64, device=images.device)
    for start in range(0, len(images), chunk):
        pixels = images[start : start + chunk].to(torch.float64).div(255).transpose(0, 1).reshape(3, -1)
        total += pixels.sum(dim=1)
        outer += pixels @ pixels.T
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    covariance = outer / count - torch.outer(mean, mean)
    eigval, eigvec = torch.linalg.eigh(covariance)  # ascending
    eigval, eigvec = eigval.flip(0), eigvec.flip(1)
    largest = eigvec.abs().argmax(dim=0)
    eigvec = eigvec * eigvec[largest, torch.arange(3, device=eigvec.device)].sign()
    return eigval.float().cpu(), eigvec.float().cpu()


def pca_lighting(x: torch.Tensor, eigval: torch.Tensor, eigvec: torch.Tensor, generator: torch.Generator,
                 std: float = 0.1, scale: float = 255.0) -> torch.Tensor:
    """Add scale * eigvec @ (alpha * eigval) to every pixel of each image, alpha ~ N(0, std) per image.

    The paper's colour noise: intensity and colour of the illumination change, the object does
    not. x is a float batch N x 3 x H x W whose pixel units put 1.0 on the PCA scale at `scale`
    (255 for 0-255 pixels). Returns a new tensor.
    """
    alpha = torch.randn(len(x), 3, generator=generator, device=x.device) * std
    eigval, eigvec = eigval.to(x.device, torch.float32), eigvec.to(x.device, torch.float32)  # no copy once there
    offset = scale * (alpha * eigval) @ eigvec.T  # row n = eigvec @ (alpha[n] * eigval)
    return x + offset.to(x.dtype).view(len(x), 3, 1, 1)


# ---------------------------------------------------------------- transforms for the loaders


class Normalize:
    """uint8 batch -> float: subtract the training set's mean, divide by its std, optionally resize.

    The paper subtracts only the mean; dividing by the std too keeps the same learning rates
    usable across datasets. Resizing upsamples CIFAR's 32x32 to the paper's input size. The
    constants move to a batch's device once, not on every call (a copy per batch is a host sync).
    """

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, size: int | None = None):
        self.mean = mean.float().view(1, 3, 1, 1)
        self.std = std.float().view(1, 3, 1, 1)
        self.size = size

    @classmethod
    def from_images(cls, images: torch.Tensor, divide_by_std: bool = True, size: int | None = None) -> Normalize:
        """Statistics of a training set's uint8 images. divide_by_std=False subtracts the mean only,
        as the paper and cuda-convnet do (activations then keep the 0-255 pixel scale)."""
        mean, std = channel_stats(images)
        return cls(mean, std if divide_by_std else torch.ones(3), size)

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.mean.device != x.device:
            self.mean, self.std = self.mean.to(x.device), self.std.to(x.device)
        x = (x.float() - self.mean) / self.std
        if self.size and x.shape[-1] != self.size:
            x = F.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        return x


def channels_last(transform):
    """Wrap a loader transform so batches come out channels_last (measured faster for these convs on CPU)."""
    def to_channels_last(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        x = transform(x, generator) if transform else x.float()
        return x.contiguous(memory_format=torch.channels_last)
    return to_channels_last


class TrainTransform:
    """The training input: uint8 batch -> random crop and flip -> PCA lighting -> normalize.

    Crops and flips run on uint8 (cheap); lighting on the 0-255 float scale. crop=None keeps the
    image size (with padding, a random translation); lighting is (eigval, eigvec) from rgb_pca.
    """

    def __init__(self, normalize: Normalize, crop: int | None = None, padding: int = 0, flip: bool = True,
                 lighting: tuple[torch.Tensor, torch.Tensor] | None = None, lighting_std: float = 0.1):
        self.normalize, self.crop, self.padding, self.flip = normalize, crop, padding, flip
        self.lighting, self.lighting_std = lighting, lighting_std

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.crop is not None or self.padding or self.flip:
            height, width = (self.crop, self.crop) if self.crop is not None else x.shape[-2:]
            x = _random_window(x, height, width, generator, self.padding, self.flip)
        x = x.float()
        if self.lighting is not None:
            if self.lighting[0].device != x.device:  # once, not per batch
                self.lighting = tuple(t.to(x.device, torch.float32) for t in self.lighting)
            x = pca_lighting(x, *self.lighting, generator, std=self.lighting_std, scale=255.0)
        return self.normalize(x)


class TestTransform:
    """The test input: the centre crop (if `crop`), then normalize; no randomness."""

    __test__ = False  # not a pytest test class

    def __init__(self, normalize: Normalize, crop: int | None = None):
        self.normalize, self.crop = normalize, crop

    def __call__(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        if self.crop is not None:
            x = center_crop(x, self.crop)
        return self.normalize(x)
