"""A per-layer table of a network: output shape, parameters, neurons, multiply-adds."""

from __future__ import annotations

import pandas as pd
import torch
from torch import nn

from .model import AlexNet, count_parameters, named_layers


def layer_table(model: nn.Module, input_size: tuple[int, int, int] | None = None) -> pd.DataFrame:
    """One row per leaf layer, in the order a forward pass runs them.

    Columns: layer (its last name, e.g. "conv1"), type, output_shape per sample ("96x55x55"),
    params, neurons (output elements per sample), mult_adds per sample (conv: output elements
    x in_channels/groups x kernel area; linear: in x out; other layers 0). input_size defaults
    to (3, s, s) with s the model's own input_size option, else 224. Runs one zero image
    through the model in eval mode, without gradients, and restores its mode.
    """
    if input_size is None:
        side = getattr(model, "options", {}).get("input_size", 224)
        input_size = (3, side, side)
    rows = []

    def record(name: str, layer: nn.Module, inputs, output: torch.Tensor) -> None:
        neurons = output[0].numel()
        if isinstance(layer, nn.Conv2d):
            mult_adds = neurons * layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, nn.Linear):
            mult_adds = layer.in_features * layer.out_features
        else:
            mult_adds = 0
        rows.append({
            "layer": name,
            "type": type(layer).__name__,
            "output_shape": "x".join(map(str, output.shape[1:])),
            "params": sum(p.numel() for p in layer.parameters()),
            "neurons": neurons,
            "mult_adds": mult_adds,
        })

    hooks = [m.register_forward_hook(lambda m, i, o, name=name: record(name, m, i, o))
             for name, m in named_layers(model, kind=None)]
    training = model.training
    parameter = next(model.parameters())
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, *input_size, device=parameter.device, dtype=parameter.dtype))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(training)
    return pd.DataFrame(rows)


# Figure 2's neurons per layer (conv1..fc8), section 3.5; the paper's totals are claims.PAPER_PARAMETERS/NEURONS.
FIGURE2_NEURONS = {"conv1": 253_440, "conv2": 186_624, "conv3": 64_896, "conv4": 64_896, "conv5": 43_264,
                   "fc6": 4096, "fc7": 4096, "fc8": 1000}


def paper_comparison(table: pd.DataFrame) -> pd.DataFrame:
    """The conv and fc rows of a layer table beside Figure 2's neuron counts."""
    rows = table[table["type"].isin(["Conv2d", "Linear"])].set_index("layer")
    out = rows[["output_shape", "params", "neurons", "mult_adds"]].copy()
    out["figure2_neurons"] = pd.Series(FIGURE2_NEURONS)
    out["difference"] = out["neurons"] - out["figure2_neurons"]
    out.loc["total"] = [
        "", out["params"].sum(), out["neurons"].sum(), out["mult_adds"].sum(), out["figure2_neurons"].sum(),
        out["difference"].sum(),
    ]
    return out


def parameter_counts() -> pd.DataFrame:
    """Parameters of the paper's net and its relatives (the reference counts in the facts file)."""
    import torchvision

    nets = {
        "paper, grouped conv2/4/5 (two GPUs)": AlexNet(),
        "paper, ungrouped": AlexNet(groups=1),
        "torchvision alexnet (one weird trick: 64-192-384-256-256, no LRN)": torchvision.models.alexnet(),
        "one-GPU net, half the kernels in conv1-4, full conv5 (C2)": AlexNet(groups=1, width=(0.5, 0.5, 0.5, 0.5, 1)),
        "one-GPU net, half the kernels in every conv layer": AlexNet(groups=1, width=0.5),
    }
    return pd.DataFrame({"parameters": {name: count_parameters(net) for name, net in nets.items()}})


def architecture(model: nn.Module) -> tuple[tuple[str, str], ...]:
    """The network without its layer names: each leaf layer's type and settings, in order."""
    return tuple((type(m).__name__, m.extra_repr()) for m in model.modules() if not list(m.children()))


def same_network_as(models: dict[str, nn.Module]) -> dict[str, str]:
    """For each named model, the first in `models` with the same architecture: nets that differ only in
    their layer names train identically from the same seed, so only the first needs training."""
    first: dict[tuple, str] = {}
    return {name: first.setdefault(architecture(model), name) for name, model in models.items()}


def alike_groups(same_as: dict[str, str]) -> dict[str, list[str]]:
    """same_network_as turned around: each distinct network's first name -> every name it goes by."""
    groups: dict[str, list[str]] = {}
    for name, first in same_as.items():
        groups.setdefault(first, []).append(name)
    return groups
