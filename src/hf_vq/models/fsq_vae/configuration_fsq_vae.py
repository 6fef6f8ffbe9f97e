"""FSQ-VAE configuration (SimpleCNN + FSQ)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import FSQ
from ..simple_cnn import SimpleCNNConfig


@strict
class FSQVAEConfig(SimpleCNNConfig):
    """FSQ-VAE: the FSQ rows of the ImageNet 64x64 benchmark.

    Args:
        levels: quantisation levels per channel ([8, 8, 8] = 512 codes, [8, 5, 5, 5] = 1000,
            [8, 8, 8, 6, 5] = 15360). ``codebook_dim`` is ``len(levels)`` and
            ``codebook_size`` their product; both are derived (passing a different value is
            an error).
    """

    model_type = "fsq_vae"

    levels: list[int] | tuple[int, ...] = (8, 8, 8)
    codebook_size: int | None = None
    codebook_dim: int | None = None

    def __post_init__(self, **kwargs):
        size = FSQ.codebook_size_for(self.levels)
        self.levels = [int(level) for level in self.levels]
        dim = len(self.levels)
        if self.codebook_size not in (None, size) or self.codebook_dim not in (None, dim):
            raise ValueError(
                f"levels {self.levels} give codebook_size {size} and codebook_dim {dim}; got codebook_size="
                f"{self.codebook_size}, codebook_dim={self.codebook_dim}. Set levels only."
            )
        self.codebook_size, self.codebook_dim = size, dim
        super().__post_init__(**kwargs)


__all__ = ["FSQVAEConfig"]
