"""scikit-learn compatible autoencoders, trained with PyTorch."""

from ._base import PosteriorCollapseWarning
from .anomaly import AutoencoderAnomalyDetector
from .transformer import AutoencoderTransformer

__version__ = "0.1.0"

__all__ = [
    "AutoencoderAnomalyDetector",
    "AutoencoderTransformer",
    "PosteriorCollapseWarning",
    "__version__",
]
