"""Discriminators, GAN losses, LeCam, the adaptive weight and the LPIPS wrapper."""

import lpips
import pytest
import torch
import torch.nn.functional as F

from hf_vq.losses import (
    LeCamRegularizer,
    LPIPSLoss,
    adaptive_generator_weight,
    discriminator_loss,
    generator_loss,
    load_lpips_network,
)
from hf_vq.modules import (
    PatchGANDiscriminator,
    StyleGANDiscriminator,
    build_discriminator,
)


def test_patchgan_matches_taming_layout_and_init():
    disc = PatchGANDiscriminator(3, 64, 3)
    convs = [m for m in disc.modules() if isinstance(m, torch.nn.Conv2d)]
    norms = [m for m in disc.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    # taming NLayerDiscriminator(n_layers=3, ndf=64): 64 -> 128 -> 256 -> 512 -> 1, BatchNorm after convs 2-4
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 1]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert len(norms) == 3 and all(c.bias is None for c in convs[1:4])
    # 3*64*16+64 + 64*128*16 + 256 + 128*256*16 + 512 + 256*512*16 + 1024 + 512*16+1
    assert sum(p.numel() for p in disc.parameters()) == 2_765_633
    weights = torch.cat([c.weight.flatten() for c in convs])
    assert abs(weights.std().item() - 0.02) < 0.002 and abs(weights.mean().item()) < 0.001
    assert disc(torch.zeros(2, 3, 32, 32)).shape == (2, 1, 2, 2)
    with pytest.raises(ValueError, match="disc_layers"):
        disc(torch.zeros(1, 3, 16, 16))


def test_stylegan_discriminator_gives_one_logit_per_image_and_learns():
    disc = StyleGANDiscriminator(3, image_size=16, base_channels=8)
    assert disc(torch.randn(4, 3, 16, 16)).shape == (4, 1)
    with pytest.raises(ValueError, match="16px"):
        disc(torch.randn(4, 3, 32, 32))
    with pytest.raises(ValueError, match="Unknown discriminator"):
        build_discriminator("unet")
    # it can separate two easy distributions: real = bright, fake = dark
    optimizer = torch.optim.Adam(disc.parameters(), 3e-3)
    losses = []
    for _ in range(8):
        real, fake = torch.rand(8, 3, 16, 16), -torch.rand(8, 3, 16, 16)
        loss = discriminator_loss("hinge", disc(real), disc(fake))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0], losses


def test_gan_losses_values():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-2.0, 0.5])
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(0.5 * (0.25 + 0.75))
    expected = 0.5 * (F.softplus(-real).mean() + F.softplus(fake).mean())
    assert discriminator_loss("non_saturating", real, fake).item() == pytest.approx(expected.item())
    assert generator_loss("hinge", fake).item() == pytest.approx(0.75)
    assert generator_loss("non_saturating", fake).item() == pytest.approx(F.softplus(-fake).mean().item())
    with pytest.raises(ValueError, match="hinge"):
        generator_loss("wasserstein", fake)


def test_lecam_tracks_logit_averages_and_penalises_drift():
    lecam = LeCamRegularizer(decay=0.5)
    lecam.ema_real.fill_(1.0)
    lecam.ema_fake.fill_(-1.0)
    real, fake = torch.tensor([2.0, 4.0, 3.0, 3.0]), torch.tensor([-5.0, -1.0, -3.0, -3.0])
    value = lecam(real, fake)
    # TiTok's form, on the batch means (3 and -3) with the averages from before the batch:
    # relu(3 - (-1))^2 + relu(1 - (-3))^2 = 32; per logit it would be (9 + 25 + 16 + 16) / 4 + (36 + 4 + 16 + 16) / 4.
    assert value.item() == pytest.approx(4.0**2 * 2)
    # then the averages move halfway to the batch means
    assert lecam.ema_real.item() == pytest.approx(2.0) and lecam.ema_fake.item() == pytest.approx(-2.0)
    assert set(lecam.state_dict()) == {"ema_real", "ema_fake"}


def test_adaptive_weight_is_the_gradient_norm_ratio():
    torch.manual_seed(0)
    layer = torch.nn.Parameter(torch.randn(4, 4))
    x = torch.randn(3, 4)
    out = x @ layer
    nll, g = out.pow(2).mean(), -out.mean() * 10
    weight = adaptive_generator_weight(nll, g, layer)
    grad_nll = torch.autograd.grad(nll, layer, retain_graph=True)[0]
    grad_g = torch.autograd.grad(g, layer)[0]
    assert weight.item() == pytest.approx((grad_nll.norm() / (grad_g.norm() + 1e-4)).item(), rel=1e-5)
    assert not weight.requires_grad
    # a GAN gradient far smaller than the reconstruction gradient: the weight is clamped to 1e4
    tiny_g = 1e-12 * (x @ layer).sum()
    assert adaptive_generator_weight(1e3 * (x @ layer).pow(2).sum(), tiny_g, layer).item() == 1e4


def test_lpips_without_trunk_weights_names_the_missing_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="vgg16-397923af.pth") as error:
        load_lpips_network("vgg")
    assert str(tmp_path / "hub" / "checkpoints") in str(error.value)
    with pytest.raises(FileNotFoundError, match="lpips_weight: 0"):
        LPIPSLoss(net="vgg")


def test_lpips_loss_with_injected_backbone_is_frozen_and_zero_on_identical_images():
    loss = LPIPSLoss(network=lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False))
    loss.train()
    assert not loss.network.training and not any(p.requires_grad for p in loss.parameters())
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    assert loss(x, x).item() == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.3).clamp(-1, 1).requires_grad_(True)
    value = loss(y, x)
    value.backward()
    assert value.item() > 0 and y.grad.abs().sum() > 0


def test_lpips_loads_the_trunk_from_the_torch_hub_cache(tmp_path, monkeypatch):
    # A stand-in for torchvision's vgg16-397923af.pth: same keys (features only), known values.
    reference = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    features = {}
    for slice_index in range(1, 6):
        for name, module in getattr(reference.net, f"slice{slice_index}").named_children():
            for key, value in module.state_dict().items():
                features[f"features.{name}.{key}"] = torch.randn_like(value)
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(features, checkpoints / "vgg16-397923af.pth")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    network = load_lpips_network("vgg")
    # loaded weights are copies of the file's tensors: exact
    assert torch.equal(network.net.slice1[0].weight, features["features.0.weight"])
    assert torch.equal(getattr(network.net.slice5, "28").bias, features["features.28.bias"])
    # the package's calibrated linear layers are loaded too (not random): they are non-negative
    assert all((layer.model[-1].weight >= 0).all() for layer in network.lins)

    torch.save({"features.0.weight": torch.zeros(1)}, checkpoints / "vgg16-397923af.pth")
    with pytest.raises(ValueError, match="does not look like torchvision's vgg weights"):
        load_lpips_network("vgg")


def test_lpips_dropout_is_lpips_in_train_mode_as_taming_and_llamagen_train_it():
    """loss.perceptual_dropout: the LPIPS of a training step is the network in train mode (what taming's
    Lightning module and LlamaGen's vq_loss.train() leave it in); without it, and in eval mode, the
    deterministic eval-mode LPIPS."""
    import copy

    torch.manual_seed(0)
    network = lpips.LPIPS(net="vgg", pnet_rand=True, verbose=False)
    off = LPIPSLoss(network=copy.deepcopy(network)).train()
    on = LPIPSLoss(network=copy.deepcopy(network), dropout=True).train()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        eval_value = network.eval()(y, x).mean()
        assert torch.equal(off(y, x), eval_value) and torch.equal(off(y, x), eval_value)
        torch.manual_seed(3)
        first = on(y, x)
        torch.manual_seed(3)
        assert torch.equal(first, network.train()(y, x).mean())  # the same dropout draws as the official train mode
        assert not torch.equal(first, eval_value) and not torch.equal(on(y, x), first)  # dropout is on
        assert not on.network.net.training  # only the dropout layers train; the trunk stays in eval mode
        on.eval()
        assert torch.equal(on(y, x), eval_value)
    with pytest.raises(ValueError, match="perceptual_dropout.*dropout layers"):
        LPIPSLoss(network=torch.nn.Conv2d(3, 1, 1), dropout=True)  # a network without dropout layers
