"""Section 3.2's two-GPU network: two towers that exchange activations only where the paper does.

Each tower holds half the kernels of every conv layer (48-128-192-192-128) and half the fc6 and
fc7 neurons (2048). conv3, fc6 and fc7 take input from both towers; conv1, conv2, conv4, conv5
and the LRNs see only their own tower. fc8 (4096 -> classes) lives on the first device.

Tower i corresponds to the grouped AlexNet's i-th half of every layer's outputs: conv channels
0..C/2-1 and fc neurons 0..F/2-1 are tower 0. `towers_from_grouped` and `grouped_from_towers`
convert the weights; the two networks then compute the same function.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import torch
from torch import nn

from .model import AlexNet, conv_kernels, conv_layers, fc_layers, named_layers, pool5_side


class TwoTowerAlexNet(nn.Module):
    """AlexNet split over two devices; same options as AlexNet, with groups fixed at 2.

    self.towers[i] is an nn.ModuleDict on devices[i] with four stages:
    conv1_2 (conv1..pool2), conv3_5 (conv3..pool5), fc6 (fc6, act6, dropout6), fc7 (fc7, act7,
    dropout7). Between stages each tower receives both towers' outputs. The output is on
    devices[0].
    """

    def __init__(
        self,
        devices: Sequence[str | torch.device] = ("cpu", "cpu"),
        num_classes: int = 1000,
        *,
        activation: str = "relu",
        lrn: str | None = "cuda-convnet",
        pool_size: int = 3,
        dropout: float = 0.5,
        width: float | Sequence[float] = 1.0,
        fc_size: int = 4096,
        input_size: int = 224,
    ):
        super().__init__()
        if len(devices) != 2:
            raise ValueError(f"TwoTowerAlexNet needs two devices, got {devices!r}")
        if fc_size % 2:
            raise ValueError(f"fc_size must be even to split over two towers, got {fc_size}")
        self.options = dict(
            num_classes=num_classes, activation=activation, lrn=lrn, pool_size=pool_size,
            dropout=dropout, width=width, fc_size=fc_size, input_size=input_size,
        )
        self.devices = [torch.device(d) for d in devices]
        kernels = [k // 2 for k in conv_kernels(width, groups=2)]  # one tower's share
        style = dict(groups=1, activation=activation, lrn=lrn, pool_size=pool_size, input_size=input_size)
        flat = 2 * kernels[4] * pool5_side(pool_size) ** 2  # both towers' pool5

        def tower() -> nn.ModuleDict:
            return nn.ModuleDict({
                "conv1_2": nn.Sequential(OrderedDict(conv_layers(1, 2, 3, kernels, **style))),
                "conv3_5": nn.Sequential(OrderedDict(conv_layers(3, 5, 2 * kernels[1], kernels, **style))),
                "fc6": nn.Sequential(OrderedDict(fc_layers(6, flat, fc_size // 2, activation, dropout))),
                "fc7": nn.Sequential(OrderedDict(fc_layers(7, fc_size, fc_size // 2, activation, dropout))),
            })

        self.towers = nn.ModuleList(tower().to(d) for d in self.devices)
        self.fc8 = nn.Linear(fc_size, num_classes).to(self.devices[0])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = [t["conv1_2"](x.to(d)) for t, d in zip(self.towers, self.devices)]  # own tower only
        h = [t["conv3_5"](a) for t, a in zip(self.towers, self._exchange(h))]  # conv3 sees both
        h = [t["fc6"](a) for t, a in zip(self.towers, self._exchange([a.flatten(1) for a in h]))]
        h = [t["fc7"](a) for t, a in zip(self.towers, self._exchange(h))]
        return self.fc8(_gather(h, self.devices[0]))

    def _exchange(self, halves: list[torch.Tensor]) -> list[torch.Tensor]:
        """The cross-GPU traffic: each tower gets both towers' outputs, tower 0's first."""
        return [_gather(halves, d) for d in self.devices]


def _gather(halves: list[torch.Tensor], device: torch.device) -> torch.Tensor:
    return torch.cat([h.to(device) for h in halves], dim=1)


@torch.no_grad()
def towers_from_grouped(
    model: AlexNet, devices: Sequence[str | torch.device] = ("cpu", "cpu")
) -> TwoTowerAlexNet:
    """A TwoTowerAlexNet computing what the groups=2 `model` computes."""
    if model.options["groups"] != 2:
        raise ValueError(f"needs an AlexNet with groups=2 (one group per tower), got groups={model.options['groups']}")
    options = {k: v for k, v in model.options.items() if k != "groups"}
    towers = TwoTowerAlexNet(devices, **options).train(model.training)
    grouped = dict(named_layers(model))
    for i, tower in enumerate(towers.towers):
        for name, layer in named_layers(tower):
            # Tower i owns the i-th half of the layer's outputs. Its inputs need no reordering:
            # a grouped layer's half sees only its own group's channels, and a layer seeing both
            # towers gets them concatenated in the grouped order (pool5 flattens channel-major).
            layer.weight.copy_(grouped[name].weight.chunk(2)[i])
            layer.bias.copy_(grouped[name].bias.chunk(2)[i])
    towers.fc8.load_state_dict(grouped["fc8"].state_dict())
    return towers


@torch.no_grad()
def grouped_from_towers(towers: TwoTowerAlexNet) -> AlexNet:
    """The groups=2 AlexNet computing what `towers` computes, on towers.devices[0]: the mapping of
    towers_from_grouped read backwards (notebook 01 shows both), whose round trip (tested) shows that
    no weight is lost or moved between the two layouts."""
    device = towers.devices[0]
    model = AlexNet(groups=2, **towers.options).to(device).train(towers.training)
    halves = [dict(named_layers(tower)) for tower in towers.towers]
    for name, layer in named_layers(model):
        if name == "fc8":
            layer.load_state_dict(towers.fc8.state_dict())
        else:
            layer.weight.copy_(torch.cat([h[name].weight.to(device) for h in halves]))
            layer.bias.copy_(torch.cat([h[name].bias.to(device) for h in halves]))
    return model
