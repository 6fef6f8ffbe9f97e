"""The tokenizer playground: ``hf-vq demo`` and the Hugging Face Space in ``examples/space``.

``playground`` computes (no user interface, no gradio); ``app`` lays it out as a Gradio Blocks
page (needs the ``demo`` extra: ``pip install "hf_vq[demo]"``). Names load lazily, so
``import hf_vq.demo`` imports gradio only when the page is built.
"""

from ..utils.lazy import lazy_exports

_PLAYGROUND = (
    "DEFAULT_MODEL_DIR", "EXAMPLE_IMAGES", "LoadedTokenizer", "codebook_statistics", "compare_runs", "example_image",
    "generate", "load_gpt", "load_tokenizer", "open_image", "reconstruct", "replace_token", "token_map", "try_load_lpips",
)
__getattr__, __dir__ = lazy_exports(
    globals(), {**{name: ".playground" for name in _PLAYGROUND}, "build_demo": ".app", "build_demo_from_sources": ".app", "launch": ".app"}
)
__all__ = [*_PLAYGROUND, "build_demo", "build_demo_from_sources", "launch"]
