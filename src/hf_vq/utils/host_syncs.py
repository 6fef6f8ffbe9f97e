"""Count the host reads of tensor values (host syncs) a block of code makes.

On a GPU, reading a device tensor's values on the host (``.item()``, ``float(t)``, ``bool(t)``,
``if t.any():``, ``.tolist()``, ``.cpu()``, ``.numpy()``, ``torch.equal``, or an op whose output
shape depends on the values: ``nonzero``, boolean-mask indexing, ``unique``, ``bincount``...) makes
the CPU wait until the GPU has run everything queued before it; meanwhile the CPU cannot queue the
next kernels, so the GPU then idles while the CPU catches up. A training step or a model call that
reads the device once costs one such stall; one that reads it ten times costs ten.

:func:`count_host_syncs` counts those reads on any device, the CPU included (where they cost
nothing, but the same code makes them on a GPU), so a test on a CPU-only machine can bound what a
step would cost on a GPU::

    with count_host_syncs() as syncs:
        model.encode(pixel_values)
    assert syncs.count <= 1, syncs.report()

What it sees:

- ops that go through the dispatcher, by a ``TorchDispatchMode``: ``aten._local_scalar_dense``
  (what ``.item()``, ``float()``, ``int()`` and ``bool()`` of a tensor become), ``aten.equal``,
  ``aten.allclose``, indexing with a boolean mask and the ops whose output size is read from the
  values (:data:`VALUE_SHAPED_OPS`);
- ``Tensor.tolist``, ``Tensor.numpy`` and ``Tensor.cpu``, which read a CPU tensor's memory
  directly without dispatching anything: they are wrapped while the block runs.

Not counted: reads made inside ``torch.optim`` (their ``step`` counters are CPU tensors on every
device unless the optimizer is fused or capturable, so reading them never waits for a GPU). On a
CPU every tensor is a host tensor, so the counter cannot tell a read of data that a GPU run would
keep on the host (a DataLoader batch before it is moved to the device) from a real sync: keep such
reads out of the counted block, or look at :meth:`HostSyncCounter.report`, which names the line
of each read.
"""

import traceback
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

#: Ops whose output shape depends on the input's values: on a GPU they copy a size to the host.
VALUE_SHAPED_OPS = (
    aten.nonzero.default, aten.masked_select.default, aten._unique2.default, aten.unique_dim.default,
    aten.unique_consecutive.default, aten.unique_dim_consecutive.default, aten.bincount.default,
    aten.repeat_interleave.Tensor,
)
SCALAR_READS = (aten._local_scalar_dense.default, aten.equal.default, aten.allclose.default)
#: Indexing ops that read a boolean mask's values to find its True positions (``x[mask]``, ``x[mask] = v``).
MASK_INDEXING_OPS = (aten.index.Tensor, aten.index_put.default, aten.index_put_.default, aten._index_put_impl_.default)

_TORCH_DIR = str(Path(torch.__file__).parent)
_TORCH_OPTIM_DIR = str(Path(torch.optim.__file__).parent)
_THIS_FILE = __file__


@dataclass
class HostSyncCounter:
    """What :func:`count_host_syncs` recorded: one ``(what, where)`` entry per host read."""

    events: list = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.events)

    def report(self) -> str:
        return "\n".join(f"{what} at {where}" for what, where in self.events) or "no host syncs"

    def _record(self, what: str) -> None:
        stack = traceback.extract_stack()[:-2]  # drop this method and the hook that called it
        if any(frame.filename.startswith(_TORCH_OPTIM_DIR) for frame in stack):
            return
        # Name the caller: the innermost frame outside torch and this module.
        where = next((f"{frame.filename}:{frame.lineno} ({frame.name})" for frame in reversed(stack)
                      if not frame.filename.startswith(_TORCH_DIR) and frame.filename != _THIS_FILE), "torch")
        self.events.append((what, where))


class _DispatchSpy(TorchDispatchMode):
    def __init__(self, counter: HostSyncCounter):
        super().__init__()
        self.counter = counter

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in SCALAR_READS or func in VALUE_SHAPED_OPS or (func in MASK_INDEXING_OPS and _has_mask(args[1])):
            self.counter._record(str(func.overloadpacket.__name__))
        return func(*args, **(kwargs or {}))


def _has_mask(indices) -> bool:
    return any(isinstance(index, torch.Tensor) and index.dtype in (torch.bool, torch.uint8) for index in indices)


_WRAPPED_METHODS = ("tolist", "numpy", "cpu")


@contextmanager
def count_host_syncs():
    """Count the host reads of tensor values made inside the block (see the module docstring)."""
    counter = HostSyncCounter()
    originals = {name: getattr(torch.Tensor, name) for name in _WRAPPED_METHODS}

    def wrap(name, original):
        def wrapper(self, *args, **kwargs):
            counter._record(f"Tensor.{name}")
            return original(self, *args, **kwargs)
        return wrapper

    for name, original in originals.items():
        setattr(torch.Tensor, name, wrap(name, original))
    try:
        with _DispatchSpy(counter):
            yield counter
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


__all__ = ["HostSyncCounter", "VALUE_SHAPED_OPS", "count_host_syncs"]
