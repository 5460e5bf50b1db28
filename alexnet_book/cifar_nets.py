"""Small CIFAR-10 networks for the section experiments, read off their cuda-convnet configs.

- Layers80Sec: Krizhevsky's `layers-80sec`, the likely four-layer net of Figure 1 (claim C1).
- ConvLocal: the `layers-conv-local-13pct/11pct` family (claim C4), with its two locally-connected
  layers replaced by convolutions (PyTorch has no locally-connected layer; a convolution shares
  the weights across positions, so the net has far fewer parameters than the original).
- CifarAlexNet: AlexNet's shape scaled to 32x32 images: five conv layers (LRN after conv1 and
  conv2, pooling after conv1, conv2, conv5) and three fc layers, the fc layers holding most of
  the weights as in the paper (claims C5, C9, C12).

Pooling uses ceil_mode where cuda-convnet's output sizes need it (32 -> 16 -> 8 -> 4).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .lrn import LRN
from .model import activation_layer, he_init_, named_layers


@torch.no_grad()
def gaussian_init_(model: nn.Module, stds: dict[str, float]) -> nn.Module:
    """cuda-convnet's init (`initW`), in place: weights of each named layer ~ N(0, std), biases 0."""
    for name, layer in named_layers(model):
        if name not in stds:
            raise KeyError(f"no init std for layer {name!r}; given: {', '.join(stds)}")
        nn.init.normal_(layer.weight, 0.0, stds[name])
        nn.init.zeros_(layer.bias)
    return model


class Layers80Sec(nn.Module):
    """cuda-convnet `layers-80sec`: conv1 5x5 32 -> max pool 3/2 -> act (after the pool, as in the
    config) -> conv2 5x5 32 -> act -> avg pool 3/2 -> conv3 5x5 64 -> act -> avg pool 3/2 -> fc4 64
    -> act -> fc5 10. No normalization, no dropout."""

    # initW of each layer in the config, for raw 0-255 pixels minus the mean.
    CUDA_CONVNET_INIT = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.01, "fc4": 0.1, "fc5": 0.1}

    def __init__(self, activation: str = "relu", num_classes: int = 10):
        super().__init__()
        act = activation_layer
        self.features = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, 32, 5, padding=2)), ("pool1", nn.MaxPool2d(3, 2, ceil_mode=True)), ("act1", act(activation)),
            ("conv2", nn.Conv2d(32, 32, 5, padding=2)), ("act2", act(activation)), ("pool2", nn.AvgPool2d(3, 2, ceil_mode=True)),
            ("conv3", nn.Conv2d(32, 64, 5, padding=2)), ("act3", act(activation)), ("pool3", nn.AvgPool2d(3, 2, ceil_mode=True)),
        ]))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc4", nn.Linear(64 * 4 * 4, 64)), ("act4", act(activation)), ("fc5", nn.Linear(64, num_classes)),
        ]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


# The cross-map response norm of `layers-conv-local-11pct` (the facts file's table; a public generator of
# that config agrees): size 9, scale 0.001 divided by the size (cuda-convnet's code divides, as
# torch.nn.LocalResponseNorm does), pow 0.75, and minDiv 2, i.e. k = 2, the paper's k. (The 2012
# cuda-convnet kernels added 1 rather than a configurable minDiv; we use the config's 2.)
CONV_LOCAL_LRN = dict(size=9, alpha=1e-3, beta=0.75, k=2.0, divide_alpha_by_n=True)


class ConvLocal(nn.Module):
    """cuda-convnet `layers-conv-local-11pct` (lrn=True) and its no-normalization ablation (lrn=False):
    conv1 5x5 64 -> ReLU -> max pool 3/2 -> [lrn1] -> conv2 5x5 64 -> ReLU -> [lrn2] -> max pool 3/2
    -> conv3 3x3 64 -> ReLU -> conv4 3x3 32 -> ReLU -> fc5 10. conv3 and conv4 stand in for the
    config's locally-connected layers local3 (64 filters) and local4 (32)."""

    CUDA_CONVNET_INIT = {"conv1": 1e-4, "conv2": 0.01, "conv3": 0.04, "conv4": 0.04, "fc5": 0.01}
    # layer-params-conv-local-11pct's weight decay (`wc`): none on the conv layers, 0.004 on local3, local4 and
    # fc10 (here conv3, conv4 and fc5); for Recipe(layer_weight_decay=...)
    CUDA_CONVNET_WEIGHT_DECAY = (("conv1", 0.0), ("conv2", 0.0), ("conv3", 0.004), ("conv4", 0.004), ("fc5", 0.004))

    def __init__(self, lrn: bool = True, num_classes: int = 10):
        super().__init__()

        def norm(name):  # nothing in the ablation
            return [(name, LRN(**CONV_LOCAL_LRN))] if lrn else []

        def pool():
            return nn.MaxPool2d(3, 2, ceil_mode=True)

        layers = [("conv1", nn.Conv2d(3, 64, 5, padding=2)), ("act1", nn.ReLU()), ("pool1", pool()), *norm("lrn1"),
                  ("conv2", nn.Conv2d(64, 64, 5, padding=2)), ("act2", nn.ReLU()), *norm("lrn2"), ("pool2", pool()),
                  ("conv3", nn.Conv2d(64, 64, 3, padding=1)), ("act3", nn.ReLU()),
                  ("conv4", nn.Conv2d(64, 32, 3, padding=1)), ("act4", nn.ReLU())]
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Sequential(OrderedDict([("fc5", nn.Linear(32 * 8 * 8, num_classes))]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class CifarAlexNet(nn.Module):
    """AlexNet's layer pattern for 32x32 inputs, with the paper's options as arguments.

    conv1 5x5 -> act -> lrn1 -> pool1 -> conv2 5x5 -> act -> lrn2 -> pool2 -> conv3 3x3 -> act ->
    conv4 3x3 -> act -> conv5 3x3 -> act -> pool5 -> fc6 -> act -> dropout -> fc7 -> act -> dropout
    -> fc8. Pooling is z x z with stride 2; z=3 pads by 1 so that both z=3 (overlapping) and z=2
    give 16, 8 and 4 pixels, the matched output sizes that claim C5 compares. `without` removes
    one middle conv layer (claim C12); the layer after it takes its input, and without conv5,
    conv4 takes conv5's width so that fc6 is unchanged. `groups=2` splits the net as the paper's two
    GPUs did (claim C11): conv2, conv4 and conv5 see only their own half of the previous layer, and
    LRN normalizes each half on its own. Weights start from `he_init_`.
    """

    def __init__(self, num_classes: int = 10, *, activation: str = "relu", lrn: str | None = "cuda-convnet",
                 pool_size: int = 3, dropout: float = 0.5, widths=(32, 64, 96, 96, 64), fc_size: int = 512,
                 without: str | None = None, groups: int = 1):
        super().__init__()
        if pool_size not in (2, 3):
            raise ValueError(f"pool_size must be 3 (overlapping) or 2 (non-overlapping), got {pool_size}")
        if without not in (None, "conv3", "conv4", "conv5"):
            raise ValueError(f"only a middle conv layer can be removed (conv3, conv4 or conv5), not {without!r}")
        if without == "conv5":  # conv4 takes conv5's width, so fc6 and everything after stay the same
            widths = (*widths[:3], widths[4], widths[4])
        layers, c_in = [], 3
        for i, (c_out, kernel) in enumerate(zip(widths, (5, 5, 3, 3, 3)), start=1):
            if f"conv{i}" == without:  # section 7's ablation; the next layer takes this one's input
                if i == 5:  # pool5 still follows the last conv layer that is left
                    layers.append(("pool5", nn.MaxPool2d(pool_size, 2, padding=pool_size - 2)))
                continue
            split = groups if i in (2, 4, 5) else 1  # conv1 and conv3 see both GPUs' kernels, as in the paper
            layers += [(f"conv{i}", nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=split)),
                       (f"act{i}", activation_layer(activation))]
            if i <= 2 and lrn is not None:
                layers.append((f"lrn{i}", LRN.convention(lrn, groups=groups)))
            if i in (1, 2, 5):
                layers.append((f"pool{i}", nn.MaxPool2d(pool_size, 2, padding=pool_size - 2)))
            c_in = c_out
        self.features = nn.Sequential(OrderedDict(layers))
        self.classifier = nn.Sequential(OrderedDict([
            ("fc6", nn.Linear(c_in * 4 * 4, fc_size)), ("act6", activation_layer(activation)), ("dropout6", nn.Dropout(dropout)),
            ("fc7", nn.Linear(fc_size, fc_size)), ("act7", activation_layer(activation)), ("dropout7", nn.Dropout(dropout)),
            ("fc8", nn.Linear(fc_size, num_classes)),
        ]))
        he_init_(self)  # see he_init_; torch_init_ restores PyTorch's default (notebook 07 compares them)

    def extra_repr(self) -> str:
        return "init: he_init_"  # part of the repr, so checkpoints keyed by it (checkpoint.run_path) change with it

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))
