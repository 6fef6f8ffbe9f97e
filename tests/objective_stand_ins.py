"""Stand-ins for driving a tokenizer objective's step without a tokenizer (tests only)."""

from types import SimpleNamespace

import torch


class FixedReconstruction(torch.nn.Module):
    """Stands in for the tokenizer: returns the given reconstruction and zero reconstruction / quantizer terms."""

    def __init__(self, reconstruction: torch.Tensor):
        super().__init__()
        self.reconstruction = reconstruction

    def forward(self, pixel_values):
        return SimpleNamespace(reconstruction=self.reconstruction, reconstruction_loss=torch.zeros(()), loss_terms={},
                               quantizer_loss=None, indices=torch.zeros(pixel_values.shape[0], dtype=torch.long))
