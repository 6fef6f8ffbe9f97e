"""SimpleCNN encoder/decoder of the ImageNet 64x64 benchmark (x4 down/up-sampling).

Layer layout and module names follow the benchmark code (``downblocks``, ``resblocks``,
``upblocks``) so its checkpoints load without renaming.
"""

import torch
import torch.nn as nn


class SimpleResidualBlock(nn.Module):
    """r + Conv1x1(ReLU(Conv3x3(r))) with r = ReLU(x), no biases.

    The benchmark's block starts with ``nn.ReLU(inplace=True)`` and returns ``x + blocks(x)``:
    the in-place ReLU overwrites ``x`` before the addition, so its skip path carries
    ``relu(x)``, not ``x``. We write that out instead of relying on in-place aliasing.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.blocks = nn.Sequential(
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=1, padding=1, bias=False),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        activated = self.blocks[0](x)
        return activated + self.blocks[1:](activated)


class SimpleCNNEncoder(nn.Module):
    """Two stride-2 4x4 convs and a 3x3 conv, then residual blocks: (B, C, H, W) -> (B, hidden, H/4, W/4)."""

    downsample_factor = 4

    def __init__(self, in_channels: int = 3, hidden_dim: int = 256, num_res_blocks: int = 2):
        super().__init__()
        self.downblocks = nn.Sequential(
            nn.Conv2d(in_channels, hidden_dim // 2, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(hidden_dim // 2, hidden_dim, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1),
        )
        self.resblocks = nn.Sequential(*[SimpleResidualBlock(hidden_dim) for _ in range(num_res_blocks)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.resblocks(self.downblocks(x))


class SimpleCNNDecoder(nn.Module):
    """Residual blocks, then two stride-2 transposed convs and tanh: (B, hidden, h, w) -> (B, C, 4h, 4w)."""

    def __init__(self, out_channels: int = 3, hidden_dim: int = 256, num_res_blocks: int = 2):
        super().__init__()
        self.resblocks = nn.Sequential(*[SimpleResidualBlock(hidden_dim) for _ in range(num_res_blocks)])
        self.upblocks = nn.Sequential(
            nn.LeakyReLU(),
            nn.Conv2d(hidden_dim, hidden_dim, kernel_size=3, stride=1, padding=1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(hidden_dim, hidden_dim // 2, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(),
            nn.ConvTranspose2d(hidden_dim // 2, out_channels, kernel_size=4, stride=2, padding=1),
            nn.Tanh(),
        )

    @property
    def last_layer(self) -> torch.Tensor:
        """Weight of the last conv (for the adaptive GAN weight)."""
        return self.upblocks[-2].weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.upblocks(self.resblocks(x))
