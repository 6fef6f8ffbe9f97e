"""The tokenizers and the GPT: one folder each (configuration_<name>.py + modeling_<name>.py).

Names are imported on first use (PEP 562), so ``import hf_vq.models`` costs no torch.
"""

from ..utils.lazy import lazy_exports

_EXPORTS = {
    "GENERATORS": ".auto",
    "TOKENIZERS": ".auto",
    "register_auto_classes": ".auto",
    "VQDecoderOutput": ".base",
    "VQEncoderOutput": ".base",
    "VQModelOutput": ".base",
    "VQTokenizerPreTrainedModel": ".base",
    "ConvTokenizerModel": ".base",
    "VQTokenizerConfig": ".configuration_base",
    "CVQVAEConfig": ".cvq_vae",
    "CVQVAEModel": ".cvq_vae",
    "FSQVAEConfig": ".fsq_vae",
    "FSQVAEModel": ".fsq_vae",
    "IBQVAEConfig": ".ibq_vae",
    "IBQVAEModel": ".ibq_vae",
    "LFQVAEConfig": ".lfq_vae",
    "LFQVAEModel": ".lfq_vae",
    "LlamaGenVQConfig": ".llamagen_vq",
    "LlamaGenVQModel": ".llamagen_vq",
    "SimVQVAEConfig": ".simvq_vae",
    "SimVQVAEModel": ".simvq_vae",
    "MaskGITVQGANConfig": ".maskgit_vqgan",
    "MaskGITVQGANModel": ".maskgit_vqgan",
    "TiTokConfig": ".titok",
    "TiTokModel": ".titok",
    "VQGANConfig": ".vqgan",
    "VQGANModel": ".vqgan",
    "VQGANLCConfig": ".vqgan_lc",
    "VQGANLCModel": ".vqgan_lc",
    "VQGANFSQConfig": ".vqgan_fsq",
    "VQGANFSQModel": ".vqgan_fsq",
    "VQGANCVQConfig": ".vqgan_cvq",
    "VQGANCVQModel": ".vqgan_cvq",
    "VQClusterConfig": ".vq_cluster",
    "VQClusterModel": ".vq_cluster",
    "PixelDecoder": ".pixel_decoder",
    "PixelDecoderMixin": ".pixel_decoder",
    "VQKDConfig": ".vqkd",
    "VQKDModel": ".vqkd",
    "VQVAEConfig": ".vqvae",
    "VQVAEModel": ".vqvae",
    # autoregressive generation
    "LLAMAGEN_GPT_PRESETS": ".llamagen_gpt",
    "LlamaGenGPTConfig": ".llamagen_gpt",
    "LlamaGenGPTModel": ".llamagen_gpt",
    "LlamaGenGPTOutput": ".llamagen_gpt",
    "LlamaGenGPTPreTrainedModel": ".llamagen_gpt",
    "LlamaGenKVCache": ".llamagen_gpt",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
