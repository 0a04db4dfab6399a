"""
---
title: labml_convmixer
summary: The package's public names, in one place.
---

# The package

Everything you need is importable from `labml_convmixer`: the
[paper's model](model.html) and its parts, the [variations](variations.html),
[`convmixer()`](factory.html) that builds a checked model with the
[backbone methods](backbone.html), and the named models with their
[pretrained weights](pretrained.html).

`convmixer` here is the package's [`convmixer()`](factory.html);
`labml_convmixer.model.convmixer` is the paper's plain builder.
"""

from labml_convmixer.backbone import ConvMixerBackbone
from labml_convmixer.factory import convmixer
from labml_convmixer.model import (ClassificationHead, ConvMixer, ConvMixerLayer, DepthWiseConv2d,
                                   PatchEmbeddings, clone_module_list)
from labml_convmixer.models import MODELS, create_model, get_model_spec, list_models
from labml_convmixer.pretrained import (CheckpointMismatchError, WeightsUnavailableError,
                                        convert_state_dict, load_pretrained, to_timm_state_dict)
from labml_convmixer.variations import ACTIVATIONS, get_activation

__all__ = ['ACTIVATIONS', 'ClassificationHead', 'ConvMixer', 'ConvMixerBackbone', 'ConvMixerLayer',
           'DepthWiseConv2d', 'PatchEmbeddings', 'clone_module_list', 'convmixer', 'get_activation',
           'MODELS', 'create_model', 'get_model_spec', 'list_models',
           'CheckpointMismatchError', 'WeightsUnavailableError', 'convert_state_dict',
           'load_pretrained', 'to_timm_state_dict']
