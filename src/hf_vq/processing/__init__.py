from .image_processing_vq import VQImageProcessor, center_crop_arr

__all__ = ["VQImageProcessor", "center_crop_arr"]
