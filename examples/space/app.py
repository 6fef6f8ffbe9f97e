"""The hf_vq tokenizer playground as a Hugging Face Space (the page of ``hf-vq demo``, models from the Hub).

Set the Space's variables (Settings -> Variables):
  HF_VQ_MODELS  Hub ids of the tokenizers to show side by side, separated by spaces or commas
                (for example ``you/vqvae-embedded you/llamagen-vq16``); each repository holds what
                ``hf-vq push`` uploads (config.json, model.safetensors, preprocessor_config.json).
  HF_VQ_GPT     optional: the Hub id of a GPT over one of them (adds the Generate tab).

Locally the same file runs with folders: ``HF_VQ_MODELS=outputs/demo-vqvae python examples/space/app.py``.
"""

import os
import re

from hf_vq.demo import build_demo_from_sources, launch

MODEL_IDS = [name for name in re.split(r"[\s,]+", os.environ.get("HF_VQ_MODELS", "")) if name]
GPT_ID = os.environ.get("HF_VQ_GPT") or None

if not MODEL_IDS:
    raise SystemExit("Set HF_VQ_MODELS to the Hub ids of the tokenizers to show (Space settings -> Variables), "
                     "e.g. HF_VQ_MODELS='you/vqvae-embedded'.")

demo = build_demo_from_sources(MODEL_IDS, GPT_ID)

if __name__ == "__main__":
    # A Space serves on 0.0.0.0:7860 (GRADIO_SERVER_NAME / GRADIO_SERVER_PORT are set by the Space runtime).
    launch(demo)
