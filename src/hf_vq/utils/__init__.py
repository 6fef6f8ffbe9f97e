"""What every hf_vq layer may use: image grids, hub uploads, model cards, user errors (imports no other hf_vq layer)."""
