"""
---
title: Named models
summary: >
  The ConvMixer variants of the paper by name: ConvMixer-1536/20, ConvMixer-768/32,
  ConvMixer-1024/20 and the CIFAR-10 ConvMixer-256/8, with their pretrained weights.
nav_order: 7
---

# Named models

A ConvMixer is fixed by its width $h$, depth $d$, kernel size $k$, patch size $p$
and activation. The paper's models are named after the first two,
ConvMixer-$h$/$d$. These are the ones with published results:

| name | $h$/$d$ | $k$ | $p$ | activation | parameters | ImageNet top-1 |
|---|---|---|---|---|---|---|
| `convmixer_1536_20` | 1536/20 | 9 | 7 | GELU | 51,625,960 | 81.37% |
| `convmixer_768_32` | 768/32 | 7 | 7 | **ReLU** | 21,110,248 | 80.16% |
| `convmixer_1024_20_ks9_p14` | 1024/20 | 9 | 14 | GELU | 24,383,464 | 76.94% |
| `convmixer_256_8` | 256/8 | 5 | 2 | GELU | 594,186 (10 classes) | CIFAR-10 model |

The names are timm's, so a name means the same model here and there.

```python
from labml_convmixer.models import create_model

model = create_model('convmixer_768_32', pretrained=True)
cifar_model = create_model('convmixer_256_8')
```

Any argument of [`convmixer()`](factory.md) can be changed by keyword:
`create_model('convmixer_256_8', kernel_size=9, activation='relu')`.

### Pretrained weights and overrides

With `pretrained=True` the weights have been trained for one exact model, and
some changes would make them meaningless:

* The **activation**, `pre_act` and `bn_first` have no weights of their own. A
  checkpoint loads into a model with a different activation or order without a
  single error, and the model then computes something else: ConvMixer-768/32
  was trained with ReLU, and with GELU its accuracy is lost. So with
  `pretrained=True` these can only be given the value the weights were trained
  with; anything else is refused with an error.
* Changing $h$, $d$, $k$ or $p$ changes the shapes of the weights, so it is
  refused too.
* **`n_classes`** can change: the network is loaded and the classifier is a
  fresh, randomly initialised one for the new classes (or none with
  `n_classes=0`), ready for fine-tuning.
* **`in_channels`** can change: the patch embedding's weights are adapted.
  For one channel the RGB kernels are summed, so a grey image gives what the
  same image in RGB gave; for $c$ channels the RGB kernels are repeated
  and scaled by $3/c$.

This file depends only on `torch`, the Python standard library and the rest of
this package.
"""

import inspect
from typing import Dict, List, Optional, Tuple

import torch

from labml_convmixer.backbone import ConvMixerBackbone
from labml_convmixer.download import cached_download
from labml_convmixer.factory import convmixer
from labml_convmixer.pretrained import (convert_state_dict, detect_layout,
                                        load_pretrained, read_checkpoint)
from labml_convmixer.specs import (CIFAR10_MEAN, CIFAR10_STD, IMAGENET_MEAN, IMAGENET_STD,
                                   ModelSpec)
from labml_convmixer.variations import get_activation

# ## The registry
#
# Each named model is a [`ModelSpec`](specs.md#ModelSpec); `create_model` puts its
# `pretrained_cfg` on the model.
MODELS: Dict[str, ModelSpec] = {spec.name: spec for spec in [
    ModelSpec('convmixer_1536_20', 1536, 20, kernel_size=9, patch_size=7, activation='gelu',
              n_classes=1000, top1=81.37,
              weights_file='convmixer_1536_20_ks9_p7.pth.tar',
              mmpretrain_file='convmixer-1536_20_3rdparty_10xb64_in1k_20220323-ea5786f3.pth'),
    # Note the ReLU: this is how the published weights were trained.
    ModelSpec('convmixer_768_32', 768, 32, kernel_size=7, patch_size=7, activation='relu',
              n_classes=1000, top1=80.16,
              weights_file='convmixer_768_32_ks7_p7_relu.pth.tar',
              mmpretrain_file='convmixer-768-32_3rdparty_10xb64_in1k_20220323-bca1f7b8.pth'),
    ModelSpec('convmixer_1024_20_ks9_p14', 1024, 20, kernel_size=9, patch_size=14, activation='gelu',
              n_classes=1000, top1=76.94,
              weights_file='convmixer_1024_20_ks9_p14.pth.tar',
              mmpretrain_file='convmixer-1024-20_3rdparty_10xb64_in1k_20220323-48f8aeba.pth'),
    # The CIFAR-10 model: small patches for $32 \times 32$ images, no published weights.
    ModelSpec('convmixer_256_8', 256, 8, kernel_size=5, patch_size=2, activation='gelu',
              n_classes=10, input_size=32, crop_pct=1.0, interpolation='bilinear',
              mean=CIFAR10_MEAN, std=CIFAR10_STD),
]}

# The keyword arguments `create_model` accepts: those of `convmixer()`.
OVERRIDES = tuple(inspect.signature(convmixer).parameters)
# With pretrained weights: these would change the weights' shapes...
_SHAPE_OPTIONS = ('d_model', 'n_layers', 'kernel_size', 'patch_size')
# ...and these, which have no weights, would silently change what the weights compute.
_FUNCTION_OPTIONS = ('activation', 'pre_act', 'bn_first')


def list_models(pretrained: bool = False) -> List[str]:
    """
    The model names, in alphabetical order; with `pretrained=True` only those with
    published weights.
    """
    return sorted(name for name, spec in MODELS.items() if spec.weights_file or not pretrained)


def get_model_spec(name: str) -> ModelSpec:
    """The `ModelSpec` of a named model."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}: choose one of {', '.join(list_models())}")
    return MODELS[name]


def _same_value(option: str, given, trained) -> bool:
    if option == 'activation':
        # `'relu'`, `'ReLU'` and `nn.ReLU` are the same activation
        return get_activation(given) is get_activation(trained)
    return given == trained


def _check_overrides(spec: ModelSpec, overrides: Dict[str, object], pretrained: bool):
    unknown = sorted(set(overrides) - set(OVERRIDES))
    if unknown:
        raise ValueError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"for create_model: choose from {', '.join(OVERRIDES)}")
    if not pretrained:
        return
    trained = spec.config()
    for option in _SHAPE_OPTIONS + _FUNCTION_OPTIONS:
        if option in overrides and not _same_value(option, overrides[option], trained[option]):
            consequence = ("its weights would not fit" if option in _SHAPE_OPTIONS else
                           "its weights would load without error but compute something else")
            raise ValueError(f"{spec.name} was trained with {option}={trained[option]!r}, and with "
                             f"{option}={overrides[option]!r} {consequence}: drop the option or use "
                             f"pretrained=False")


def adapt_input_channels(weight: torch.Tensor, in_channels: int) -> torch.Tensor:
    """
    ### Patch embedding weights for another number of input channels

    `weight` is the patch embedding's `[d_model, 3, p, p]` kernel, trained on RGB.
    For one channel we sum the three kernels: a grey image then gives the same
    embedding as that image repeated in R, G and B. For $c$ channels we repeat the
    RGB kernels to fill $c$ and scale by $3/c$, which keeps the response to an
    input whose channels are all equal when $c$ is a multiple of 3.
    """
    trained_channels = weight.shape[1]
    if in_channels == trained_channels:
        return weight
    if in_channels == 1:
        return weight.sum(dim=1, keepdim=True)
    repeats = -(-in_channels // trained_channels)
    return weight.repeat(1, repeats, 1, 1)[:, :in_channels] * (trained_channels / in_channels)


def create_model(name: str, pretrained: bool = False, **overrides) -> ConvMixerBackbone:
    """
    ## Create a named model

    * `name` is one of `list_models()`
    * `pretrained` loads the published weights, downloading them into torch's
      hub cache the first time (see [pretrained weights](pretrained.md))
    * `overrides` are arguments of `convmixer()` to change, such as `n_classes`
    """
    spec = get_model_spec(name)
    _check_overrides(spec, overrides, pretrained)
    if pretrained and spec.weights_file is None:
        raise ValueError(f"{name} has no published weights: train it (python experiments/cifar10.py) "
                         f"and load your checkpoint with load_pretrained(model, path)")
    config = spec.config()
    config.update(overrides)
    if not pretrained:
        return _with_cfg(convmixer(**config), spec)

    # The official file from the cache, downloading it if needed;
    # mmpretrain's copy is used instead if that is what the cache has.
    # This comes first, so that without network we fail before building a large model.
    path = cached_download(spec.weights_url, spec.weights_file, alternatives=(spec.mmpretrain_file,))
    model = convmixer(**config)
    # A different number of classes gets the model's own fresh classifier.
    load_head = config['n_classes'] == spec.n_classes
    try:
        if config['in_channels'] == 3:
            load_pretrained(model, path, load_head=load_head)
        else:
            # Adapt the patch embedding in our layout, then hand the weights back
            # in the file's layout, so that any error names the layout of the file.
            checkpoint = read_checkpoint(path)
            layout = detect_layout(checkpoint)
            state_dict = convert_state_dict(checkpoint, to='ours', layout=layout)
            key = 'patch_emb.conv.weight'
            if key in state_dict:
                state_dict[key] = adapt_input_channels(state_dict[key], config['in_channels'])
            load_pretrained(model, convert_state_dict(state_dict, to=layout, layout='ours'), load_head=load_head)
    except ValueError as e:
        if str(path) in str(e):
            raise
        # Say which file it was: the cache may hold a wrong file under the right name.
        raise type(e)(f"{path}: {e}") from None
    return _with_cfg(model, spec)


def _with_cfg(model: ConvMixerBackbone, spec: ModelSpec) -> ConvMixerBackbone:
    # As in timm, the named model's configuration, whatever was overridden
    model.pretrained_cfg = model.default_cfg = spec.pretrained_cfg()
    return model


__all__ = ['IMAGENET_MEAN', 'IMAGENET_STD', 'CIFAR10_MEAN', 'CIFAR10_STD', 'ModelSpec', 'MODELS',
           'OVERRIDES', 'list_models', 'get_model_spec', 'adapt_input_channels', 'create_model']
