"""Stage 2 of semantic tokenizers: a pixel decoder trained behind the frozen encoder and quantizer.

The IU-tokenizer recipe (magic-research/vector_quantization ``configs/decoder/``): the stage-1
model's encoder and quantizer are loaded and frozen, a LlamaGen VQGAN decoder (+ PatchGAN
discriminator) is trained with LlamaGen's losses (L2 + LPIPS + GAN). The ``model:`` section
names the stage-1 model and the decoder::

    model:
      stage1_from: outputs/cluster-clip      # a trained stage-1 model folder (save_pretrained)
      pixel_decoder: {channel_multipliers: [1, 1, 2, 2, 4]}   # LlamaGen decoder fields (VQ-16's by default)
      teacher: /path/to/clip                 # optional: where the teacher lives on this machine

The objective is the tokenizer objective (``loss:`` = reconstruction, LPIPS, GAN) on a model
whose stage-1 part is frozen by :class:`~hf_vq.models.pixel_decoder.PixelDecoderMixin`: no
parameter of it requires grad, it stays in eval mode, and ``encode`` runs without autograd, so
only the pixel decoder (and the discriminator) learn. The saved model decodes indices to images.
"""

from transformers import AutoModel

from .tokenizer_objective import TokenizerObjective

#: The keys a ``model:`` section with ``stage1_from`` may have (everything else comes from the stage-1 model).
STAGE2_MODEL_KEYS = ("stage1_from", "model_type", "pixel_decoder", "teacher")


def build_stage2_model(model_section: dict):
    """The stage-1 model of ``model.stage1_from`` with a fresh pixel decoder (``model.pixel_decoder``)."""
    section = dict(model_section)
    path = section.pop("stage1_from")
    model_type = section.pop("model_type", None)
    settings = section.pop("pixel_decoder", None)
    unknown = sorted(set(section) - set(STAGE2_MODEL_KEYS))
    if unknown:
        raise ValueError(f"With model.stage1_from, the model comes from {path}: remove {unknown} from `model:` "
                         f"(allowed: {list(STAGE2_MODEL_KEYS)}).")
    model = AutoModel.from_pretrained(path, **section)
    if model_type and model.config.model_type != model_type:
        raise ValueError(f"model.stage1_from {path} is a {model.config.model_type!r} model but model.model_type is "
                         f"{model_type!r}; drop model_type or point stage1_from at a {model_type} model.")
    if not hasattr(model, "add_pixel_decoder"):
        raise ValueError(f"model.stage1_from {path} is a {type(model).__name__}, which has no pixel-decoder stage "
                         "(hf_vq.models.PixelDecoderMixin); stage 2 is for semantic tokenizers such as vq_cluster.")
    model.add_pixel_decoder(settings)
    return model


class PixelDecoderObjective(TokenizerObjective):
    """The tokenizer objective on ``build_stage2_model(config.model)``: only the pixel decoder trains."""

    def build(self, engine) -> None:
        if self.raw_model is None:
            self.raw_model = build_stage2_model(self.config.model)
        if getattr(self.raw_model, "pixel_decoder", None) is None:
            raise ValueError("The stage-2 objective needs a model with a pixel decoder (add_pixel_decoder).")
        super().build(engine)


__all__ = ["PixelDecoderObjective", "STAGE2_MODEL_KEYS", "build_stage2_model"]
