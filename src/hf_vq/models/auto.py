"""Registration of every hf_vq config / model / image processor with the transformers Auto classes.

One list, one place: a new tokenizer adds its (config, model) pair here.
"""

from transformers import AutoConfig, AutoImageProcessor, AutoModel

from ..processing import VQImageProcessor
from .cvq_vae import CVQVAEConfig, CVQVAEModel
from .fsq_vae import FSQVAEConfig, FSQVAEModel
from .lfq_vae import LFQVAEConfig, LFQVAEModel
from .llamagen_gpt import LlamaGenGPTConfig, LlamaGenGPTModel
from .llamagen_vq import LlamaGenVQConfig, LlamaGenVQModel
from .simvq_vae import SimVQVAEConfig, SimVQVAEModel
from .vqgan import VQGANConfig, VQGANModel
from .vqgan_lc import VQGANLCConfig, VQGANLCModel
from .vqvae import VQVAEConfig, VQVAEModel

TOKENIZERS = {
    "vqvae": (VQVAEConfig, VQVAEModel),
    "fsq_vae": (FSQVAEConfig, FSQVAEModel),
    "simvq_vae": (SimVQVAEConfig, SimVQVAEModel),
    "lfq_vae": (LFQVAEConfig, LFQVAEModel),
    "cvq_vae": (CVQVAEConfig, CVQVAEModel),
    "vqgan": (VQGANConfig, VQGANModel),
    "llamagen_vq": (LlamaGenVQConfig, LlamaGenVQModel),
    "vqgan_lc": (VQGANLCConfig, VQGANLCModel),
}

# Autoregressive models over tokenizer indices: AutoConfig / AutoModel only (no image processor).
GENERATORS = {
    "llamagen_gpt": (LlamaGenGPTConfig, LlamaGenGPTModel),
}


def register_auto_classes() -> None:
    for model_type, (config_class, model_class) in TOKENIZERS.items():
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
        # One class for both backends: it works on PIL/numpy and needs no torchvision.
        processors = {"pil": VQImageProcessor, "torchvision": VQImageProcessor}
        AutoImageProcessor.register(config_class, image_processor_classes=processors, exist_ok=True)
    for model_type, (config_class, model_class) in GENERATORS.items():
        AutoConfig.register(model_type, config_class, exist_ok=True)
        AutoModel.register(config_class, model_class, exist_ok=True)
