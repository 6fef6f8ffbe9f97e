"""Value checks of a model call read on the host once, not once per check.

The models refuse bad input values in eager mode (pixels out of [-1, 1] or NaN, indices or labels
out of range, non-finite latents). Each check reduces a tensor on its device to a few numbers (a
min and a max) and must read them on the host to decide: on a GPU every read is a host sync (see
:mod:`hf_vq.utils.host_syncs`). One call of a tokenizer makes several checks (the pixels, then
the quantizer's latents); with one read each, a batch-8 encode on an H100 ran slower than the
official code, which checks nothing.

Inside :func:`batched_value_checks` (a decorator of the public calls: ``encode``, ``forward``,
``decode_indices``, the GPT's ``forward`` and ``generate``) or a :func:`queued_value_checks` block
(the training engine's, over the steps between two logging steps), :func:`check_values` queues a
check instead of reading it; the queued checks are read together, with one host read, by
:func:`run_value_checks`:

- where a bad value would do harm if the call went on: before a quantizer looks indices up or
  updates its state from its input (an out-of-range index is an unclear ``IndexError`` on a CPU
  and a device-side assert that kills the CUDA context on a GPU). The GPT instead looks its
  tokens and labels up through :func:`within_queued_range` and reads its checks at the end, so a
  whole ``generate`` reads once, not once per token;
- at the end of the outermost decorated call or block, and when it raises (so a bad value is
  reported rather than what it caused later).

The first failing check (in the order they were made) raises its own error, as it would have
when read at once. Outside a decorated call a check is read at once. Under ``torch.compile`` the
callers skip their value checks altogether (a host read is a graph break).

State that a call updates from its input (a quantizer's codebook, its EMA statistics) must not take
a bad input in, yet reading the checks before the update would cost a second host read per call.
A check may therefore state on the device whether it passes (``passes``, a bool scalar that is
False only when ``raise_if_bad`` would raise); :func:`queued_checks_passed` is the AND of the
queued checks' flags, and such updates are written as ``torch.where(passed, new, old)``: a bad
input leaves the state as it was, and its error is raised at the read. Should a queued check not
state it, :func:`queued_checks_passed` reads the queue at once instead (one host read, as before).
"""

import functools
import threading
from collections.abc import Callable
from contextlib import contextmanager

import torch

_local = threading.local()


def _pending():
    return getattr(_local, "pending", None)


def read_dtype(device: torch.device) -> torch.dtype:
    """The type the checks' values are read in (a ``passes`` flag compares in it too, to agree with the read):
    float64 holds every int32 and every int64 below 2**53 exactly (MPS has no float64)."""
    return torch.float32 if device.type == "mps" else torch.float64


def check_values(stats: torch.Tensor, raise_if_bad: Callable[[list], None], passes: torch.Tensor | None = None) -> None:
    """Queue ``raise_if_bad(stats.tolist())`` (``stats``: a small 1D tensor, e.g. ``[min, max]``) in the
    current :func:`queued_value_checks` block, or run it now outside one. ``raise_if_bad`` receives
    the values as Python floats and raises the error of a bad value (or records them: the training
    engine reads its logged losses in the same host read).

    ``passes``: optional bool scalar on the device, False only when ``raise_if_bad`` would raise (see
    :func:`queued_checks_passed`). True for a value that raises is harmless (the update goes through,
    the error is still raised at the read); False for one that does not would skip an update unreported
    (``set_codes`` raises then too, as a bug).
    """
    pending = _pending()
    if pending is None:
        raise_if_bad([float(value) for value in stats.tolist()])
        return
    pending.append((stats, raise_if_bad))
    if passes is None:
        _local.unstated = True
    else:
        passed = getattr(_local, "passed", None)
        passes = passes.detach().reshape(()).to(torch.bool)
        _local.passed = passes if passed is None else passed & passes.to(passed.device)


def queued_checks_passed() -> torch.Tensor | None:
    """True (a bool scalar on the device) when every queued check passes, without reading it; ``None`` when
    nothing is queued (every check so far was read and passed).

    For updates of state from a call's input: ``torch.where(passed, new, old)`` leaves the state
    unchanged when a queued check fails, and that check raises its error at the read. When a queued
    check did not state ``passes``, the queue is read now (one host read; it raises a bad value's error)
    and ``None`` is returned.
    """
    if not _pending():
        return None
    if getattr(_local, "unstated", False):
        run_value_checks()
        return None
    return _local.passed


def has_queued_value_checks() -> bool:
    return bool(_pending())


def _clear_pass_flags() -> None:
    _local.passed = None
    _local.unstated = False


def run_value_checks() -> None:
    """Read every queued check with one host read; raise the first failing check's error."""
    pending = _pending()
    if not pending:
        return
    checks = list(pending)
    pending.clear()
    _clear_pass_flags()
    device = checks[0][0].device
    dtype = read_dtype(device)
    values = torch.cat([stats.detach().reshape(-1).to(device=device, dtype=dtype) for stats, _ in checks]).tolist()
    start = 0
    for stats, raise_if_bad in checks:
        raise_if_bad(values[start : start + stats.numel()])
        start += stats.numel()


def within_queued_range(indices: torch.Tensor, size: int) -> torch.Tensor:
    """``indices`` safe to look up in a table of ``size`` rows while their range check is queued.

    Clamped into [0, size) while checks are queued: the call raises the check's error before it
    returns anything computed from them, and the lookup neither raises an unclear error nor trips
    a device-side assert first. Unchanged otherwise (checked already, or compiling: no checks).
    """
    if torch.compiler.is_compiling() or not _pending():
        return indices
    return indices.clamp(0, size - 1)


@contextmanager
def queued_value_checks():
    """Queue the value checks made inside the block; read them together when it ends (also when it
    raises: a bad input's own error rather than what it caused). Inside another such block it
    joins that one, which reads them."""
    if _pending() is not None:
        yield
        return
    _local.pending = []
    _clear_pass_flags()
    try:
        try:
            yield
        except BaseException:
            run_value_checks()
            raise
        run_value_checks()
    finally:
        _local.pending = None
        _clear_pass_flags()


def batched_value_checks(method):
    """Decorate a public model call: its value checks (and those of the calls it makes) are read together."""

    @functools.wraps(method)
    def wrapper(*args, **kwargs):
        if torch.compiler.is_compiling():  # no value checks while compiling (a host read is a graph break)
            return method(*args, **kwargs)
        with queued_value_checks():
            return method(*args, **kwargs)

    return wrapper


__all__ = ["batched_value_checks", "check_values", "has_queued_value_checks", "queued_checks_passed", "queued_value_checks",
           "read_dtype", "run_value_checks", "within_queued_range"]
