"""FSQ-VAE: SimpleCNN encoder -> FSQ (no codebook, no loss) -> decoder."""

from ...quantizers import FSQ
from ..simple_cnn import SimpleCNNTokenizerModel
from .configuration_fsq_vae import FSQVAEConfig


class FSQVAEModel(SimpleCNNTokenizerModel):
    config: FSQVAEConfig
    config_class = FSQVAEConfig
    # Changing these changes what the same weights compute (checked on from_pretrained).
    function_config_fields = ("levels",)

    def build_quantizer(self, config: FSQVAEConfig) -> FSQ:
        return FSQ(config.levels)


__all__ = ["FSQVAEModel"]
