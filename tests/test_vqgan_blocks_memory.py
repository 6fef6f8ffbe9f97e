"""Inference memory of the VQGAN encoder / decoder: no activation is kept longer than it is needed.

The count is exact, not timed: a dispatch mode adds up the bytes of every tensor storage an op
creates and takes them off when the storage is freed. A pre-activation ResNet block at inference
needs three activations of its resolution alive at once: its input (kept for the residual), the
newest intermediate and the one it is computed from. (The official LlamaGen and taming blocks peak
at four: their swish ``x * sigmoid(x)`` makes a temporary.) Each extra reference adds one: a
resolution level called as a module keeps its input until the level is done, and a block holding
its first conv's output through the second norm and swish keeps that one.
"""

import weakref

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from hf_vq.modules.vqgan_blocks import VQGANDecoder, VQGANEncoder


class LiveStorageBytes(TorchDispatchMode):
    """Peak bytes of the storages created inside the mode that are alive at the same time."""

    def __init__(self):
        super().__init__()
        self.live = self.peak = 0
        self.sizes = {}

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                storage = tensor.untyped_storage()
                key = storage.data_ptr()
                if key not in self.sizes and storage.nbytes():
                    self.sizes[key] = storage.nbytes()
                    self.live += storage.nbytes()
                    self.peak = max(self.peak, self.live)
                    weakref.finalize(storage, self._freed, key)
        return out

    def _freed(self, key):
        self.live -= self.sizes.pop(key, 0)


ARCHITECTURE = dict(base_channels=32, channel_multipliers=(1, 1, 1), num_res_blocks=2, attention_levels=(),
                    z_channels=8)


@pytest.mark.parametrize("side", ["encoder", "decoder"])
def test_inference_peak_is_three_full_resolution_activations(side):
    torch.manual_seed(0)
    batch, size = 2, 64
    full_resolution_activation = batch * 32 * size * size * 4  # bytes of one 32-channel float32 map at 64 x 64
    if side == "encoder":
        network = VQGANEncoder(in_channels=3, **ARCHITECTURE).eval()
        inputs = torch.randn(batch, 3, size, size)
    else:
        network = VQGANDecoder(out_channels=3, **ARCHITECTURE).eval()
        inputs = torch.randn(batch, 8, size // 4, size // 4)
    with torch.no_grad():
        tracker = LiveStorageBytes()
        with tracker:
            output = network(inputs)
    assert tracker.sizes.keys() >= {output.untyped_storage().data_ptr()}  # the tracker saw the output and holds it
    assert tracker.peak > 2 * full_resolution_activation  # the blocks' three are there: the count can see them
    assert tracker.peak <= 3 * full_resolution_activation + 4 * inputs.numel() + 65536, (
        f"{side} peaked at {tracker.peak / full_resolution_activation:.2f} full-resolution activations, "
        "more than a ResNet block's three")
