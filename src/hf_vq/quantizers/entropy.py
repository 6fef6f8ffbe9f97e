"""The codebook entropy penalty, shared by :class:`EntropyRegularization` and :class:`LFQ`."""

import torch
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint


def _chunk_stats(chunk: torch.Tensor, codes: torch.Tensor, temperature: float):
    distances = chunk.pow(2).sum(1, keepdim=True) + codes.pow(2).sum(1) - 2 * chunk @ codes.t()
    log_probs = F.log_softmax(-distances / temperature, dim=1)
    probs = log_probs.exp()
    return probs.sum(0), -(probs * log_probs).sum()


def codebook_entropy_loss(
    vectors: torch.Tensor,
    codes: torch.Tensor,
    temperature: float,
    eps: float = 1e-5,
    chunk_size: int = 4096,
) -> torch.Tensor:
    """``mean sample entropy - entropy of the mean`` of ``p_i = softmax(-||v_i - c||^2 / temperature)``.

    ``vectors`` (N, d), ``codes`` (K, d). The first term makes each assignment confident, the
    second spreads usage over the codebook. Computed over chunks of ``chunk_size`` vectors
    under activation checkpointing, so only the (K,) running sums are kept for backward,
    never the (N, K) probability matrix.
    """
    n = vectors.shape[0]
    prob_sum = 0.0
    entropy_sum = 0.0
    for start in range(0, n, chunk_size):
        chunk = vectors[start : start + chunk_size]
        if torch.is_grad_enabled() and (chunk.requires_grad or codes.requires_grad):
            p, h = checkpoint(_chunk_stats, chunk, codes, temperature, use_reentrant=False)
        else:
            p, h = _chunk_stats(chunk, codes, temperature)
        prob_sum = prob_sum + p
        entropy_sum = entropy_sum + h
    avg_probs = prob_sum / n
    avg_entropy = -(avg_probs * torch.log(avg_probs + eps)).sum()
    return entropy_sum / n - avg_entropy


__all__ = ["codebook_entropy_loss"]
