"""Adversarial losses: hinge and non-saturating GAN losses, LeCam regularisation and
taming's adaptive generator weight."""

import torch
import torch.nn.functional as F
from torch import nn

from ..utils.distributed import all_reduce_sum, is_distributed

GAN_LOSSES = ("hinge", "non_saturating")


def discriminator_loss(kind: str, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge: 0.5 (E relu(1 - D(x)) + E relu(1 + D(G))); non-saturating: 0.5 (E softplus(-D(x)) + E softplus(D(G)))."""
    if kind == "hinge":
        return 0.5 * (F.relu(1.0 - logits_real).mean() + F.relu(1.0 + logits_fake).mean())
    if kind == "non_saturating":
        return 0.5 * (F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean())
    raise ValueError(f"Unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}.")


def generator_loss(kind: str, logits_fake: torch.Tensor) -> torch.Tensor:
    """Hinge: -E D(G); non-saturating: E softplus(-D(G))."""
    if kind == "hinge":
        return -logits_fake.mean()
    if kind == "non_saturating":
        return F.softplus(-logits_fake).mean()
    raise ValueError(f"Unknown GAN loss {kind!r}; choose one of {GAN_LOSSES}.")


class LeCamRegularizer(nn.Module):
    """LeCam regularisation (Tseng et al. 2021) in the form of TiTok's and MaskBit's official code
    (bytedance/1d-tokenizer ``compute_lecam_loss``): keeps the discriminator's batch-mean logits near the
    moving averages of the opposite class,
    relu(mean D(x) - ema_fake)^2 + relu(ema_real - mean D(G))^2,
    with the averages from before this batch, which then enter them. (The LeCam paper's code applies the
    hinges to every logit and updates the averages first.)

    The averages are buffers (saved in checkpoints) and averaged over processes, so every
    rank applies the same regulariser.
    """

    def __init__(self, decay: float = 0.999):
        super().__init__()
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> None:
        means = torch.stack([logits_real.float().mean(), logits_fake.float().mean()])
        if is_distributed():
            means = all_reduce_sum(means) / torch.distributed.get_world_size()
        self.ema_real.mul_(self.decay).add_(means[0], alpha=1 - self.decay)
        self.ema_fake.mul_(self.decay).add_(means[1], alpha=1 - self.decay)

    def forward(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
        ema_real, ema_fake = self.ema_real.clone(), self.ema_fake.clone()
        loss = (F.relu(logits_real.float().mean() - ema_fake).pow(2)
                + F.relu(ema_real - logits_fake.float().mean()).pow(2))
        self.update(logits_real, logits_fake)
        return loss


def adaptive_generator_weight(nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor,
                              max_weight: float = 1e4) -> torch.Tensor:
    """taming's balance: ||d nll / d last_layer|| / (||d g_loss / d last_layer|| + 1e-4), clamped to [0, max_weight].

    Scales the GAN gradient to the size of the reconstruction gradient at the decoder's
    last layer; detached (it is a weight, not a loss).
    """
    nll_grad = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
    g_grad = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
    weight = nll_grad.norm() / (g_grad.norm() + 1e-4)
    return weight.clamp(0.0, max_weight).detach()
