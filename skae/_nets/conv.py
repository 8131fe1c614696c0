"""Convolutional layers on flat rows: images as scikit-learn rows.

An image batch of shape ``(n, H, W, C)`` is a data matrix of shape
``(n, H * W * C)`` as ``images.reshape(n, -1)`` lays it out: row-major,
channels last (pixel ``(i, j)``, channel ``c`` is column ``(i * W + j) * C
+ c``). The layers here take and return such flat rows, so they slot into
the MLP's chain of :class:`~skae._nets.mlp.Dense` layers and everything
built on it (standardization, corruption, sparsity, the variational
posterior, chunked inference) works unchanged. Between layers rows are laid
out channels first (``(C, H, W)`` flattened, torch's own order), so only
the first encoder layer and the last decoder layer reorder their data.

Each encoder stage is a ``kernel_size`` convolution with stride 2 and
padding ``kernel_size // 2`` (it halves height and width, rounding up);
each decoder stage the transposed convolution that restores the exact
shape of the mirrored encoder input.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


def conv_size(n, kernel_size):
    """Output length of a stride-2 convolution with padding ``kernel_size // 2``."""
    return (n + 2 * (kernel_size // 2) - kernel_size) // 2 + 1


def stage_shapes(image_shape, channels, kernel_size):
    """``(C, H, W)`` of the input and of every encoder stage's output.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)``.
    channels : tuple of int
        Output channels of each stage.
    kernel_size : int

    Returns
    -------
    shapes : list of tuple
        ``len(channels) + 1`` shapes, the input's first.
    """
    h, w, c = image_shape
    shapes = [(c, h, w)]
    for out in channels:
        h, w = conv_size(h, kernel_size), conv_size(w, kernel_size)
        shapes.append((out, h, w))
    return shapes


class ImageConv(nn.Module):
    """A stride-2 (transposed) convolution, or a stride-1 convolution, on flat rows.

    Parameters
    ----------
    in_shape : tuple of int
        ``(C, H, W)`` of the input image.
    out_shape : tuple of int
        ``(C, H, W)`` of the output image (its height and width follow from
        the input's: halved for a convolution, doubled less the padding, to
        ``out_shape``, for a transposed one).
    kernel_size : int
        Odd.
    transpose : bool, default=False
        A transposed convolution (decoder) instead of a convolution (encoder).
    channels_last_in, channels_last_out : bool, default=False
        Whether the input / output rows are laid out ``(H, W, C)`` (the
        user's layout) rather than ``(C, H, W)``.
    stride : {1, 2}, default=2
        1 keeps height and width (a convolution only).
    image_channels : int, default=0
        The last ``image_channels`` channels of the input arrive as the
        network's input image, channels last, after the other channels'
        ``(C, H, W)`` rows (a skip connection from the input): they are
        reordered and concatenated before the convolution.
    """

    #: How chunked inference runs this layer (see ``skae._inference.Forward``).
    step_kind = "map"

    def __init__(self, in_shape, out_shape, kernel_size, transpose=False,
                 channels_last_in=False, channels_last_out=False, stride=2, image_channels=0):
        super().__init__()
        self.stride, self.image_channels = stride, image_channels
        self.in_shape, self.out_shape = tuple(in_shape), tuple(out_shape)
        self.kernel_size, self.transpose = kernel_size, transpose
        self.channels_last_in, self.channels_last_out = channels_last_in, channels_last_out
        self.in_features = math.prod(in_shape)
        self.out_features = math.prod(out_shape)
        self.padding = kernel_size // 2
        c_in, c_out = in_shape[0], out_shape[0]
        shape = (c_in, c_out) if transpose else (c_out, c_in)
        f32 = dict(dtype=torch.float32)
        self.weight = nn.Parameter(torch.zeros(*shape, kernel_size, kernel_size, **f32))
        self.bias = nn.Parameter(torch.zeros(c_out, **f32))
        self.output_padding = 0
        if transpose:  # restore the mirrored encoder input's exact size
            h_in, h_out = in_shape[1], out_shape[1]
            self.output_padding = (
                h_out - ((h_in - 1) * 2 - 2 * self.padding + kernel_size),
                out_shape[2] - ((in_shape[2] - 1) * 2 - 2 * self.padding + kernel_size),
            )
            if not all(p in (0, 1) for p in self.output_padding):
                raise ValueError(f"cannot map {in_shape} to {out_shape} with stride 2")

    @property
    def glorot_fans(self):
        """``(fan_in, fan_out)`` for Glorot initialization."""
        k2 = self.kernel_size ** 2
        return self.in_shape[0] * k2, self.out_shape[0] * k2

    def apply_to(self, x, weight, bias):
        """The layer on flat rows ``x`` with the given parameters (any dtype)."""
        m = x.shape[0]
        c, h, w = self.in_shape
        if self.image_channels:
            k = self.image_channels
            features = x[:, :(c - k) * h * w].reshape(m, c - k, h, w)
            image = x[:, (c - k) * h * w:].reshape(m, h, w, k).permute(0, 3, 1, 2)
            img = torch.cat((features, image), 1)
        elif self.channels_last_in:  # a view: the convolution then runs channels-last
            img = x.reshape(m, h, w, c).permute(0, 3, 1, 2)
        else:
            img = x.reshape(m, c, h, w)
        if self.transpose:
            y = F.conv_transpose2d(img, weight, bias, stride=2, padding=self.padding,
                                   output_padding=self.output_padding)
        else:
            y = F.conv2d(img, weight, bias, stride=self.stride, padding=self.padding)
        if self.channels_last_out:
            y = y.permute(0, 2, 3, 1)
        return y.reshape(m, -1)

    def forward(self, x):
        """The layer on flat rows ``x``."""
        return self.apply_to(x, self.weight, self.bias)

    def extra_repr(self):
        kind = "transposed, " if self.transpose else ""
        return f"{self.in_shape} -> {self.out_shape}, {kind}kernel_size={self.kernel_size}"


class ImageMaps:
    """The convolutional stages of a network: encoder stages and mirrored decoder stages.

    Parameters
    ----------
    image_shape : tuple of int
        ``(H, W, C)`` of the input rows.
    channels : tuple of int
        Output channels of each encoder stage.
    kernel_size : int
    out_channels : int
        Channels of the decoder's output image (``C`` for an autoencoder).
    skip : bool, default=False
        Each decoder stage also receives the output of the encoder stage of
        the same resolution (concatenated channels): its input channels
        double. Not the first decoder layer of the network, which reads the
        code alone: that is this stage when ``dense`` is False. The last
        transposed stage then gives ``channels[0]`` feature maps at full
        resolution, and a final stride-1 convolution reads them with the
        input image itself to give the ``out_channels`` of the output.
    dense : bool, default=True
        Whether dense layers sit between the encoder and decoder stages.

    Attributes
    ----------
    encoder, decoder : list of ImageConv
    n_flat : int
        Width of the last encoder stage's output (flattened).
    """

    def __init__(self, image_shape, channels, kernel_size, out_channels, skip=False, dense=True):
        shapes = stage_shapes(image_shape, channels, kernel_size)
        self.encoder = [
            ImageConv(a, b, kernel_size, channels_last_in=i == 0)
            for i, (a, b) in enumerate(zip(shapes[:-1], shapes[1:]))
        ]
        top = (channels[0] if skip else out_channels, *shapes[0][1:])
        targets = [top] + shapes[1:-1]
        self.decoder = []
        for i in range(len(channels), 0, -1):
            c, h, w = shapes[i]
            self.decoder.append(ImageConv(
                ((2 if skip and (dense or i < len(channels)) else 1) * c, h, w), targets[i - 1],
                kernel_size, transpose=True,
                channels_last_out=i == 1 and not skip,
            ))
        if skip:  # full resolution: the features and the input image
            c_in, h, w = shapes[0]
            self.decoder.append(ImageConv(
                (channels[0] + c_in, h, w), (out_channels, h, w), kernel_size, stride=1,
                image_channels=c_in, channels_last_out=True,
            ))
        self.n_flat = math.prod(shapes[-1])
