"""Network kinds: one module each, chosen by a registry from the Spec."""

from .mlp import MLPAutoencoder, build_mlp
from .variational import VariationalAutoencoder, build_variational

#: Network kind name -> builder ``build(spec, shift, scale, generator, targets) -> nn.Module``.
#: ``"conv"`` is the MLP chain with convolutional stages at both ends (see ``conv.py``).
NETWORKS = {"mlp": build_mlp, "conv": build_mlp, "variational": build_variational}


def build_network(spec, shift=None, scale=None, generator=None, targets=None):
    """Build the network of kind ``spec.kind``.

    Parameters
    ----------
    spec : skae._params.Spec
    shift, scale : torch.Tensor of shape (n_features,) or None
        Standardization statistics (float64), or None.
    generator : torch.Generator or None
        CPU generator for the initial weights.
    targets : tuple of torch.Tensor or None
        Standardization statistics of the outputs, for paired data.

    Returns
    -------
    net : torch.nn.Module
    """
    return NETWORKS[spec.kind](spec, shift=shift, scale=scale, generator=generator, targets=targets)


__all__ = ["MLPAutoencoder", "NETWORKS", "VariationalAutoencoder", "build_network"]
