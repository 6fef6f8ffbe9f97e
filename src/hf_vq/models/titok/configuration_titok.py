"""TiTok configuration (Yu et al. 2024, "An Image is Worth 32 Tokens", bytedance/1d-tokenizer)."""

from huggingface_hub.dataclasses import strict

from ..configuration_base import VQTokenizerConfig, check_positive

DECODER_TYPES = ("pixel", "maskgit", "conv")
# The decoder types whose pixels come from the MaskGIT convolutional decoder (``maskgit_*`` sizes).
MASKGIT_DECODER_TYPES = ("maskgit", "conv")
# Official ``vit_*_model_size`` -> (width, depth, heads).
VIT_SIZES = {"small": (512, 8, 8), "base": (768, 12, 12), "large": (1024, 24, 16)}


@strict
class TiTokConfig(VQTokenizerConfig):
    """TiTok: a ViT encoder reads the image patches together with ``num_latent_tokens`` learned
    tokens and keeps only those, which are quantized into a 1D sequence of ``num_latent_tokens``
    codes; a ViT decoder reads the codes with a grid of mask tokens and predicts the image.

    Official ``vq_model`` names in brackets.

    Args:
        image_size: image side [``crop_size``]; TiTok has learned positions, so it runs only at this size.
        num_latent_tokens: tokens per image (32 / 64 / 128) [``num_latent_tokens``].
        encoder_hidden_size, encoder_num_layers, encoder_num_heads: encoder ViT width, depth and
            heads [``vit_enc_model_size``: small 512/8/8, base 768/12/12, large 1024/24/16].
        decoder_hidden_size, decoder_num_layers, decoder_num_heads: the same for the decoder [``vit_dec_model_size``].
        patch_size: encoder patch side [``vit_enc_patch_size``].
        decoder_patch_size: side of the image cell each decoder grid token predicts [``vit_dec_patch_size``].
        mlp_ratio: MLP width / ViT width (4).
        codebook_size, codebook_dim: codes and their size [``codebook_size``, ``token_size``].
        l2_norm: l2-normalise latents and codes before the search [``use_l2_norm``].
        commitment_beta: commitment weight (0.25) [``commitment_cost``].
        dead_code_restarts: CVQ-style restarts of rarely used codes during training (usage EMA
            0.99, each code pulled towards its closest batch latent) [``clustering_vq``, the
            official single-stage recipe].
        decoder_type: ``"pixel"`` (single stage: each grid token predicts its patch's pixels, then
            a 3x3 conv) or ``"maskgit"`` (the released two-stage models: each grid token predicts
            logits over the ``maskgit_codebook_size`` codes of a MaskGIT-VQGAN; their softmax mixes
            its codebook into latents for its pixel decoder) [``is_legacy`` + ``finetune_decoder``] or
            ``"conv"`` (hf_vq's single-stage decoder, not an official one: each grid token is projected to
            ``maskgit_z_channels`` latents that the MaskGIT convolutional decoder turns into pixels, trained end to
            end; no per-cell linear pixel head, see README "TiTok training").
        legacy_latent_layout: the released weights reshape the encoder's (B, N, width) latent
            tokens to (B, width, N) *without* transposing before the 1x1 projection to
            ``codebook_dim``, mixing values across tokens; True reproduces that [``is_legacy``].
        zero_one_pixels: the weights were trained on images in [0, 1] (the official ones): the
            model maps its [-1, 1] input to [0, 1] before the encoder and the decoder's output
            back (2 y - 1), so it takes and returns [-1, 1] like every hf_vq tokenizer.
        initializer_range: std of the truncated normal that initialises the ViT linears and convs (the
            official 0.02, tuned for widths 512 to 1024; a much narrower model starts with far weaker
            signals at 0.02, see ``examples/titok_small_run.py``). Only the initialisation uses it.
        maskgit_*: the MaskGIT-VQGAN pixel decoder and codebook of ``decoder_type="maskgit"``
            (128 channels, multipliers (1, 1, 2, 2, 4), 2 ResNet blocks, 256 x 1024 codes); ``"conv"`` uses
            the decoder's settings (not the codebook size).
    """

    model_type = "titok"

    image_size: int = 256
    num_latent_tokens: int = 128
    encoder_hidden_size: int = 512
    encoder_num_layers: int = 8
    encoder_num_heads: int = 8
    decoder_hidden_size: int = 512
    decoder_num_layers: int = 8
    decoder_num_heads: int = 8
    patch_size: int = 16
    decoder_patch_size: int = 16
    mlp_ratio: float = 4.0
    codebook_size: int = 4096
    codebook_dim: int = 12
    l2_norm: bool = True
    commitment_beta: float = 0.25
    dead_code_restarts: bool = False
    decoder_type: str = "maskgit"
    legacy_latent_layout: bool = True
    zero_one_pixels: bool = True
    maskgit_base_channels: int = 128
    maskgit_channel_multipliers: list[int] | tuple[int, ...] = (1, 1, 2, 2, 4)
    maskgit_num_res_blocks: int = 2
    maskgit_z_channels: int = 256
    maskgit_codebook_size: int = 1024
    reconstruction_loss: str = "mse"
    initializer_range: float = 0.02

    def __post_init__(self, **kwargs):
        check_positive(
            self, "num_latent_tokens", "encoder_hidden_size", "encoder_num_layers", "encoder_num_heads",
            "decoder_hidden_size", "decoder_num_layers", "decoder_num_heads", "patch_size", "decoder_patch_size",
            "maskgit_base_channels", "maskgit_num_res_blocks", "maskgit_z_channels", "maskgit_codebook_size",
        )
        if isinstance(self.initializer_range, bool) or not self.initializer_range > 0:
            raise ValueError(f"initializer_range must be a positive number (the official 0.02); got {self.initializer_range!r}.")
        if self.decoder_type not in DECODER_TYPES:
            raise ValueError(f"Unknown decoder_type {self.decoder_type!r}; choose one of {DECODER_TYPES}.")
        for side, name in ((self.patch_size, "patch_size"), (self.decoder_patch_size, "decoder_patch_size")):
            if self.image_size % side:
                raise ValueError(f"image_size {self.image_size} is not divisible by {name} {side}.")
        for prefix in ("encoder", "decoder"):
            width, heads = getattr(self, f"{prefix}_hidden_size"), getattr(self, f"{prefix}_num_heads")
            if width % heads:
                raise ValueError(f"{prefix}_hidden_size {width} is not divisible by {prefix}_num_heads {heads}.")
        if self.decoder_type in MASKGIT_DECODER_TYPES:
            upsampling = 2 ** (len(self.maskgit_channel_multipliers) - 1)
            if upsampling != self.decoder_patch_size:
                raise ValueError(
                    f"The MaskGIT decoder upsamples by {upsampling} (2 ** (len(maskgit_channel_multipliers) - 1)) but each "
                    f"decoder grid token covers decoder_patch_size = {self.decoder_patch_size} pixels: make them equal."
                )
            channels = [self.maskgit_base_channels * m for m in self.maskgit_channel_multipliers]
            if any(c % 32 for c in channels):
                raise ValueError(f"The MaskGIT decoder uses GroupNorm(32): its level channels {channels} must be multiples of 32.")
        super().__post_init__(**kwargs)

    @property
    def grid_size(self) -> int:
        """Side of the encoder's patch grid."""
        return self.image_size // self.patch_size

    @property
    def decoder_grid_size(self) -> int:
        return self.image_size // self.decoder_patch_size

    @classmethod
    def from_official_sizes(cls, encoder_size: str, decoder_size: str, **kwargs) -> "TiTokConfig":
        """A config from the official size names ("small", "base", "large") of encoder and decoder."""
        for size in (encoder_size, decoder_size):
            if size not in VIT_SIZES:
                raise ValueError(f"Unknown ViT size {size!r}; choose one of {sorted(VIT_SIZES)}.")
        (ew, ed, eh), (dw, dd, dh) = VIT_SIZES[encoder_size], VIT_SIZES[decoder_size]
        fields = {
            "encoder_hidden_size": ew, "encoder_num_layers": ed, "encoder_num_heads": eh,
            "decoder_hidden_size": dw, "decoder_num_layers": dd, "decoder_num_heads": dh,
        }
        return cls(**{**fields, **kwargs})

    # -- the released models (configs/infer/TiTok/*.yaml) -------------------------------
    @classmethod
    def titok_s128(cls, **kwargs) -> "TiTokConfig":
        """TiTok-S-128 (``tokenizer_titok_s128.bin``): two-stage, 83,674,639 parameters."""
        return cls.from_official_sizes("small", "small", **{"num_latent_tokens": 128, **kwargs})

    @classmethod
    def titok_b64(cls, **kwargs) -> "TiTokConfig":
        """TiTok-B-64 (``tokenizer_titok_b64.bin``): two-stage, 204,814,095 parameters."""
        return cls.from_official_sizes("base", "base", **{"num_latent_tokens": 64, **kwargs})

    @classmethod
    def titok_l32(cls, **kwargs) -> "TiTokConfig":
        """TiTok-L-32 (``tokenizer_titok_l32.bin``): two-stage, 641,054,735 parameters."""
        return cls.from_official_sizes("large", "large", **{"num_latent_tokens": 32, **kwargs})

    @classmethod
    def _vq8k(cls, encoder_size: str, num_latent_tokens: int, **kwargs) -> "TiTokConfig":
        fields = {
            "num_latent_tokens": num_latent_tokens, "codebook_size": 8192, "codebook_dim": 64, "l2_norm": False,
            "decoder_type": "pixel", "legacy_latent_layout": False,
        }
        return cls.from_official_sizes(encoder_size, "large", **{**fields, **kwargs})

    @classmethod
    def titok_bl64_vq8k(cls, **kwargs) -> "TiTokConfig":
        """TiTok-BL-64-VQ8k: single-stage, base encoder, large decoder, 8192 x 64 codes."""
        return cls._vq8k("base", 64, **kwargs)

    @classmethod
    def titok_bl128_vq8k(cls, **kwargs) -> "TiTokConfig":
        """TiTok-BL-128-VQ8k: single-stage, base encoder, large decoder, 8192 x 64 codes."""
        return cls._vq8k("base", 128, **kwargs)

    @classmethod
    def titok_sl256_vq8k(cls, **kwargs) -> "TiTokConfig":
        """TiTok-SL-256-VQ8k: single-stage, small encoder, large decoder, 8192 x 64 codes."""
        return cls._vq8k("small", 256, **kwargs)


__all__ = ["DECODER_TYPES", "VIT_SIZES", "TiTokConfig"]
