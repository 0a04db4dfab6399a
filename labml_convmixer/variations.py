r"""
---
title: Variations
nav_order: 2
summary: >
  Not the paper's: activations by name, and other orders of convolution,
  activation and batch normalization, as subclasses of the paper's parts.
---

# Variations

The [model page](model.md) is the paper's model. These are ours: activations
by name, and other orders of convolution, activation and normalization inside
the patch embeddings and the layers. Each order is a subclass of a paper
class with only a `forward` of its own, so that it has the paper's modules,
parameters and state-dict keys, and a checkpoint of one loads into another.
[`convmixer()`](factory.md) picks them by its `activation`, `pre_act` and
`bn_first` arguments.

The paper's order is $\mathrm{BN}(\sigma(\mathrm{Conv}(x)))$. `bn_first`
gives $\sigma(\mathrm{BN}(\mathrm{Conv}(x)))$, as most CNNs; `pre_act` gives
$\mathrm{BN}(\mathrm{Conv}(\sigma(x)))$; both give ResNet v2's
$\mathrm{Conv}(\sigma(\mathrm{BN}(x)))$.
"""

from typing import Callable, Dict, Union

import torch
from torch import nn

from labml_convmixer.model import ConvMixerLayer, PatchEmbeddings

# An activation is a *factory* such as `nn.GELU` (each layer calls it for its
# own module) or a name in [`ACTIVATIONS`](#ACTIVATIONS)
ActivationFactory = Callable[[], nn.Module]

# ## Activations by name
#
# **The paper (§2):** uses GELU. **Our note:** the released ConvMixer-768/32
# was trained with ReLU, so needs `activation='relu'`.
ACTIVATIONS: Dict[str, ActivationFactory] = {
    'gelu': nn.GELU, 'relu': nn.ReLU, 'mish': nn.Mish, 'silu': nn.SiLU}


def get_activation(activation: Union[str, ActivationFactory]) -> ActivationFactory:
    """A name from `ACTIVATIONS` (any case) to its factory; a factory passes."""
    if isinstance(activation, str):
        if activation.lower() not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: "
                             f"choose one of {', '.join(sorted(ACTIVATIONS))}")
        return ACTIVATIONS[activation.lower()]
    if not callable(activation):
        raise ValueError(f"activation must be a name or a callable that returns an "
                         f"nn.Module, got {activation!r}")
    return activation


class BNFirstPatchEmbeddings(PatchEmbeddings):
    r"""
    ## `bn_first` patch embeddings

    $\sigma(\mathrm{BN}(\mathrm{Conv}(X)))$. There is no `pre_act` patch
    embedding: an activation before this convolution would see pixels.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class BNFirstConvMixerLayer(ConvMixerLayer):
    r"""
    ## `bn_first` layer

    $\sigma(\mathrm{BN}(\mathrm{Conv}(z)))$, around each convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.act1(self.norm1(self.depth_wise_conv(x)))
        return self.act2(self.norm2(self.point_wise_conv(x)))


class PreActConvMixerLayer(ConvMixerLayer):
    r"""
    ## `pre_act` layer

    $\mathrm{BN}(\mathrm{Conv}(\sigma(z)))$: the activation moves before each
    convolution.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.norm1(self.depth_wise_conv(self.act1(x)))
        return self.norm2(self.point_wise_conv(self.act2(x)))


class PreActBNFirstConvMixerLayer(ConvMixerLayer):
    r"""
    ## `pre_act` and `bn_first` layer

    $\mathrm{Conv}(\sigma(\mathrm{BN}(z)))$, as in ResNet v2.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.depth_wise_conv(self.act1(self.norm1(x)))
        return self.point_wise_conv(self.act2(self.norm2(x)))


def patch_embeddings(d_model: int, patch_size: int, in_channels: int,
                     activation: ActivationFactory,
                     bn_first: bool = False) -> PatchEmbeddings:
    """The patch embeddings in the order `bn_first` asks for."""
    cls = BNFirstPatchEmbeddings if bn_first else PatchEmbeddings
    return cls(d_model, patch_size, in_channels, activation)


def conv_mixer_layer(d_model: int, kernel_size: int, activation: ActivationFactory,
                     pre_act: bool = False, bn_first: bool = False) -> ConvMixerLayer:
    """A layer in the order `pre_act` and `bn_first` ask for."""
    cls = {(False, False): ConvMixerLayer, (False, True): BNFirstConvMixerLayer,
           (True, False): PreActConvMixerLayer,
           (True, True): PreActBNFirstConvMixerLayer}[pre_act, bn_first]
    return cls(d_model, kernel_size, activation)
