"""LlamaGen VQ tokenizer configuration (Sun et al. 2024, FoundationVision/LlamaGen)."""

from huggingface_hub.dataclasses import strict

from ..vqgan.configuration_vqgan import VQGANBackboneConfig


@strict
class LlamaGenVQConfig(VQGANBackboneConfig):
    """LlamaGen VQ: the taming encoder/decoder with attention only at the lowest level (and in
    the mid blocks), a 1x1 ``quant_conv`` down to 8 channels and an l2-normalised 16384 x 8 codebook.

    Official ``ModelArgs`` names in brackets.

    Args:
        image_size: training resolution (256).
        base_channels: channels of the full-resolution level (128).
        channel_multipliers: per-level multipliers [``encoder_ch_mult`` = ``decoder_ch_mult``]:
            (1, 1, 2, 2, 4) for VQ-16, (1, 2, 2, 4) for VQ-8.
        num_res_blocks: ResNet blocks per encoder level (2); the decoder has one more (3).
        z_channels: encoder output / decoder input channels (256).
        codebook_size: number of codes (16384).
        codebook_dim: code channels (8) [``codebook_embed_dim``].
        l2_norm: l2-normalise latents and codes before the search [``codebook_l2_norm``].
        commitment_beta: weight of the commitment term (0.25) [``commit_loss_beta``].
        dropout: dropout inside the ResNet blocks [``dropout_p``].
        reconstruction_loss: "mse" (LlamaGen's l2).
    """

    model_type = "llamagen_vq"

    codebook_size: int = 16384
    codebook_dim: int = 8
    l2_norm: bool = True
    commitment_beta: float = 0.25
    reconstruction_loss: str = "mse"

    @property
    def attention_levels(self) -> list[int]:
        """LlamaGen puts attention at the lowest-resolution level only."""
        return [len(self.channel_multipliers) - 1]

    @classmethod
    def vq_16(cls, **kwargs) -> "LlamaGenVQConfig":
        """VQ-16 (``vq_ds16_c2i.pt``): x16 downsampling, 71,883,403 parameters."""
        return cls(**{"channel_multipliers": [1, 1, 2, 2, 4], **kwargs})

    @classmethod
    def vq_8(cls, **kwargs) -> "LlamaGenVQConfig":
        """VQ-8 (``vq_ds8_c2i.pt``): x8 downsampling."""
        return cls(**{"channel_multipliers": [1, 2, 2, 4], **kwargs})


__all__ = ["LlamaGenVQConfig"]
