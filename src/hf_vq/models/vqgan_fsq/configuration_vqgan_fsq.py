"""FSQ on the taming VQGAN backbone: the IU-tokenizer paper's FSQ tokenizer (magic-research/vector_quantization, configs/fsq/)."""

from huggingface_hub.dataclasses import strict

from ...quantizers import FSQ
from ..vqgan.configuration_vqgan import VQGANConfig


@strict
class VQGANFSQConfig(VQGANConfig):
    """The VQGAN encoder/decoder with an FSQ bottleneck.

    The IU code (``configs/fsq/model.py``) reaches the FSQ channels through two stacked 1x1 convs
    (z -> 256 -> len(levels), and back) with nothing between them, which compute the same maps as
    the one 1x1 ``quant_conv`` / ``post_quant_conv`` used here.

    Args:
        levels: levels per channel ([8, 8, 5, 5, 5] = 8000 codes, [8, 8, 8, 5, 5, 5] = 64000);
            ``codebook_dim`` (``len(levels)``) and ``codebook_size`` (their product) are derived.
    """

    model_type = "vqgan_fsq"

    levels: list[int] | tuple[int, ...] = (8, 8, 5, 5, 5)
    codebook_size: int | None = None
    codebook_dim: int | None = None
    legacy_beta: bool = False

    def __post_init__(self, **kwargs):
        size, dim = FSQ.codebook_size_for(self.levels), len(self.levels)
        self.levels = [int(level) for level in self.levels]
        if self.codebook_size not in (None, size) or self.codebook_dim not in (None, dim):
            raise ValueError(
                f"levels {self.levels} give codebook_size {size} and codebook_dim {dim}; got codebook_size="
                f"{self.codebook_size}, codebook_dim={self.codebook_dim}. Set levels only."
            )
        self.codebook_size, self.codebook_dim = size, dim
        super().__post_init__(**kwargs)


__all__ = ["VQGANFSQConfig"]
