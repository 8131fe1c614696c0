"""scikit-learn compatible autoencoders, trained with PyTorch."""

from .transformer import AutoencoderTransformer

__version__ = "0.1.0"

__all__ = ["AutoencoderTransformer", "__version__"]
