"""The TEAS training objective, Eq. 6-8: L = CE(u, y) + lambda * l_r.

The printed Eq. 6, l_r = sum_l (sum_l #Act(l) #Para(l)) / #Act(l), reuses the index l. Read
literally, with every #Act differentiable, its gradient P_j sum_l 1/A_l - S / A_j^2 is negative
for the quiet layers: it would raise their activity. The paper's intent is a penalty on activity
that is weaker on the more active (vulnerable) layers ("penalize more on smaller layers"). Our
reading, per layer: the activity-weighted parameter count #Act(l) #Para(l) in the numerator,
through the spikes (the spike tensors' mean, so the surrogate gradient reaches the weights), and
#Act(l) in the denominator as a constant weight (a reference activity, no gradient):

    l_r = sum_l #Para(l) * A_l / Aref_l / sum_l #Para(l)

A_l = the mean of layer l's spikes over window, batch and neurons (divided by the spike
amplitude: the per-neuron rate of activity.py); Aref_l = the activity measured at the last
allocation or adjustment (`reference`), or the batch's own detached activity (then l_r = 1 at
every step, its gradient still P_l / (A_l P)). dl_r / dA_l = P_l / (Aref_l P) > 0, largest for
the least active layers. Dividing by sum #Para makes lambda comparable between networks ("to
unify the exploration of lambda"). A layer with zero reference activity is left out (nothing to
push down). #Para(l) = weights and biases of the Conv2d / Linear layers that run in layer l's
window (layerwise.synaptic_owners). u in Eq. 7 is the mean of the logits over the last window."""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from seenn.common.errors import SeennError
from seenn.teas.layerwise import LayerwiseResult, spiking_layers, synaptic_owners


def layer_parameters(model: nn.Module, x: torch.Tensor) -> list[int]:
    """#Para(l) per spiking layer, in `spiking_layers` order."""
    owners = synaptic_owners(model, x)
    counts = [0] * len(spiking_layers(model))
    modules = dict(model.named_modules())
    for name, l in owners.items():
        counts[l] += sum(p.numel() for p in modules[name].parameters(recurse=False))
    return counts


def spike_rates(result: LayerwiseResult) -> list[torch.Tensor]:
    """Differentiable per-neuron firing rate of each layer of a layer-major run."""
    return [s.mean() / result.amplitude[name] for name, s in result.spikes.items()]


def activity_regularizer(rates: Sequence[torch.Tensor], params: Sequence[int],
                         reference: Sequence[float] | None = None) -> torch.Tensor:
    """l_r (see the module docstring) from per-layer rates A_l (tensors with gradient)."""
    if len(rates) != len(params) or (reference is not None and len(reference) != len(rates)):
        raise SeennError(f"the regularizer needs one rate, #Para and reference per layer: got {len(rates)}, "
                         f"{len(params)}, {None if reference is None else len(reference)}")
    total = float(sum(params))
    if not total > 0:
        raise SeennError(f"#Para must have a positive sum, got {list(params)}")
    ref = [float(r.detach()) for r in rates] if reference is None else [float(r) for r in reference]
    terms = [p * a / r for a, p, r in zip(rates, params, ref) if r > 0]
    if not terms:
        return rates[0].new_zeros(())
    return torch.stack(terms).sum() / total


def teas_loss(result: LayerwiseResult, labels: torch.Tensor, params: Sequence[int], lam: float,
              reference: Sequence[float] | None = None,
              logit_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 8: (CE + lambda l_r, CE, l_r), CE (Eq. 7) on the mean logits over the last window
    times `logit_scale` (1: the rate; the last window's length: the spike counts of TeasMLP)."""
    if lam < 0:
        raise SeennError(f"the regularizer's lambda must be >= 0, got {lam}")
    ce = F.cross_entropy(result.mean_logits() * logit_scale, labels)
    lr = activity_regularizer(spike_rates(result), params, reference)
    return ce + lam * lr, ce, lr
