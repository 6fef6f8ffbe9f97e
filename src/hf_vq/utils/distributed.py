"""Tiny helpers so statistics agree across processes.

Codebook behaviours, codebook usage, evaluation sums and FID statistics call these; with
one process they are no-ops. Collective backends reduce tensors on their own device
(NCCL: CUDA tensors only), so callers create the tensors they reduce on the device of the
data (the accelerator's device), never on the CPU by default.
"""

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def reduction_device() -> torch.device:
    """The device the default process group reduces on: the current CUDA device under NCCL, else CPU.

    For a tensor that must take part in a collective but has no data to follow (a process
    that saw no batch).
    """
    if is_distributed() and dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


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
