"""scikit-learn compatible autoencoders, trained with PyTorch."""

from .anomaly import AutoencoderAnomalyDetector
from .transformer import AutoencoderTransformer

__version__ = "0.1.0"

__all__ = ["AutoencoderAnomalyDetector", "AutoencoderTransformer", "__version__"]
