"""Quantizers against independent numpy references and hand-worked cases."""

import itertools
import math

import numpy as np
import pytest
import torch

from hf_vq.quantizers import (
    FSQ,
    LFQ,
    CodebookUsage,
    DeadCodeReinit,
    EMAUpdate,
    EntropyRegularization,
    KMeansInit,
    SimVQ,
    VectorQuantizer,
    kmeans,
    nearest_code,
)


def numpy_nearest(vectors, codebook):
    d = ((vectors[:, None, :] - codebook[None, :, :]) ** 2).sum(-1)
    return d.argmin(1)


@pytest.mark.parametrize("max_elements", [7, 1000, 2**24])
def test_nearest_code_matches_brute_force(max_elements):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(300, 5)).astype(np.float64)
    codebook = rng.normal(size=(37, 5)).astype(np.float64)
    ours = nearest_code(torch.from_numpy(vectors), torch.from_numpy(codebook), max_elements=max_elements)
    np.testing.assert_array_equal(ours.numpy(), numpy_nearest(vectors, codebook))


def test_vector_quantizer_indices_and_codes_match_numpy():
    vq = VectorQuantizer(dim=6, codebook_size=50, codebook_init="normal").double()
    z = torch.randn(4, 5, 6, dtype=torch.float64)
    out = vq(z)
    expected = numpy_nearest(z.reshape(-1, 6).numpy(), vq.codebook.detach().numpy()).reshape(4, 5)
    np.testing.assert_array_equal(out.indices.numpy(), expected)
    np.testing.assert_allclose(out.quantized.detach().numpy(), vq.codebook.detach().numpy()[expected])


def test_l2_norm_and_cosine_search_match_numpy():
    rng = np.random.default_rng(1)
    z = rng.normal(size=(64, 8))
    for mode in ("l2_norm", "cosine"):
        vq = VectorQuantizer(8, 20, l2_norm=mode == "l2_norm", distance="cosine" if mode == "cosine" else "euclidean",
                             codebook_init="normal").double()
        out = vq(torch.from_numpy(z))
        codebook = vq.codebook.detach().numpy()
        zn = z / np.linalg.norm(z, axis=1, keepdims=True)
        cn = codebook / np.linalg.norm(codebook, axis=1, keepdims=True)
        expected = (zn @ cn.T).argmax(1)  # max cosine == min distance between unit vectors
        np.testing.assert_array_equal(out.indices.numpy(), expected)
        # l2_norm outputs the normalised code; cosine search outputs the raw code (CVQ-VAE)
        np.testing.assert_allclose(out.quantized.detach().numpy(), (cn if mode == "l2_norm" else codebook)[expected], atol=1e-12)


def test_factorised_codes_project_in_and_out():
    vq = VectorQuantizer(dim=16, codebook_size=10, codebook_dim=4, codebook_init="normal")
    z = torch.randn(3, 16)
    out = vq(z)
    down = vq.project_in(z).detach().numpy()
    expected = numpy_nearest(down, vq.codebook.detach().numpy())
    np.testing.assert_array_equal(out.indices.numpy(), expected)
    torch.testing.assert_close(out.quantized, vq.indices_to_codes(out.indices))


def test_losses_and_legacy_beta():
    z = torch.randn(10, 4)
    vq = VectorQuantizer(4, 8, beta=0.25, codebook_init="normal")
    out = vq(z)
    q = vq.codebook[out.indices].detach()
    mse = ((z - q) ** 2).mean()
    torch.testing.assert_close(out.loss_terms["commitment"], 0.25 * mse)
    torch.testing.assert_close(out.loss_terms["codebook"], mse)
    vq.legacy_beta = True
    out = vq(z)
    torch.testing.assert_close(out.loss_terms["commitment"], mse)
    torch.testing.assert_close(out.loss_terms["codebook"], 0.25 * mse)


def test_straight_through_gradients_reach_input_and_codebook():
    vq = VectorQuantizer(4, 8, codebook_init="normal")
    z = torch.randn(6, 4, requires_grad=True)
    out = vq(z)
    out.quantized.sum().backward()
    torch.testing.assert_close(z.grad, torch.ones_like(z))  # identity gradient through the lookup
    z.grad = None
    vq.codebook.grad = None
    vq(z).loss.backward()
    assert vq.codebook.grad is not None and vq.codebook.grad.abs().sum() > 0
    assert z.grad.abs().sum() > 0


def test_quantized_value_is_exactly_the_code():
    vq = VectorQuantizer(4, 8, codebook_init="normal")
    z = torch.randn(20, 4, requires_grad=True)
    out = vq(z)
    # Exact on purpose: the straight-through sum adds v - v == 0 to the looked-up code, and both
    # sides look up the same codebook rows.
    assert torch.equal(out.quantized.detach(), vq.indices_to_codes(out.indices).detach())


# -- FSQ ---------------------------------------------------------------------------------

@pytest.mark.parametrize("levels", [[8, 6, 5], [8, 5, 5, 5], [3, 4], [2, 2, 2]])
def test_fsq_indices_are_a_bijection(levels):
    fsq = FSQ(levels)
    size = math.prod(levels)
    assert fsq.codebook_size == size
    all_indices = torch.arange(size)
    codes = fsq.indices_to_codes(all_indices)
    assert torch.unique(codes, dim=0).shape[0] == size
    assert torch.equal(fsq.codes_to_indices(codes), all_indices)
    # every code is reachable by forward: feed the pre-image of each code through the bound
    # (atanh inverts tanh; the straight-through value equals the code)
    out = fsq(codes * 0)  # the centre code
    assert out.indices.numel() == size


def test_fsq_values_hand_worked():
    # levels 5 (odd): bound(z) = tanh(z) * 2 * (1 - eps), values {-2..2} / 2
    # levels 4 (even): half_l = 1.5 (1 - eps), offset 0.5, values {-2..1} / 2
    fsq = FSQ([5, 4])
    z = torch.tensor([[100.0, 100.0], [-100.0, -100.0], [0.0, 0.0]])
    out = fsq(z)
    expected = torch.tensor([[1.0, 0.5], [-1.0, -1.0], [0.0, 0.0]])
    torch.testing.assert_close(out.quantized, expected)
    # digits (value * half_width + half_width): [4, 3], [0, 0], [2, 2] -> index d0 + 5 * d1
    assert out.indices.tolist() == [4 + 5 * 3, 0, 2 + 5 * 2]


def test_fsq_rejects_bad_levels_and_shape():
    with pytest.raises(ValueError, match="levels"):
        FSQ([1, 4])
    with pytest.raises(ValueError, match="expects input"):
        FSQ([8, 8])(torch.randn(2, 3))


# -- EMA, k-means, entropy, CVQ -----------------------------------------------------------

@pytest.mark.parametrize("levels", [[8, 8, 8, 6, 5], [7, 5, 5, 5], [3, 4]])
def test_fsq_matches_vector_quantize_pytorch_bit_for_bit(levels):
    """Independent reference: vector-quantize-pytorch's FSQ (the same published bound). Our inference path
    (no graph: no straight-through term, indices from the rounded digits) and our training path give its
    codes, indices and input gradients exactly, and the same bits as each other (zeros included)."""
    vqp = pytest.importorskip("vector_quantize_pytorch")
    torch.manual_seed(0)
    z = torch.randn(2, 2048, len(levels)) * 2
    z[0, :4] = torch.tensor([0.0, -0.0, -1e-4, 1e-4])[:, None]  # values that round to -0 and +0
    reference, ours = vqp.FSQ(levels=levels).eval(), FSQ(levels).eval()
    with torch.no_grad():
        expected_codes, expected_indices = reference(z)
        fast = ours(z)
    assert torch.equal(fast.quantized, expected_codes) and torch.equal(fast.indices, expected_indices.long())
    z_ours, z_reference, weights = z.clone().requires_grad_(), z.clone().requires_grad_(), torch.randn(z.shape)
    trained = ours(z_ours)
    (trained.quantized * weights).sum().backward()
    (reference(z_reference)[0] * weights).sum().backward()
    assert torch.equal(z_ours.grad, z_reference.grad)
    assert torch.equal(trained.quantized.detach().view(torch.int32), fast.quantized.view(torch.int32))
    assert torch.equal(trained.indices, fast.indices)


def test_fsq_trains_after_a_forward_under_inference_mode():
    # FSQ keeps its bound's constants between calls: ones first built under inference_mode must still
    # serve a later forward whose backward needs them.
    fsq = FSQ([8, 5, 5])
    with torch.inference_mode():
        inferred = fsq(torch.ones(4, 3))
    z = torch.ones(4, 3, requires_grad=True)
    trained = fsq(z)
    trained.quantized.sum().backward()
    assert torch.equal(trained.quantized.detach(), inferred.quantized) and z.grad.shape == (4, 3)


def test_fsq_and_lfq_indices_are_exact_under_bfloat16_autocast():
    # the indices are sums of integers computed in float32: autocast (which runs matrix products in
    # bfloat16) must not touch them; 2**14 codes need 15 significant bits, bfloat16 has 8
    torch.manual_seed(0)
    z_fsq, z_lfq = torch.randn(4096, 5) * 2, torch.randn(4096, 14)
    fsq, lfq = FSQ([8, 8, 8, 6, 5]), LFQ(14)
    with torch.no_grad():
        expected = fsq(z_fsq).indices, lfq(z_lfq).indices
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(fsq(z_fsq).indices, expected[0]) and torch.equal(lfq(z_lfq).indices, expected[1])
    assert torch.equal(expected[1], ((z_lfq > 0).long() << torch.arange(14)).sum(-1))
    assert expected[0].max() > 2**13 and expected[1].max() > 2**13


def test_lfq_signs_and_indices_against_numpy():
    """Independent reference: numpy's sign bits (0 counts as negative) and sum_i bit_i 2**i, at 2**14 codes;
    the inference path (no straight-through term) and the training path agree, and the gradient is the
    identity (straight-through)."""
    rng = np.random.default_rng(0)
    z = rng.standard_normal((4096, 14)).astype(np.float32)
    z[:3, :] = [[0.0], [-0.0], [1e-30]]
    bits = (z > 0).astype(np.int64)
    expected_codes = np.where(z > 0, 1.0, -1.0).astype(np.float32)
    expected_indices = (bits << np.arange(14)).sum(-1)
    lfq = LFQ(14).eval()
    with torch.no_grad():
        fast = lfq(torch.from_numpy(z))
    np.testing.assert_array_equal(fast.quantized.numpy(), expected_codes)
    np.testing.assert_array_equal(fast.indices.numpy(), expected_indices)
    z_grad = torch.from_numpy(z[:256]).requires_grad_()  # a slice: the entropy term compares with all 2**14 codes
    trained = lfq.train()(z_grad)
    weights = torch.randn(z_grad.shape)
    (trained.quantized * weights).sum().backward()
    assert torch.equal(trained.quantized.detach(), fast.quantized[:256])
    assert torch.equal(trained.indices, fast.indices[:256])
    assert torch.equal(z_grad.grad, weights)


def test_ema_step_equals_hand_computation():
    vq = VectorQuantizer(2, 3, behaviours=[EMAUpdate(decay=0.9)])
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]]))
    ema = vq.behaviours[0]
    ema.reset_state(vq)
    z = torch.tensor([[1.0, 1.0], [-1.0, 1.0], [9.0, 11.0]])  # codes 0, 0, 1; code 2 unused
    vq.train()
    vq(z)
    # count = 0.9 * 1 + 0.1 * n ; sum = 0.9 * code + 0.1 * sum(assigned)
    count = np.array([0.9 + 0.1 * 2, 0.9 + 0.1 * 1, 0.9])
    sums = np.array([[0.9 * 0 + 0.1 * 0.0, 0.9 * 0 + 0.1 * 2.0], [0.9 * 10 + 0.1 * 9, 0.9 * 10 + 0.1 * 11], [0.9 * -10, 0.9 * 5]])
    np.testing.assert_allclose(vq.codebook.detach().numpy(), sums / count[:, None], rtol=1e-6)
    np.testing.assert_allclose(vq.codebook.detach().numpy()[2], [-10.0, 5.0], rtol=1e-6)  # unused code unchanged
    assert not vq.codebook.requires_grad and "codebook" not in vq(z).loss_terms


def test_kmeans_recovers_separated_clusters():
    centers = torch.tensor([[10.0, 0.0], [-10.0, 0.0], [0.0, 10.0]])
    points = torch.cat([c + 0.1 * torch.randn(50, 2) for c in centers])
    found = kmeans(points, 3, iters=10)
    matched = sorted(found.tolist())
    torch.testing.assert_close(torch.tensor(matched), torch.tensor(sorted(centers.tolist())), atol=0.1, rtol=0)


def test_kmeans_init_runs_once_on_first_training_batch():
    vq = VectorQuantizer(2, 2, behaviours=[KMeansInit(iters=5), EMAUpdate()])
    points = torch.cat([torch.full((20, 2), 5.0), torch.full((20, 2), -5.0)]) + 0.01 * torch.randn(40, 2)
    vq.train()
    vq(points)
    assert sorted(vq.codebook[:, 0].round().tolist()) == [-5.0, 5.0]
    before = vq.codebook.clone()
    vq(points + 100)  # no second k-means: EMA moves codes only partially
    assert bool(vq.behaviours[0].initialised)
    assert (vq.codebook - before).abs().max() < 100


def numpy_entropy_loss(z, codes, temperature, eps=1e-5):
    d = ((z[:, None, :] - codes[None]) ** 2).sum(-1)
    logits = -d / temperature
    logits = logits - logits.max(1, keepdims=True)
    p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    sample_entropy = -(p * np.log(p)).sum(1).mean()
    avg = p.mean(0)
    avg_entropy = -(avg * np.log(avg + eps)).sum()
    return sample_entropy - avg_entropy


def test_entropy_loss_hand_worked_case():
    # Two vectors each exactly on one of two far-apart codes: assignments are certain
    # (sample entropy 0) and usage is uniform (avg entropy log 2): loss = -log 2.
    reg = EntropyRegularization(weight=1.0, temperature=0.01)
    z = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    codes = torch.tensor([[0.0, 0.0], [10.0, 0.0]])
    loss = reg.entropy_loss(z, codes)
    assert abs(loss.item() - 2 * 0.5 * math.log(0.5 + 1e-5)) < 1e-6
    assert abs(loss.item() + math.log(2)) < 1e-4


def test_entropy_loss_chunked_equals_numpy_and_full_gradient():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(50, 3))
    codes = rng.normal(size=(7, 3))
    reg = EntropyRegularization(weight=1.0, temperature=0.5, chunk_size=8)
    zt = torch.tensor(z, requires_grad=True)
    loss = reg.entropy_loss(zt, torch.tensor(codes))
    assert abs(loss.item() - numpy_entropy_loss(z, codes, 0.5)) < 1e-8
    loss.backward()
    chunked_grad = zt.grad.clone()
    zt.grad = None
    EntropyRegularization(weight=1.0, temperature=0.5, chunk_size=1000).entropy_loss(zt, torch.tensor(codes)).backward()
    torch.testing.assert_close(chunked_grad, zt.grad)


def test_cvq_reinit_formula_and_closest_anchor():
    vq = VectorQuantizer(2, 3, distance="euclidean", behaviours=[DeadCodeReinit(anchor="closest", decay=0.99)])
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor([[0.0, 0.0], [1.0, 1.0], [50.0, 50.0]]))
    old = vq.codebook.detach().clone().numpy()
    z = torch.tensor([[0.1, 0.0], [0.0, 0.1], [0.9, 1.0], [3.0, 3.0]])
    vq.train()
    out = vq(z)
    counts = np.bincount(out.indices.numpy(), minlength=3)
    usage = 0.01 * counts / counts.sum()
    alpha = np.exp(-(usage * 3 * 10) / (1 - 0.99) - 1e-3)
    zn = z.numpy()
    closest = numpy_nearest(old, zn)  # for each code, its closest feature
    expected = old * (1 - alpha[:, None]) + zn[closest] * alpha[:, None]
    np.testing.assert_allclose(vq.codebook.detach().numpy(), expected, rtol=1e-5, atol=1e-6)
    # the dead code (50, 50) has moved almost all the way (alpha = exp(-1e-3)) to its anchor (3, 3)
    assert np.abs(vq.codebook.detach().numpy()[2] - [3.0, 3.0]).max() < 0.05


@pytest.mark.parametrize("anchor", ["random", "probabilistic"])
def test_cvq_anchors_are_batch_features(anchor):
    vq = VectorQuantizer(2, 4, distance="cosine", behaviours=[DeadCodeReinit(anchor=anchor)])
    features = torch.randn(16, 2)
    anchors = vq.behaviours[0].anchors(vq, features)
    assert anchors.shape == (4, 2)
    assert all(any(torch.equal(a, f) for f in features) for a in anchors)  # anchors are copied rows: exact


def test_cvq_random_anchors_come_from_the_feature_pool():
    vq = VectorQuantizer(2, 4, distance="cosine", behaviours=[DeadCodeReinit(anchor="random")])
    reinit = vq.behaviours[0]
    initial = reinit.feature_pool.clone()
    assert initial.abs().max() <= 1 / 4  # U(-1/K, 1/K) as the official FeaturePool
    first = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    pool = reinit.anchors(vq, first)  # a small batch fills rows 0-1, rows 2-3 keep their start values
    torch.testing.assert_close(pool, torch.cat([first, initial[2:]]))
    second = torch.tensor([[5.0, 6.0], [7.0, 8.0], [9.0, 10.0]])
    pool = reinit.anchors(vq, second)  # only two rows are left: the first two features are stored
    torch.testing.assert_close(pool, torch.cat([first, second[:2]]))
    assert int(reinit.pool_filled) == 4
    third = torch.tensor([[-1.0, -1.0]])
    pool = reinit.anchors(vq, third)  # full: one random row is overwritten
    changed = (pool != torch.cat([first, second[:2]])).any(1)
    assert int(changed.sum()) == 1 and torch.equal(pool[changed][0], third[0])


def test_unknown_options_raise():
    with pytest.raises(ValueError, match="anchor"):
        DeadCodeReinit(anchor="nearest")
    with pytest.raises(ValueError, match="distance"):
        VectorQuantizer(4, 8, distance="manhattan")
    with pytest.raises(ValueError, match="channel-last"):
        VectorQuantizer(4, 8)(torch.randn(2, 5))


# -- SimVQ, LFQ, usage --------------------------------------------------------------------

def test_simvq_uses_projected_codebook_for_search_and_decoding():
    sim = SimVQ(4, 32).double()
    z = torch.randn(10, 4, dtype=torch.float64)
    out = sim(z)
    w, b = sim.codebook_projection.weight.detach().numpy(), sim.codebook_projection.bias.detach().numpy()
    projected = sim.frozen_codebook.numpy() @ w.T + b
    np.testing.assert_array_equal(out.indices.numpy(), numpy_nearest(z.numpy(), projected))
    np.testing.assert_allclose(sim.indices_to_codes(out.indices).detach().numpy(), projected[out.indices.numpy()])
    out.loss.backward()
    assert sim.codebook_projection.weight.grad.abs().sum() > 0
    assert "frozen_codebook" in dict(sim.named_buffers())  # frozen: a buffer, not a parameter


def test_lfq_bits_and_entropy():
    lfq = LFQ(3, entropy_weight=1.0, entropy_temperature=0.5)
    z = torch.tensor([[0.5, -0.2, 0.1], [-1.0, -1.0, -1.0]], dtype=torch.float64)
    out = lfq(z)
    assert out.indices.tolist() == [1 + 4, 0]
    torch.testing.assert_close(out.quantized, torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, -1.0]], dtype=torch.float64))
    codes = np.array(list(itertools.product([-1, 1], repeat=3)))[:, ::-1]
    expected = numpy_entropy_loss(z.numpy(), codes, 0.5)
    assert abs(out.loss_terms["entropy"].item() - expected) < 1e-8
    torch.testing.assert_close(lfq.indices_to_codes(out.indices), out.quantized, check_dtype=False)


def test_codebook_usage_against_numpy():
    rng = np.random.default_rng(0)
    usage = CodebookUsage(20)
    all_indices = []
    for _ in range(3):
        idx = rng.integers(0, 12, size=(4, 5))
        usage.update(torch.from_numpy(idx))
        all_indices.append(idx.ravel())
    flat = np.concatenate(all_indices)
    counts = np.bincount(flat, minlength=20)
    p = counts[counts > 0] / counts.sum()
    result = usage.compute()
    assert result["codebook_usage"] == (counts > 0).mean()
    assert abs(result["perplexity"] - np.exp(-(p * np.log(p)).sum())) < 1e-9
    with pytest.raises(ValueError, match="out of range"):
        usage.update(torch.tensor([25]))
