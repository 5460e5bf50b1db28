"""The paper's network (section 3.5) on one device, with its options as constructor arguments.

Module names follow the paper: conv1..conv5, fc6..fc8, lrn1/lrn2, pool1/pool2/pool5, and
act1..act7 for the nonlinearity after each layer (ReLU, or tanh for claim C1), dropout6 and
dropout7 on the outputs of fc6 and fc7. The two-GPU version is in `alexnet_book.towers`, LRN
and its conventions in `alexnet_book.lrn`.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .lrn import LRN

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh}

# Kernel counts of conv1..conv5 (section 3.5), both GPUs together.
KERNELS = (96, 256, 384, 384, 256)

# Per conv layer: kernel size, stride, padding, grouped (sees only its own GPU's kernels),
# then LRN, then max pooling. conv1's padding (None) depends on the input size.
_CONV_SPECS = (
    (11, 4, None, False, True, True),  # conv1
    (5, 1, 2, True, True, True),  # conv2
    (3, 1, 1, False, False, False),  # conv3: takes input from both GPUs
    (3, 1, 1, True, False, False),  # conv4
    (3, 1, 1, True, False, True),  # conv5
)

# conv1 padding per input side; both give conv1 a 55x55 output.
_CONV1_PADDING = {224: 2, 227: 0}

# Section 5: bias 1 in these layers gives the ReLUs positive inputs early in training; the
# other biases (conv1, conv3, fc8) are 0.
BIAS_ONE_LAYERS = ("conv2", "conv4", "conv5", "fc6", "fc7")


def activation_layer(name: str) -> nn.Module:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; valid: {', '.join(map(repr, ACTIVATIONS))}")
    return ACTIVATIONS[name]()  # not in place, so hooks on conv/fc layers see pre-activations


def conv_kernels(width: float | Sequence[float] = 1.0, groups: int = 1) -> list[int]:
    """Kernel counts of conv1..conv5 scaled by width (one number, or one per layer)."""
    widths = [width] * 5 if isinstance(width, (int, float)) else list(width)
    if len(widths) != 5:
        raise ValueError(f"width needs one multiplier or five (conv1..conv5), got {width!r}")
    kernels = [round(k * w) for k, w in zip(KERNELS, widths)]
    if any(k < groups or k % groups for k in kernels):
        raise ValueError(f"kernel counts {kernels} (width={width!r}) must be divisible by groups={groups}")
    return kernels


def conv_layers(
    first: int,
    last: int,
    in_channels: int,
    kernels: Sequence[int],
    *,
    groups: int,
    activation: str,
    lrn: str | None,
    pool_size: int,
    input_size: int,
) -> list[tuple[str, nn.Module]]:
    """(name, module) pairs of conv{first}..conv{last}, each with its activation, LRN and pooling.

    kernels holds the counts of all five layers; groups applies to conv2, conv4, conv5 and to
    the LRNs. Used whole by AlexNet and in two pieces (conv1-2, conv3-5) by each tower.
    """
    if input_size not in _CONV1_PADDING:
        raise ValueError(
            f"input_size must be 224 or 227, got {input_size}: conv1 (11x11, stride 4) needs "
            "(size - 11) / 4 + 1 = 55, and the paper's 224 gives (224 - 11)/4 + 1 = 54.25; "
            "224 uses padding 2 (torchvision's choice), 227 padding 0"
        )
    layers = []
    for i in range(first, last + 1):
        kernel_size, stride, padding, grouped, normalized, pooled = _CONV_SPECS[i - 1]
        padding = _CONV1_PADDING[input_size] if padding is None else padding
        conv = nn.Conv2d(in_channels, kernels[i - 1], kernel_size, stride, padding, groups=groups if grouped else 1)
        layers += [(f"conv{i}", conv), (f"act{i}", activation_layer(activation))]
        if normalized and lrn is not None:  # after the activation, section 3.3
            layers.append((f"lrn{i}", LRN.convention(lrn, groups=groups)))
        if pooled:
            layers.append((f"pool{i}", nn.MaxPool2d(pool_size, stride=2)))
        in_channels = kernels[i - 1]
    return layers


def fc_layers(
    i: int, in_features: int, out_features: int, activation: str, dropout: float
) -> list[tuple[str, nn.Module]]:
    """fc{i} with its activation and dropout on its outputs (section 4.2)."""
    return [
        (f"fc{i}", nn.Linear(in_features, out_features)),
        (f"act{i}", activation_layer(activation)),
        (f"dropout{i}", nn.Dropout(dropout)),
    ]


def pool5_side(pool_size: int) -> int:
    """Side of pool5's output: 6 for the paper's z=3 and for the z=2 control alike."""
    side = 55  # conv1's output for both input sizes; conv2..conv5 keep the size
    for _ in range(3):  # pool1, pool2, pool5, stride 2
        side = (side - pool_size) // 2 + 1
    return side


class AlexNet(nn.Module):
    """Krizhevsky et al. (2012), section 3.5, as one grouped network on one device.

    features: conv1 (96 kernels 11x11, stride 4) -> act1 -> lrn1 -> pool1 -> conv2 (256, 5x5)
    -> act2 -> lrn2 -> pool2 -> conv3 (384, 3x3) -> act3 -> conv4 (384, 3x3) -> act4 -> conv5
    (256, 3x3) -> act5 -> pool5, whose output is 256x6x6. LRN follows the activation of conv1
    and conv2. classifier: fc6 (4096) -> act6 -> dropout6 -> fc7 (4096) -> act7 -> dropout7 ->
    fc8 (num_classes logits; the softmax is in the loss).

    Options: activation "relu" or "tanh"; lrn a name in LRN_CONVENTIONS (default
    "cuda-convnet", alpha/n as Krizhevsky's code) or None for no LRN; pool_size z with stride 2
    (3 overlapping, 2 the paper's non-overlapping control, same output sizes); groups 2 for the
    two-GPU connectivity (conv2, conv4, conv5 and the LRNs see only their own half of the
    channels) or 1 for none; width scales the kernel counts of conv1..conv5, one number or one
    per layer (section 3.2's footnote: its one-GPU net kept conv5 and the FC layers whole,
    width=(0.5, 0.5, 0.5, 0.5, 1), groups=1); input_size 224 (conv1 padding 2) or 227.
    """

    def __init__(
        self,
        num_classes: int = 1000,
        *,
        activation: str = "relu",
        lrn: str | None = "cuda-convnet",
        pool_size: int = 3,
        groups: int = 2,
        dropout: float = 0.5,
        width: float | Sequence[float] = 1.0,
        fc_size: int = 4096,
        input_size: int = 224,
    ):
        super().__init__()
        # Kept so the tower converters can build a matching network.
        self.options = dict(
            num_classes=num_classes, activation=activation, lrn=lrn, pool_size=pool_size, groups=groups,
            dropout=dropout, width=width, fc_size=fc_size, input_size=input_size,
        )
        kernels = conv_kernels(width, groups)
        style = dict(activation=activation, lrn=lrn, pool_size=pool_size, input_size=input_size)
        self.features = nn.Sequential(OrderedDict(conv_layers(1, 5, 3, kernels, groups=groups, **style)))
        flat = kernels[4] * pool5_side(pool_size) ** 2  # 256 * 6 * 6 = 9216
        self.classifier = nn.Sequential(OrderedDict(
            fc_layers(6, flat, fc_size, activation, dropout)
            + fc_layers(7, fc_size, fc_size, activation, dropout)
            + [("fc8", nn.Linear(fc_size, num_classes))]
        ))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        x = torch.flatten(x, 1)
        return self.classifier(x)


def named_layers(model: nn.Module, kind=(nn.Conv2d, nn.Linear)) -> list[tuple[str, nn.Module]]:
    """(paper name, layer) for each layer of `kind` in definition order; the paper name is the last part
    of the module's path (conv1, lrn1, fc8; "0" in an unnamed nn.Sequential). kind=None: every leaf layer.
    A list, not a dict: the two towers of TwoTowerAlexNet each have a conv1."""
    return [(name.rsplit(".", 1)[-1], layer) for name, layer in model.named_modules()
            if name and (isinstance(layer, kind) if kind else not list(layer.children()))]


@torch.no_grad()
def paper_init_(
    model: nn.Module, weight_std: float = 0.01, fc_weight_std: float | None = None, bias: float = 1.0
) -> nn.Module:
    """Section 5's initialization, in place; returns the model.

    Every conv and linear weight ~ N(0, weight_std); fc6 and fc7 use fc_weight_std when given.
    Biases are `bias` in conv2, conv4, conv5, fc6, fc7 and 0 elsewhere. The paper: the
    defaults. Caffe's bvlc_alexnet fix, for when the paper's init does not start learning:
    bias=0.1, fc_weight_std=0.005. Works on AlexNet and TwoTowerAlexNet (layers are matched
    by their last name, conv1..fc8).
    """
    for name, layer in named_layers(model):
        std = fc_weight_std if fc_weight_std is not None and name in ("fc6", "fc7") else weight_std
        nn.init.normal_(layer.weight, 0.0, std)
        nn.init.constant_(layer.bias, bias if name in BIAS_ONE_LAYERS else 0.0)
    return model


@torch.no_grad()
def he_init_(model: nn.Module) -> nn.Module:
    """He et al. (2015), in place: conv and linear weights ~ N(0, 2 / fan_in), biases 0. It keeps
    the scale of ReLU activations from layer to layer; PyTorch's default init shrinks it, and left
    CifarAlexNet on the ln(10) loss plateau for 4-5 epochs at ε = 0.01 (measured on 10,000 CIFAR images),
    and the paper's AlexNet there after a whole epoch (notebook 08)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            nn.init.zeros_(layer.bias)
    return model


@torch.no_grad()
def torch_init_(model: nn.Module) -> nn.Module:
    """PyTorch's default init of every conv and linear layer, in place (its `reset_parameters`)."""
    for layer in model.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.reset_parameters()
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
