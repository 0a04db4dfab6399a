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
from labml_convmixer.models import MODELS, create_model, get_model_spec, list_models
from labml_convmixer.pretrained import (CheckpointMismatchError, WeightsUnavailableError,
                                        convert_state_dict, load_pretrained, to_timm_state_dict)

__all__ = ['ACTIVATIONS', 'ClassificationHead', 'ConvMixer', 'ConvMixerLayer', 'DepthWiseConv2d',
           'PatchEmbeddings', 'clone_module_list', 'convmixer', 'get_activation',
           'MODELS', 'create_model', 'get_model_spec', 'list_models',
           'CheckpointMismatchError', 'WeightsUnavailableError', 'convert_state_dict',
           'load_pretrained', 'to_timm_state_dict']
