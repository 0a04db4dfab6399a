"""
---
title: labml_convmixer
summary: The package's public names, in one place.
---

# The package

Everything you need is importable from `labml_convmixer`: the
[model's parts](model.html), and the named models with their
[pretrained weights](pretrained.html).
"""

from labml_convmixer.model import (ACTIVATIONS, ClassificationHead, ConvMixer, ConvMixerLayer,
                                   DepthWiseConv2d, PatchEmbeddings, clone_module_list, convmixer,
                                   get_activation)

__all__ = ['ACTIVATIONS', 'ClassificationHead', 'ConvMixer', 'ConvMixerLayer', 'DepthWiseConv2d',
           'PatchEmbeddings', 'clone_module_list', 'convmixer', 'get_activation']
