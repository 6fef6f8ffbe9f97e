"""VQGAN-LC configuration (Zhu et al. 2024, "Scaling the Codebook Size of VQGAN to 100,000", zh460045050/VQGAN-LC)."""

from huggingface_hub.dataclasses import strict

from ..vqgan.configuration_vqgan import VQGANConfig


@strict
class VQGANLCConfig(VQGANConfig):
    """VQGAN-LC: the taming encoder/decoder, ``quant_conv`` down to ``codebook_dim`` channels and a
    frozen ``codebook_size x codebook_feature_dim`` codebook of teacher features (CLIP ViT-L/14
    patch tokens, per-class k-means) reached through a trainable ``Linear(feature_dim -> codebook_dim)``.

    Official names in brackets (``vqgan-gpt-lc`` arguments and ``vqgan_configs/vq-f*.yaml``).

    Args:
        codebook_size: number of codes [``n_vision_words``] (100,000).
        codebook_dim: code channels [``embed_dim``]: 8 for f16, 4 for f8.
        codebook_feature_dim: channels of the frozen teacher features (768).
        commitment_weight: weight of ``mean((sg(q) - z)^2)`` (1).
        codebook_weight: weight of ``mean((q - sg(z))^2)``, which trains the projector (0.33).
        quantizer_weight: the factor on the whole quantizer loss in the training loss [``rate_q``] (0.1);
            the quantizer's loss terms already include it.
        codebook_source: where the frozen codebook came from (a build-codebook file, the teacher), for the record.
        reconstruction_loss: "l1" as the official training.
    """

    model_type = "vqgan_lc"

    codebook_size: int = 100000
    codebook_dim: int = 8
    codebook_feature_dim: int = 768
    commitment_weight: float = 1.0
    codebook_weight: float = 0.33
    quantizer_weight: float = 0.1
    codebook_source: str = ""
    legacy_beta: bool = False
    reconstruction_loss: str = "l1"

    @classmethod
    def f16(cls, **kwargs) -> "VQGANLCConfig":
        """``vq-f16.yaml`` with ``embed_dim 8``: ch_mult (1, 1, 2, 2, 4), attention at 16x16."""
        image_size = kwargs.get("image_size", 256)
        return cls(**{"channel_multipliers": [1, 1, 2, 2, 4], "attn_resolutions": [image_size // 16],
                      "codebook_dim": 8, **kwargs})

    @classmethod
    def f8(cls, **kwargs) -> "VQGANLCConfig":
        """``vq-f8`` (ldm-lc ``imagenet-f8-vqgan-lc-100K.yaml``, ``embed_dim 4``): ch_mult (1, 2, 2, 4); its
        ``attn_resolutions: [16]`` matches no level at 256 pixels, so attention is in the mid blocks only."""
        return cls(**{"channel_multipliers": [1, 2, 2, 4], "attn_resolutions": [], "codebook_dim": 4, **kwargs})


__all__ = ["VQGANLCConfig"]
