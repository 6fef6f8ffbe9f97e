"""The ``pixel_decoder`` sub-config of semantic tokenizers (Cluster, VQ-KD): stage 2 of the IU-tokenizer recipe.

A semantic tokenizer's codes come from a frozen understanding model; stage 1 learns them
without pixels. Stage 2 trains a LlamaGen VQ decoder behind the frozen encoder and quantizer
so that the codes decode to images. Its architecture is given with the decoder fields of
:class:`~hf_vq.models.LlamaGenVQConfig` (same names, same meaning, VQ-16's values by default);
``num_res_blocks`` is LlamaGen's encoder count, the decoder has one block more per level, as
``LlamaGenVQModel``'s decoder. No model code here: configs load without torch modules.
"""

from .llamagen_vq.configuration_llamagen_vq import LlamaGenVQConfig

#: The LlamaGenVQConfig fields a pixel decoder takes (the codebook comes from the semantic tokenizer).
PIXEL_DECODER_FIELDS = ("base_channels", "channel_multipliers", "num_res_blocks", "z_channels", "dropout")


def pixel_decoder_config(settings: dict, image_size: int, num_channels: int, downsample_factor: int) -> LlamaGenVQConfig:
    """The ``LlamaGenVQConfig`` of a ``pixel_decoder`` sub-config, checked against the tokenizer's grid.

    Raises a ValueError naming the key for unknown keys and when the decoder's upsampling
    (``2 ** (len(channel_multipliers) - 1)``) is not the tokenizer's downsampling factor.
    """
    if not isinstance(settings, dict):
        raise ValueError(f"pixel_decoder must be a mapping of {PIXEL_DECODER_FIELDS} (or null); got {settings!r}.")
    unknown = sorted(set(settings) - set(PIXEL_DECODER_FIELDS))
    if unknown:
        raise ValueError(
            f"Unknown pixel_decoder option(s) {unknown}; it takes LlamaGen decoder fields {list(PIXEL_DECODER_FIELDS)} "
            "(the codebook is the tokenizer's own)."
        )
    if downsample_factor & (downsample_factor - 1):
        raise ValueError(
            f"A LlamaGen pixel decoder upsamples by a power of 2, but this tokenizer's codes are a grid of "
            f"image_size / {downsample_factor} (its teacher's patch size): use a teacher with patches of 8 or 16 pixels."
        )
    config = LlamaGenVQConfig(image_size=image_size, num_channels=num_channels, **settings)
    if config.downsample_factor != downsample_factor:
        raise ValueError(
            f"pixel_decoder.channel_multipliers {list(config.channel_multipliers)} upsample x{config.downsample_factor}, "
            f"but the tokenizer's codes are a grid of image_size / {downsample_factor}: give "
            f"{downsample_factor.bit_length()} levels (2 ** (levels - 1) = {downsample_factor})."
        )
    return config


__all__ = ["PIXEL_DECODER_FIELDS", "pixel_decoder_config"]
