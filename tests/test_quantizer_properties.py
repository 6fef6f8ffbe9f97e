"""Property tests (hypothesis) for every quantizer, on random inputs and codebooks.

For VectorQuantizer (euclidean, l2, cosine), SimVQ, FSQ and LFQ:
* indices are integers in [0, codebook_size) with the input's leading shape;
* ``indices_to_codes(indices)`` is exactly the forward's quantized value (index <-> code);
* the straight-through gradient is finite (and the identity for the quantized output);
* the chosen code is a nearest one: its float64 distance equals the brute-force float64
  minimum over the whole codebook up to a rounding tolerance (ties may pick any of them).
"""

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from hf_vq.quantizers import FSQ, LFQ, SimVQ, VectorQuantizer

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
VALUES = st.floats(-4, 4, allow_nan=False, allow_infinity=False, width=32)


def matrix(rows, cols):
    return arrays(np.float32, (rows, cols), elements=VALUES)


@st.composite
def vq_cases(draw):
    rows, dim, size = draw(st.integers(1, 24)), draw(st.integers(1, 5)), draw(st.integers(1, 12))
    return draw(matrix(rows, dim)), draw(matrix(size, dim))


def check_common(quantizer, z):
    """Properties every quantizer has; returns the output (quantized, indices) of a grad forward."""
    z = z.clone().requires_grad_(True)
    out = quantizer(z)
    assert out.indices.dtype == torch.long and out.indices.shape == z.shape[:-1]
    assert 0 <= int(out.indices.min()) and int(out.indices.max()) < quantizer.codebook_size
    assert torch.equal(quantizer.indices_to_codes(out.indices).to(out.quantized.dtype), out.quantized.detach())
    weights = torch.randn_like(z)
    ((out.quantized * weights).sum() + out.loss).backward()
    assert torch.isfinite(z.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in quantizer.parameters() if p.grad is not None)
    return out, weights


def assert_nearest(vectors, table, indices, scale):
    """``table[indices[i]]`` is at the minimum float64 distance from ``vectors[i]`` (up to rounding)."""
    distances = torch.cdist(vectors.double(), table.double()) ** 2
    chosen = distances.gather(1, indices[:, None]).squeeze(1)
    tolerance = 1e-5 * (1 + scale)
    assert (chosen - distances.min(1).values).max() <= tolerance


def unit(x):
    return F.normalize(x.double(), dim=-1)


@SETTINGS
@given(case=vq_cases(), mode=st.sampled_from(["euclidean", "l2_norm", "cosine"]))
# found by hypothesis: a vector shorter than F.normalize's eps was normalised twice before the search
@example(case=(np.array([[2.220446e-16]], np.float32), np.array([[0.0], [1.0]], np.float32)), mode="l2_norm")
def test_vector_quantizer_properties(case, mode):
    z_np, codebook_np = case
    dim, size = z_np.shape[1], codebook_np.shape[0]
    vq = VectorQuantizer(dim, size, l2_norm=mode == "l2_norm", distance="cosine" if mode == "cosine" else "euclidean")
    vq.set_codes(torch.from_numpy(codebook_np))
    z = torch.from_numpy(z_np)
    out, weights = check_common(vq, z)
    if mode == "euclidean":
        # the quantized value passes the output gradient to the input unchanged (identity)
        z2 = z.clone().requires_grad_(True)
        (vq(z2).quantized * weights).sum().backward()
        torch.testing.assert_close(z2.grad, weights)
        assert_nearest(z, vq.codebook.detach(), out.indices, scale=16 * dim)
    else:
        # cosine / l2: nearest direction (zero vectors have every code at the same distance)
        assert_nearest(unit(z), unit(vq.codebook.detach()), out.indices, scale=4.0)


@SETTINGS
@given(z=st.integers(1, 24).flatmap(lambda rows: matrix(rows, 4)), seed=st.integers(0, 2**16), size=st.integers(1, 12))
def test_simvq_properties(z, seed, size):
    torch.manual_seed(seed)
    sim = SimVQ(4, size)
    z = torch.from_numpy(z)
    out, _ = check_common(sim, z)
    table = sim.frozen_codebook.double() @ sim.codebook_projection.weight.double().t() + sim.codebook_projection.bias.double()
    assert_nearest(z, table, out.indices, scale=64.0)


LEVELS = st.lists(st.integers(2, 6), min_size=1, max_size=4)


@SETTINGS
@given(levels=LEVELS, data=st.data())
def test_fsq_properties(levels, data):
    fsq = FSQ(levels)
    z = torch.from_numpy(data.draw(st.integers(1, 24).flatmap(lambda rows: matrix(rows, len(levels)))))
    out, weights = check_common(fsq, z)
    # the code is the nearest point of the grid of all prod(levels) codes to the bounded,
    # rescaled input (what rounding promises)
    half_width = torch.tensor([level // 2 for level in levels], dtype=torch.float64)
    scaled = fsq.bound(z.double()) / half_width
    all_codes = fsq.indices_to_codes(torch.arange(fsq.codebook_size)).double()
    assert_nearest(scaled, all_codes, out.indices, scale=4.0)
    # straight-through: the output gradient reaches the input through d bound / dz only
    z2 = z.double().clone().requires_grad_(True)
    expected = torch.autograd.grad((fsq.bound(z2) / half_width * weights.double()).sum(), z2)[0]
    z3 = z.clone().requires_grad_(True)
    (fsq(z3).quantized * weights).sum().backward()
    torch.testing.assert_close(z3.grad.double(), expected, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(dim=st.integers(1, 6), data=st.data())
def test_lfq_properties(dim, data):
    lfq = LFQ(dim, entropy_weight=0.1, entropy_temperature=0.5)
    z = torch.from_numpy(data.draw(st.integers(1, 24).flatmap(lambda rows: matrix(rows, dim))))
    out, weights = check_common(lfq, z)
    implicit = lfq.indices_to_codes(torch.arange(lfq.codebook_size)).double()
    assert_nearest(z, implicit, out.indices, scale=16.0 * dim)
    z2 = z.clone().requires_grad_(True)
    (lfq(z2).quantized * weights).sum().backward()
    torch.testing.assert_close(z2.grad, weights)
