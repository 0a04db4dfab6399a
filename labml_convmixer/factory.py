r"""
---
title: Building a model
nav_order: 3
summary: >
  convmixer(): the paper's model from its four numbers, with checked sizes,
  activations by name, other orders, and the backbone methods.
---

# Building a model

`convmixer()` is where a model is made: [`create_model()`](models.md) calls it
for the named models, and you can call it for any ConvMixer-$h$/$d$. It takes
the arguments of the [paper's builder](model.md#convmixer) and more, and it is
the model's door, so it [checks](checks.md) them:

* `d_model` ($h$), `n_layers` ($d$), `kernel_size` ($k$), `patch_size` ($p$)
  and `in_channels` must be positive integers, `n_classes` a non-negative one
  (0 gives no classifier, and the pooled features)
* `activation` is a name in [`ACTIVATIONS`](variations.md#ACTIVATIONS) or a
  class such as `nn.GELU`
* `pre_act` and `bn_first` choose one of the [other orders](variations.md)

The model it returns is a [`ConvMixerBackbone`](backbone.md): the paper's
model, with the methods libraries such as timm expect, and a check of the
images it is given. Its `pretrained_cfg` is that of a
[`ModelSpec`](specs.md#ModelSpec) with the default images, $224 \times 224$;
[`create_model()`](models.md) puts the named model's own there.
"""

from typing import Union

from torch import nn

from labml_convmixer.backbone import ConvMixerBackbone
from labml_convmixer.checks import check_sizes
from labml_convmixer.model import ClassificationHead
from labml_convmixer.specs import ModelSpec
from labml_convmixer.variations import (ActivationFactory, conv_mixer_layer, get_activation,
                                        patch_embeddings)


def convmixer(d_model: int, n_layers: int, kernel_size: int = 9, patch_size: int = 7,
              n_classes: int = 1000, in_channels: int = 3,
              activation: Union[str, ActivationFactory] = nn.GELU,
              pre_act: bool = False, bn_first: bool = False) -> ConvMixerBackbone:
    """
    ## Build a checked ConvMixer-$h$/$d$

    `convmixer(256, 8, kernel_size=5, patch_size=2, n_classes=10)` is the
    paper's CIFAR-10 model, ConvMixer-256/8.
    """
    name = activation if isinstance(activation, str) else None
    activation = get_activation(activation)
    check_sizes(1, d_model=d_model, kernel_size=kernel_size, patch_size=patch_size,
                in_channels=in_channels, n_layers=n_layers)
    check_sizes(0, n_classes=n_classes)
    # The defaults of a model of any size: ImageNet's images and statistics
    spec = ModelSpec('convmixer', d_model, n_layers, kernel_size, patch_size,
                     name or getattr(activation, '__name__', 'custom').lower(),
                     n_classes, in_channels=in_channels)
    return ConvMixerBackbone(
        conv_mixer_layer(d_model, kernel_size, activation, pre_act, bn_first),
        n_layers,
        patch_embeddings(d_model, patch_size, in_channels, activation, bn_first),
        ClassificationHead(d_model, n_classes),
        pretrained_cfg=spec.pretrained_cfg(),
    )
