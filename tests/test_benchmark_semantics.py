"""What the ImageNet 64x64 benchmark code does, checked by hand: straight-through estimator,
the two l2 modes, the EMA start, IBQ, the residual block, the transposed-conv bias init and the
train crop. The end-to-end parity with the benchmark code is tests/test_visual_tokenizer.py."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import load_file
from transformers import AutoModel

import hf_vq
from hf_vq.data import transforms as transform_module
from hf_vq.data.transforms import TrainTransform, to_tensor
from hf_vq.modules.simple_cnn import SimpleResidualBlock
from hf_vq.quantizers import IBQ, EMAUpdate, SimVQ, VectorQuantizer

FIXTURE = "tests/fixtures/visual_tokenizer_tiny.safetensors"


def normalize(array):
    return array / np.linalg.norm(array, axis=-1, keepdims=True)


# -- straight-through estimator -----------------------------------------------------------

@pytest.mark.parametrize("kind", ["euclidean", "cosine", "l2_search", "l2_full", "simvq"])
def test_reconstruction_gradient_reaches_the_encoder_only(kind):
    """forward value = code, gradient = identity to the vectors, nothing into the codebook (or SimVQ's map)."""
    torch.manual_seed(0)
    if kind == "simvq":
        quantizer = SimVQ(4, 8)
        learned = quantizer.codebook_projection.weight
    else:
        quantizer = VectorQuantizer(4, 8, codebook_init="normal", distance="cosine" if kind == "cosine" else "euclidean",
                                    l2_norm={"l2_search": "search", "l2_full": "full"}.get(kind, False))
        learned = quantizer.codebook
    z = torch.randn(6, 4, requires_grad=True)
    out = quantizer(z)
    assert torch.equal(out.quantized.detach(), quantizer.indices_to_codes(out.indices).detach())
    out.quantized.pow(2).sum().backward()  # a reconstruction-only loss
    assert learned.grad is None or not learned.grad.any()
    upstream = 2 * out.quantized.detach()
    if kind == "l2_full":  # LlamaGen: the gradient goes through the normalisation of z
        expected = torch.autograd.functional.vjp(lambda v: F.normalize(v, dim=-1), z.detach(), upstream)[1]
    else:
        expected = upstream
    torch.testing.assert_close(z.grad, expected)


def test_codebook_loss_still_trains_the_codebook():
    quantizer = VectorQuantizer(4, 8, codebook_init="normal")
    quantizer(torch.randn(6, 4)).loss.backward()
    assert quantizer.codebook.grad.abs().sum() > 0


# -- l2 modes -------------------------------------------------------------------------------

def test_l2_search_normalises_for_the_search_only():
    torch.manual_seed(1)
    vq = VectorQuantizer(5, 7, codebook_init="normal", l2_norm="search", beta=0.25)
    z = torch.randn(12, 5) * 3
    out = vq(z)
    codebook, vectors = vq.codebook.detach().numpy(), z.numpy()
    indices = np.argmax(normalize(vectors) @ normalize(codebook).T, axis=1)
    np.testing.assert_array_equal(out.indices.numpy(), indices)
    codes = normalize(codebook)[indices]
    np.testing.assert_allclose(out.quantized.detach().numpy(), codes, atol=1e-6)
    mse = np.mean((vectors - codes) ** 2)  # raw vectors against the normalised codes
    np.testing.assert_allclose(out.loss_terms["commitment"].item(), 0.25 * mse, rtol=1e-5)
    np.testing.assert_allclose(out.loss_terms["codebook"].item(), mse, rtol=1e-5)


def test_l2_full_normalises_vectors_and_codes_everywhere_and_true_means_full():
    torch.manual_seed(2)
    z = torch.randn(12, 5) * 3
    full = VectorQuantizer(5, 7, codebook_init="normal", l2_norm="full")
    legacy = VectorQuantizer(5, 7, l2_norm=True)
    legacy.load_state_dict(full.state_dict())
    out, out_legacy = full(z), legacy(z)
    codebook = normalize(full.codebook.detach().numpy())
    vectors = normalize(z.numpy())
    codes = codebook[out.indices.numpy()]
    np.testing.assert_allclose(out.loss_terms["codebook"].item(), np.mean((vectors - codes) ** 2), rtol=1e-5)
    assert torch.equal(out.indices, out_legacy.indices) and torch.equal(out.loss, out_legacy.loss)


def test_l2_norm_values_and_saved_configs(tmp_path):
    with pytest.raises(ValueError, match="l2_norm"):
        VectorQuantizer(4, 8, l2_norm="sometimes")
    with pytest.raises(ValueError, match="l2_norm"):
        hf_vq.VQVAEConfig(l2_norm="sometimes")
    # A config saved before the modes existed (l2_norm: true) still loads, meaning "full".
    hf_vq.VQVAEConfig(hidden_dim=8, codebook_size=8, codebook_dim=4, l2_norm=True).save_pretrained(tmp_path)
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig.from_pretrained(tmp_path))
    assert model.quantizer.l2_norm_mode == "full"
    assert hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=8, l2_norm="search")).quantizer.l2_norm_mode == "search"
    assert hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=8)).quantizer.l2_norm_mode == "none"


# -- EMA start ------------------------------------------------------------------------------

def test_ema_from_zero_count_masks_codes_not_hit():
    """The benchmark's update: sums and counts decay everywhere, a code moves only when hit."""
    vq = VectorQuantizer(2, 3, behaviours=[EMAUpdate(decay=0.9, count_init=0.0)])
    start = np.array([[0.0, 0.0], [10.0, 10.0], [-10.0, 5.0]])
    with torch.no_grad():
        vq.codebook.copy_(torch.tensor(start))
    ema = vq.behaviours[0]
    ema.reset_state(vq)
    assert not ema.ema_count.any()
    z = np.array([[1.0, 1.0], [-1.0, 1.0], [9.0, 11.0]])  # first step: codes 0, 0, 1; code 2 not hit
    vq.train()
    codes, ema_sum, ema_count = start.copy(), start.copy(), np.zeros(3)
    for _ in range(3):
        vq(torch.tensor(z, dtype=torch.float32))
        # The benchmark's train step + update_codebook, in numpy.
        assign = np.argmin(((z[:, None] - codes[None]) ** 2).sum(-1), axis=1)
        counts = np.bincount(assign, minlength=3).astype(float)
        sums = np.stack([z[assign == k].sum(0) for k in range(3)])
        ema_sum = 0.9 * ema_sum + 0.1 * sums
        ema_count = 0.9 * ema_count + 0.1 * counts
        hit = counts > 0
        codes = np.where(hit[:, None], ema_sum / np.where(hit, ema_count, 1)[:, None], codes)
    assert not hit[2] and not np.array_equal(codes[:2], start[:2])
    expected = codes
    np.testing.assert_allclose(vq.codebook.detach().numpy(), expected, rtol=1e-5)
    np.testing.assert_allclose(ema.ema_sum.numpy(), ema_sum, rtol=1e-6)
    np.testing.assert_allclose(ema.ema_count.numpy(), ema_count, rtol=1e-6)


# -- IBQ ------------------------------------------------------------------------------------

def test_ibq_matches_the_full_matrix_formula():
    """Indices, losses and gradients against IBQ written with the full (N, K) one-hot."""
    torch.manual_seed(3)
    ibq = IBQ(6, 10, beta=0.25, entropy_weight=0.1, entropy_temperature=0.5)
    with torch.no_grad():
        ibq.codebook.normal_()
    z = torch.randn(9, 6, requires_grad=True)
    out = ibq(z)
    (out.quantized.pow(2).sum() + out.loss).backward()
    ours = z.grad.clone(), ibq.codebook.grad.clone()

    codebook = ibq.codebook.detach().clone().requires_grad_(True)
    z2 = z.detach().clone().requires_grad_(True)
    logits = z2 @ codebook.t()
    soft = logits.softmax(dim=1)
    indices = logits.argmax(dim=1)
    hard = F.one_hot(indices, 10).float()
    quantized = (hard - soft.detach() + soft) @ codebook
    codes = codebook[indices]
    commitment = F.mse_loss(z2, codes.detach())
    codebook_loss = F.mse_loss(z2.detach(), codes)
    double = F.mse_loss(quantized, z2)
    probs = (logits / 0.5).softmax(dim=1)
    avg = probs.mean(0)
    entropy = -(probs * (logits / 0.5).log_softmax(dim=1)).sum(1).mean() + (avg * torch.log(avg + 1e-5)).sum()
    loss = 0.25 * commitment + codebook_loss + double + 0.1 * entropy
    (quantized.pow(2).sum() + loss).backward()

    assert torch.equal(out.indices, indices)
    assert torch.equal(out.quantized.detach(), codes.detach())  # exactly the code, as decode_indices gives
    torch.testing.assert_close(out.loss, loss.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(out.loss_terms["double_quantization"], double.detach(), atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours[0], z2.grad, atol=1e-6, rtol=1e-5)
    torch.testing.assert_close(ours[1], codebook.grad, atol=1e-6, rtol=1e-5)


def test_ibq_model_round_trip_and_index_backpropagation(tmp_path):
    config = hf_vq.IBQVAEConfig(hidden_dim=16, image_size=16, codebook_size=32, codebook_dim=8)
    model = hf_vq.IBQVAEModel(config)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    out = model(x)
    # The reconstruction gradient reaches the codebook through the soft one-hot (IBQ's point).
    F.mse_loss(out.reconstruction, x).backward()
    assert model.quantizer.codebook.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        encoded = model.encode(x)
        assert torch.equal(model.decode_indices(encoded.indices).sample, model.decode(encoded.quantized).sample)
    model.save_pretrained(tmp_path)
    reloaded = AutoModel.from_pretrained(tmp_path)
    assert type(reloaded) is hf_vq.IBQVAEModel
    with torch.no_grad():
        assert torch.equal(reloaded.encode(x).indices, encoded.indices)


# -- SimpleCNN --------------------------------------------------------------------------------

def test_residual_skip_carries_the_relu_of_the_input():
    """The benchmark's ReLU(inplace=True) rewrites x before x + blocks(x)."""
    block = SimpleResidualBlock(3)
    with torch.no_grad():
        for parameter in block.parameters():
            parameter.zero_()
    x = torch.randn(2, 3, 5, 5)
    torch.testing.assert_close(block(x), torch.relu(x), rtol=0, atol=0)
    with torch.no_grad():
        block.blocks[1].weight.normal_()
        block.blocks[3].weight.normal_()
    r = torch.relu(x)
    expected = r + F.conv2d(torch.relu(F.conv2d(r, block.blocks[1].weight, padding=1)), block.blocks[3].weight)
    torch.testing.assert_close(block(x), expected)
    assert torch.equal(x, x.clone())  # our block does not modify its input


def test_transposed_conv_bias_uses_pytorchs_fan_in():
    """PyTorch's fan-in of ConvTranspose2d(in, out, k) is out * k^2 (the weight is (in, out, k, k))."""
    torch.manual_seed(0)
    model = hf_vq.VQVAEModel(hf_vq.VQVAEConfig(hidden_dim=256, codebook_size=8, codebook_dim=4))
    layer = model.decoder.upblocks[3]  # ConvTranspose2d(256, 128, 4)
    bound = 1 / math.sqrt(128 * 16)
    bias = layer.bias.detach().abs()
    assert bias.max() <= bound
    assert bias.max() > 0.9 * bound  # 128 draws from U(-b, b): max |x| < 0.9 b has probability 0.9^128
    reference = torch.nn.ConvTranspose2d(256, 128, 4)
    assert reference.bias.detach().abs().max() <= bound


# -- train crop -------------------------------------------------------------------------------

def test_adm_random_crop_matches_the_benchmark_crop(monkeypatch):
    tensors = load_file(FIXTURE)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (70, 100, 3), dtype=np.uint8))
    draws_per_crop = [(32, 0, 0), (35, 2, 11), (40, 8, 17)]
    for i, draws in enumerate(draws_per_crop):
        queue = list(draws)
        monkeypatch.setattr(transform_module, "_randint", lambda low, high, generator, _q=queue: _q.pop(0))
        ours = TrainTransform(32, crop="adm_random", flip=False)(image)
        expected = to_tensor(tensors[f"crop.{i}"].numpy())
        assert torch.equal(ours, expected), i


def test_adm_random_crop_short_side_covers_64_to_80(monkeypatch):
    seen = []
    resize = transform_module.adm_resize_short_side
    monkeypatch.setattr(transform_module, "adm_resize_short_side", lambda im, side: seen.append(side) or resize(im, side))
    transform = TrainTransform(64, crop="adm_random")
    image = Image.new("RGB", (300, 200), (120, 30, 200))
    generator = torch.Generator().manual_seed(0)
    for _ in range(400):
        assert transform(image, generator).shape == (3, 64, 64)
    assert set(seen) == set(range(64, 81))
    with pytest.raises(ValueError, match="train crop"):
        TrainTransform(64, crop="center")


@pytest.mark.parametrize("model_type, fields", [
    ("vqvae", {"l2_norm": "search"}), ("vqvae", {"l2_norm": "full"}), ("vqvae", {"use_ema": True}),
    ("cvq_vae", {}), ("simvq_vae", {}), ("ibq_vae", {}),
])
def test_tokenizers_reconstruction_gradient_and_decode_indices(model_type, fields):
    from transformers import AutoConfig

    config = AutoConfig.for_model(model_type, hidden_dim=16, image_size=16, codebook_size=32, codebook_dim=8, **fields)
    model = AutoModel.from_config(config)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    F.mse_loss(model(x).reconstruction, x).backward()  # reconstruction only: no quantizer term
    learned = model.quantizer.codebook_projection.weight if model_type == "simvq_vae" else model.quantizer.codebook
    if model_type == "ibq_vae":
        assert learned.grad.abs().sum() > 0  # IBQ trains its codes through the soft assignment
    else:
        assert learned.grad is None or not learned.grad.any()
    assert model.encoder.downblocks[0].weight.grad.abs().sum() > 0
    model.eval()
    with torch.no_grad():
        encoded = model.encode(x)
        assert torch.equal(model.decode_indices(encoded.indices).sample, model.decode(encoded.quantized).sample)


def test_ibq_search_is_chunked_and_inference_skips_the_softmax(monkeypatch):
    from hf_vq.quantizers import ibq as ibq_module

    torch.manual_seed(4)
    vectors, codebook = torch.randn(50, 6), torch.randn(37, 6)
    brute = np.argmax(vectors.numpy().astype(np.float64) @ codebook.numpy().astype(np.float64).T, axis=1)
    for max_elements in (37, 100, 10**6):  # 1, 2 and all rows per chunk
        np.testing.assert_array_equal(ibq_module.max_inner_product(vectors, codebook, max_elements).numpy(), brute)

    ibq = IBQ(6, 37, max_search_elements=100)
    with torch.no_grad():
        ibq.codebook.copy_(codebook)
    z = vectors.clone().requires_grad_(True)
    ibq.train()(z).quantized.sum().backward()  # several chunks under checkpointing
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0

    def refuse(*args):
        raise AssertionError("the soft assignment ran")

    monkeypatch.setattr(ibq_module, "_soft_codes", refuse)
    with torch.no_grad():
        out = ibq.eval()(vectors)
    np.testing.assert_array_equal(out.indices.numpy(), brute)
