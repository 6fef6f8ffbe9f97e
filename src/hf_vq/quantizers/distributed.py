"""Tiny helpers so codebook statistics agree across processes.

Quantizer behaviours call these on their statistics (EMA sums, k-means sums, usage);
with one process they are no-ops.
"""

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over all processes, in place, and return it."""
    if is_distributed():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy rank ``src``'s ``tensor`` to every process, in place, and return it."""
    if is_distributed():
        dist.broadcast(tensor, src=src)
    return tensor
