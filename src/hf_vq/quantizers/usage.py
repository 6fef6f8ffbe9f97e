"""Codebook usage and perplexity accumulated over a whole evaluation set."""

import math
from typing import Optional

import torch

from ..utils.distributed import all_reduce_sum, reduction_device
from ..utils.value_checks import within_queued_range


class CodebookUsage:
    """Accumulate code counts; ``compute()`` gives usage fraction and perplexity.

    usage = fraction of the K codes hit at least once; perplexity = exp(entropy of the
    normalised histogram). ``compute(all_reduce=True)`` sums counts over processes first.

    The counts are an int64 tensor on the device of the indices (or ``device`` when given):
    exact, and reducible by every backend (NCCL reduces CUDA tensors only, MPS has no
    float64), so the all-reduce runs on the accelerator's device.
    """

    def __init__(self, codebook_size: int, device: Optional[torch.device] = None):
        if not isinstance(codebook_size, int) or codebook_size < 1:
            raise ValueError(f"codebook_size must be a positive integer; got {codebook_size!r}.")
        self.codebook_size = codebook_size
        self.counts = None if device is None else torch.zeros(codebook_size, dtype=torch.long, device=device)

    def update(self, indices: torch.Tensor, check_range: bool = True) -> None:
        """Count ``indices``. ``check_range=False`` for indices a quantizer just made (a training step):
        the range check reads the device on the host, a sync per call."""
        flat = indices.detach().reshape(-1).long()
        if not flat.numel():
            return
        if check_range:
            low, high = torch.stack(torch.aminmax(flat)).tolist()
            if low < 0 or high >= self.codebook_size:
                raise ValueError(f"indices out of range [0, {self.codebook_size}): min {low}, max {high}.")
        else:  # a quantizer's own indices: out of range only from a bad input whose check is queued (raised at its read)
            flat = within_queued_range(flat, self.codebook_size)
        if self.counts is None:
            self.counts = torch.zeros(self.codebook_size, dtype=torch.long, device=flat.device)
        # index_add_, not bincount: bincount reads the largest index on the host to size its output.
        self.counts.index_add_(0, flat.to(self.counts.device), torch.ones_like(flat, device=self.counts.device))

    def compute(self, all_reduce: bool = False) -> dict:
        counts = self.counts
        if counts is None:  # no indices seen here; other processes may have some
            counts = torch.zeros(self.codebook_size, dtype=torch.long, device=reduction_device())
        if all_reduce:
            counts = all_reduce_sum(counts.clone())
        # float64 on the counts' device (MPS has none: there on the CPU); one host read for the three numbers.
        counts = (counts.cpu() if counts.device.type == "mps" else counts).double()
        total = counts.sum()
        probs = counts / total.clamp_min(1)
        entropy = -torch.where(probs > 0, probs * probs.log(), 0.0).sum()
        total, entropy, usage = torch.stack([total, entropy, (counts > 0).double().mean()]).tolist()
        if total == 0:
            return {"codebook_usage": 0.0, "perplexity": 0.0, "num_tokens": 0}
        return {"codebook_usage": usage, "perplexity": math.exp(entropy), "num_tokens": int(total)}


__all__ = ["CodebookUsage"]
