"""scikit-learn compatible autoencoders, trained with PyTorch."""

from ._base import PosteriorCollapseWarning
from ._images import corrupt
from ._serialization import UnsafeOrCorruptFileError, load, save
from .anomaly import AutoencoderAnomalyDetector
from .ensemble import AutoencoderEnsembleDetector
from .regressor import AutoencoderRegressor
from .transformer import AutoencoderTransformer

__version__ = "0.1.0"

__all__ = [
    "AutoencoderAnomalyDetector",
    "AutoencoderEnsembleDetector",
    "AutoencoderRegressor",
    "AutoencoderTransformer",
    "PosteriorCollapseWarning",
    "UnsafeOrCorruptFileError",
    "corrupt",
    "load",
    "save",
    "__version__",
]
