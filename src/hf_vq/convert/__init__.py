"""Exact conversion of official checkpoints into hf_vq models (explicit key maps, strict checks).

One module per source code base: taming (VQGAN), llamagen (VQ tokenizer), llamagen_gpt (GPT), titok (1D tokenizer),
visual_tokenizer (the ImageNet 64x64 benchmark's SimpleCNN tokenizers), vqgan_lc, vqkd (BEiT v2's tokenizers).
"""

from .llamagen import (
    LLAMAGEN_PRESETS,
    convert_llamagen_checkpoint,
    infer_llamagen_config,
)
from .llamagen_gpt import (
    convert_llamagen_gpt_checkpoint,
    convert_llamagen_gpt_state_dict,
)
from .maskgit_vqgan import convert_maskgit_vqgan_checkpoint, infer_maskgit_vqgan_config
from .taming import TAMING_PRESETS, convert_taming_checkpoint, infer_taming_config
from .titok import TITOK_PRESETS, convert_titok_checkpoint, infer_titok_config
from .visual_tokenizer import (
    convert_visual_tokenizer_checkpoint,
    convert_visual_tokenizer_state_dict,
    load_row_config,
)
from .vqkd import VQKD_VARIANTS, convert_vqkd_checkpoint, infer_vqkd_config

__all__ = [
    "LLAMAGEN_PRESETS",
    "TAMING_PRESETS",
    "TITOK_PRESETS",
    "VQKD_VARIANTS",
    "convert_llamagen_checkpoint",
    "convert_maskgit_vqgan_checkpoint",
    "convert_llamagen_gpt_checkpoint",
    "convert_llamagen_gpt_state_dict",
    "convert_taming_checkpoint",
    "convert_titok_checkpoint",
    "convert_visual_tokenizer_checkpoint",
    "convert_visual_tokenizer_state_dict",
    "convert_vqkd_checkpoint",
    "infer_llamagen_config",
    "infer_maskgit_vqgan_config",
    "infer_taming_config",
    "infer_titok_config",
    "infer_vqkd_config",
    "load_row_config",
]
