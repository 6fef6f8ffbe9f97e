"""The one output contract every quantizer returns."""

from dataclasses import dataclass, field
from typing import Dict, Optional

import torch

from ..utils.value_checks import within_queued_range


@dataclass
class QuantizerOutput:
    """What a quantizer returns for channel-last input ``(..., dim)``.

    ``quantized`` carries straight-through gradients to the input; ``indices`` has the
    input's leading shape; ``loss`` is the weighted sum of ``loss_terms`` (each term is
    already multiplied by its weight, so ``loss == sum(loss_terms.values())``).
    """

    quantized: torch.Tensor
    indices: torch.Tensor
    loss: torch.Tensor
    loss_terms: Dict[str, torch.Tensor] = field(default_factory=dict)
    perplexity: Optional[torch.Tensor] = None


def batch_perplexity(indices: torch.Tensor, codebook_size: int) -> torch.Tensor:
    """exp(entropy) of the code histogram of one batch (a training monitor).

    Counts into K bins with ``index_add_``, never a (N, K) one-hot; unlike ``bincount`` its output
    shape does not depend on the values, so torch.compile keeps it in the graph.
    """
    # While the call's input check is queued, indices of a bad input (FSQ's from NaN latents) may lie outside
    # the codebook: counted clamped (an IndexError on a CPU, a device-side assert on a GPU otherwise); the
    # check raises its error at the read.
    flat = within_queued_range(indices.reshape(-1), codebook_size)
    counts = torch.zeros(codebook_size, device=flat.device).index_add_(
        0, flat, torch.ones(flat.shape, device=flat.device))
    probs = counts / counts.sum().clamp_min(1)
    entropy = -(probs * torch.log(probs.clamp_min(1e-10))).sum()
    return torch.exp(entropy)
