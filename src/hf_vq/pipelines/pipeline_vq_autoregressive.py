"""``VQAutoregressivePipeline``: class labels -> GPT samples image tokens -> tokenizer decodes them.

Both components are hf_vq models, i.e. transformers ``PreTrainedModel`` subclasses. diffusers
saves them through ``save_pretrained``; to load them back it must know the library that
defines them: ``register_hf_vq_with_diffusers()`` (called by the pipeline's ``__init__`` and
``from_pretrained``) adds ``hf_vq`` and its two base classes to diffusers' table of loadable
libraries. ``model_index.json`` then names ``["hf_vq", "<Class>"]``.

Sampling is ``hf_vq.generation.generate_images``: the pipeline only repeats the labels and
converts the output, so both give the same images for the same arguments and seed.
"""

from collections.abc import Sequence

import torch
from diffusers import DiffusionPipeline, ImagePipelineOutput
from diffusers.pipelines import pipeline_loading_utils

from ..generation.images import check_compatible, generate_images
from ..generation.sampling import DEFAULT_GUIDANCE_SCALE
from ..models.base import VQTokenizerPreTrainedModel
from ..models.llamagen_gpt import LlamaGenGPTPreTrainedModel

OUTPUT_TYPES = ("pil", "np", "pt")
HF_VQ_LOADABLE_CLASSES = {
    VQTokenizerPreTrainedModel.__name__: ["save_pretrained", "from_pretrained"],
    LlamaGenGPTPreTrainedModel.__name__: ["save_pretrained", "from_pretrained"],
}


def register_hf_vq_with_diffusers() -> None:
    """Let ``DiffusionPipeline.from_pretrained`` load components saved as ``["hf_vq", class name]``."""
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault("hf_vq", {}).update(HF_VQ_LOADABLE_CLASSES)
    # The same dict object is imported by pipeline_utils, so updating it in place reaches both.
    pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.update(HF_VQ_LOADABLE_CLASSES)



class VQAutoregressivePipeline(DiffusionPipeline):
    """Class-conditional image generation with an autoregressive GPT over a VQ tokenizer's codes.

    Args:
        tokenizer: any hf_vq tokenizer (``decode_indices`` turns codes into images).
        transformer: a GPT over the tokenizer's codes, e.g. ``LlamaGenGPTModel``.
    """

    model_cpu_offload_seq = "transformer->tokenizer"

    def __init__(self, tokenizer: VQTokenizerPreTrainedModel, transformer: LlamaGenGPTPreTrainedModel):
        register_hf_vq_with_diffusers()
        super().__init__()
        check_compatible(transformer, tokenizer)
        self.register_modules(tokenizer=tokenizer, transformer=transformer)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        """diffusers' ``from_pretrained``, after telling diffusers how to load hf_vq components."""
        register_hf_vq_with_diffusers()
        return super().from_pretrained(pretrained_model_name_or_path, **kwargs)

    @torch.no_grad()
    def __call__(
        self,
        class_labels: int | Sequence[int] | torch.Tensor,
        guidance_scale: float = DEFAULT_GUIDANCE_SCALE,
        temperature: float = 1.0,
        top_k: int = 0,
        top_p: float = 1.0,
        num_images_per_label: int = 1,
        generator: torch.Generator | None = None,
        output_type: str = "pil",
        cfg_interval: int = -1,
        return_dict: bool = True,
    ) -> ImagePipelineOutput | tuple:
        """Generate ``num_images_per_label`` images for every label.

        ``guidance_scale`` (default ``DEFAULT_GUIDANCE_SCALE`` = 2.0, as ``generate_images``; > 1 enables
        classifier-free guidance; LlamaGen uses 2.0 for GPT-B/L and 1.75 for XL/XXL), ``temperature``,
        ``top_k`` (0 = off) and ``top_p`` (1 = off) shape each token draw; ``cfg_interval`` follows
        LlamaGen (-1 = guide every token). ``generator`` seeds the draws.
        ``output_type``: "pil" (list of PIL images), "np" ((B, H, W, C) floats in [0, 1]) or "pt"
        ((B, C, H, W) in [0, 1]).
        """
        if output_type not in OUTPUT_TYPES:
            raise ValueError(f"Unknown output_type {output_type!r}; choose one of {OUTPUT_TYPES}.")
        if isinstance(generator, list):
            raise TypeError("Pass one torch.Generator: the whole batch is sampled together.")
        if num_images_per_label < 1:
            raise ValueError(f"num_images_per_label must be >= 1; got {num_images_per_label}.")
        labels = torch.as_tensor([class_labels] if isinstance(class_labels, int) else class_labels)
        labels = labels.repeat_interleave(num_images_per_label)

        images = generate_images(
            self.transformer, self.tokenizer, labels, guidance_scale=guidance_scale, cfg_interval=cfg_interval,
            temperature=temperature, top_k=top_k, top_p=top_p, generator=generator, progress_bar=self.progress_bar,
        )
        images = (images.float() / 2 + 0.5).clamp(0, 1)
        self.maybe_free_model_hooks()

        if output_type == "pt":
            output: torch.Tensor | list = images.cpu()
        else:
            output = images.cpu().permute(0, 2, 3, 1).numpy()
            if output_type == "pil":
                output = self.numpy_to_pil(output)
        return ImagePipelineOutput(images=output) if return_dict else (output,)


__all__ = ["VQAutoregressivePipeline", "register_hf_vq_with_diffusers"]
