"""Why a network may not start learning: per-layer scales of activations and gradients.

Section 5's init (weights N(0, 0.01), biases 1 in some layers) is reported by public
reproductions to leave the loss stuck at ln(classes). One forward and backward pass shows
where: outputs that shrink layer by layer, or that a bias of 1 swamps, give logits that hardly
depend on the input (loss ~ln(classes)) and tiny gradients in the early layers; ReLUs with no
positive inputs pass no gradient at all.
"""

from __future__ import annotations

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from .model import named_layers


def layer_scales(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> tuple[pd.DataFrame, float]:
    """One training-mode forward and backward pass of a batch; returns (table, loss).

    The table has one row per conv/linear layer, in the order the forward pass reached them:
    layer, output_std (std of its pre-activation output), positive_fraction (share of outputs
    > 0, the ReLUs that are alive), grad_std (std of the weight's gradient under the
    cross-entropy loss) and grad_to_weight (|grad| / |weight|, Frobenius norms: the relative
    change one SGD step of lr 1 would make). The loss is the batch's mean cross-entropy.

    The model's .grad fields are left untouched (gradients come from torch.autograd.grad) and
    its train/eval mode is restored. Training mode means dropout is on, as in a real step.
    """
    names = {layer: name for name, layer in named_layers(model)}
    rows: dict[nn.Module, dict] = {}

    def record(layer: nn.Module, inputs, output: torch.Tensor) -> None:
        out = output.detach().float()
        rows.setdefault(layer, {"layer": names[layer], "output_std": out.std().item(),
                                "positive_fraction": (out > 0).float().mean().item()})

    was_training = model.training
    handles = [layer.register_forward_hook(record) for layer in names]
    try:
        model.train()
        device = next(model.parameters()).device
        loss = F.cross_entropy(model(images.to(device)).float(), labels.to(device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    layers = list(rows)
    grads = torch.autograd.grad(loss, [layer.weight for layer in layers], allow_unused=True)
    for layer, grad in zip(layers, grads):
        grad = torch.zeros_like(layer.weight) if grad is None else grad
        rows[layer]["grad_std"] = grad.float().std().item()
        rows[layer]["grad_to_weight"] = (grad.norm() / layer.weight.detach().norm()).item()
    return pd.DataFrame(list(rows.values())), loss.item()


@torch.no_grad()
def logit_stats(model: nn.Module, images: torch.Tensor) -> dict[str, float]:
    """Eval-mode logits of a batch, summarized in three numbers.

    class_spread: std of the logits across classes (mean over images). image_spread: std across
    the images (mean over classes), how much the output depends on the input at all.
    max_probability: mean of the softmax's largest probability. An image_spread near 0 means
    the output ignores the input: every image gets the same prediction, and the loss sits near
    ln(classes), off by a term that grows with class_spread.
    """
    was_training = model.training
    try:
        model.eval()
        logits = model(images.to(next(model.parameters()).device)).float()
    finally:
        model.train(was_training)
    return {"class_spread": logits.std(dim=1).mean().item(), "image_spread": logits.std(dim=0).mean().item(),
            "max_probability": logits.softmax(dim=1).max(dim=1).values.mean().item()}
