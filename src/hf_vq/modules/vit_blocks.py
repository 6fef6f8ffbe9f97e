"""Pre-norm ViT blocks (open_clip's ``ResidualAttentionBlock`` layout) for the transformer tokenizers.

``ViTBlock``: ``x + attn(norm1(x))`` then ``x + mlp(norm2(x))``, batch-first ``(B, L, D)``,
attention by ``F.scaled_dot_product_attention`` (flash / memory-efficient kernels on GPU).
Official open_clip / TiTok keys map one to one: ``ln_1`` -> ``norm1``, ``attn.in_proj_*`` ->
``attn.qkv.*`` (q, k, v stacked in that order, as ``nn.MultiheadAttention`` stores them),
``attn.out_proj`` -> ``attn.proj``, ``ln_2`` -> ``norm2``, ``mlp.c_fc`` / ``mlp.c_proj`` ->
``mlp.fc1`` / ``mlp.fc2``.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class ViTAttention(nn.Module):
    """Multi-head self-attention with one fused q/k/v projection (no mask, no dropout)."""

    def __init__(self, width: int, num_heads: int):
        super().__init__()
        if width % num_heads:
            raise ValueError(f"width {width} is not divisible by num_heads {num_heads}.")
        self.num_heads = num_heads
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        # (B, L, 3, H, Dh) -> three (B, H, L, Dh)
        q, k, v = self.qkv(x).view(batch, length, 3, self.num_heads, width // self.num_heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(batch, length, width))


class ViTMLP(nn.Module):
    def __init__(self, width: int, hidden: int):
        super().__init__()
        self.fc1 = nn.Linear(width, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


class ViTBlock(nn.Module):
    """Pre-norm transformer block: LayerNorm -> attention -> residual, LayerNorm -> MLP -> residual."""

    def __init__(self, width: int, num_heads: int, mlp_ratio: float = 4.0, norm_eps: float = 1e-5):
        super().__init__()
        self.norm1 = nn.LayerNorm(width, eps=norm_eps)
        self.attn = ViTAttention(width, num_heads)
        self.norm2 = nn.LayerNorm(width, eps=norm_eps)
        self.mlp = ViTMLP(width, int(width * mlp_ratio))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTStack(nn.Module):
    """``depth`` ViT blocks between an input LayerNorm (``norm_pre``) and an output one (``norm_post``)."""

    def __init__(self, width: int, depth: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.norm_pre = nn.LayerNorm(width)
        self.blocks = nn.ModuleList(ViTBlock(width, num_heads, mlp_ratio) for _ in range(depth))
        self.norm_post = nn.LayerNorm(width)

    def run_blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``norm_pre`` then the blocks (``norm_post`` is left to the caller: models apply it to a slice)."""
        x = self.norm_pre(x)
        for block in self.blocks:
            x = block(x)
        return x


__all__ = ["ViTAttention", "ViTBlock", "ViTMLP", "ViTStack"]
