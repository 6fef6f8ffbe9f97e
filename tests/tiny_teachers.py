"""Tiny random teachers saved with save_pretrained, for tests (never shipped: the library loads real ones).

``save_tiny_teacher(kind, folder)`` writes a CLIP (full CLIPModel, so it has visual_projection),
DINO (ViTModel) or DINOv2 model with 32x32 inputs and 8x8 patches (4x4 = 16 patch tokens).
"""

import torch

TINY_IMAGE_SIZE = 32
TINY_PATCH_SIZE = 8
TINY_HIDDEN = 32
TINY_PROJECTION = 24


def save_tiny_teacher(kind: str, folder) -> str:
    from transformers import CLIPConfig, CLIPModel, Dinov2Config, Dinov2Model, ViTConfig, ViTModel

    torch.manual_seed({"clip": 1, "clip_vision": 2, "dino": 3, "dinov2": 4}[kind])
    common = dict(hidden_size=TINY_HIDDEN, num_hidden_layers=2, num_attention_heads=4,
                  image_size=TINY_IMAGE_SIZE, patch_size=TINY_PATCH_SIZE)
    if kind == "clip":
        text = dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2, vocab_size=64,
                    bos_token_id=0, eos_token_id=1, pad_token_id=1)
        model = CLIPModel(CLIPConfig(vision_config=dict(common, intermediate_size=64), text_config=text,
                                     projection_dim=TINY_PROJECTION))
    elif kind == "clip_vision":
        from transformers import CLIPVisionConfig, CLIPVisionModel

        model = CLIPVisionModel(CLIPVisionConfig(**common, intermediate_size=64))
    elif kind == "dino":
        model = ViTModel(ViTConfig(**common, intermediate_size=64), add_pooling_layer=False)
    elif kind == "dinov2":
        model = Dinov2Model(Dinov2Config(**common, mlp_ratio=2))
    else:
        raise ValueError(kind)
    # Non-trivial LayerNorm affine parameters, so a skipped norm would show.
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.LayerNorm):
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.3, 0.3)
    model.save_pretrained(folder)
    return str(folder)
