"""
---
title: Pretrained weights
summary: >
  Load published ConvMixer weights (official, timm or mmpretrain layout) into
  this implementation, write ours in timm's layout, and say exactly what does
  not fit when a checkpoint belongs to another model.
nav_order: 8
---

# Pretrained weights

The authors released three ImageNet-1k models. Their weights exist in three
*layouts*, three ways of naming the same tensors, and none of them is ours:

| tensor | ours | timm |
|---|---|---|
| patch embedding convolution | `patch_emb.conv` | `stem.0` |
| its batch normalization | `patch_emb.norm` | `stem.2` |
| layer $i$ depth-wise | `conv_mixer_layers.{i}.depth_wise_conv` | `blocks.{i}.0.fn.0` |
| its batch normalization | `conv_mixer_layers.{i}.norm1` | `blocks.{i}.0.fn.2` |
| layer $i$ point-wise | `conv_mixer_layers.{i}.point_wise_conv` | `blocks.{i}.1` |
| its batch normalization | `conv_mixer_layers.{i}.norm2` | `blocks.{i}.3` |
| classifier | `classification.linear` | `head` |

The other two follow from timm's:

* **official** drops `stem.`, numbers layer $i$ as `{3+i}` instead of
  `blocks.{i}`, and calls the classifier `{d+5}`: `0.weight`, `3.0.fn.0.weight`,
  `25.weight` for $d = 20$;
* **mmpretrain** puts `backbone.` in front, says `stages` instead of `blocks`,
  and calls the classifier `head.fc`: `backbone.stem.0.weight`,
  `backbone.stages.0.0.fn.0.weight`, `head.fc.weight`.

The official model is one long `nn.Sequential`, so its names are positions:
the patch embedding is `0` (convolution), `1` (activation, no weights) and
`2` (batch normalization); the $d$ layers follow at `3` to `d+2`, each a
`Residual` whose `fn` holds the depth-wise part; then come pooling (`d+3`),
flattening (`d+4`) and the linear classifier at `d+5`. timm and mmpretrain
kept the inner structure and gave the outer parts names.

Only the names differ. The tensors have the same shapes and meaning in every
layout (activations and pooling have no weights), so converting is renaming,
and a model loaded from any of them computes exactly what the original does.

Two things make loading trustworthy:

* **Strict loading.** Every tensor of the model must come from the
  checkpoint and every tensor of the checkpoint must go into the model, with
  the same shape. When that fails, the error says which layout it saw, what the
  checkpoint and the model look like ("ConvMixer-768/32, k7, p7" against
  "ConvMixer-1536/20, k9, p7"), and which keys are missing, unexpected or of
  the wrong shape, with long lists folded (`conv_mixer_layers.{20..31}.*`).
* **What strict loading cannot see.** Activations have no weights. The
  released ConvMixer-768/32 was trained with ReLU, and its weights load without
  a complaint into a GELU model, which then computes something else. Only the
  model's name can tell; the [named models](models.md) keep the activation with
  the variant for this reason.

This file depends only on `torch`, the Python standard library and
[`download.py`](download.html), which opens the files.
"""

import os
import re
from collections import OrderedDict
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

import torch
from torch import nn

# Opening files and downloading them is the job of [the next page](download.html);
# these names stay importable from here too.
from labml_convmixer.download import (DOWNLOAD_TIMEOUT, WeightsUnavailableError,
                                      cache_dir, cached_download, open_checkpoint)

# A state dict: tensor names to tensors.
StateDict = Dict[str, torch.Tensor]
# What `load_pretrained` accepts: a file, a (possibly wrapped) state dict, or a model.
Source = Union[str, os.PathLike, Mapping, nn.Module]

# The layouts we read and write. `ours` is the layout of
# [`ConvMixer`](model.md) in this package.
LAYOUTS = ('ours', 'official', 'timm', 'mmpretrain')


class CheckpointMismatchError(ValueError):
    """A checkpoint whose tensors do not fit the model."""


# ## Names in each layout
#
# For each layout: the names of the patch embedding's convolution and
# normalization, the name of layer $i$, the names of the four parts inside a
# layer, and the classifier's name. The official layout numbers its modules, so
# its layer and classifier names are computed from the depth below.
_OUR_PARTS = ('depth_wise_conv', 'norm1', 'point_wise_conv', 'norm2')
_SEQUENTIAL_PARTS = ('0.fn.0', '0.fn.2', '1', '3')
_NAMES = {
    'ours': ('patch_emb.conv', 'patch_emb.norm', 'conv_mixer_layers.{}', _OUR_PARTS,
             'classification.linear'),
    'timm': ('stem.0', 'stem.2', 'blocks.{}', _SEQUENTIAL_PARTS, 'head'),
    'mmpretrain': ('backbone.stem.0', 'backbone.stem.2', 'backbone.stages.{}',
                   _SEQUENTIAL_PARTS, 'head.fc'),
    'official': ('0', '2', None, _SEQUENTIAL_PARTS, None),
}
# The tensors of each kind of module.
_CONV = ('weight', 'bias')
_NORM = ('weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked')
_PART_TENSORS = (_CONV, _NORM, _CONV, _NORM)


def _module_names(layout: str, n_layers: int) -> List[Tuple[str, Tuple[str, ...]]]:
    """
    The module names of a ConvMixer with `n_layers` layers in `layout`, in order,
    each with the names of its tensors.
    """
    stem_conv, stem_norm, layer, parts, head = _NAMES[layout]
    if layout == 'official':
        # Layer $i$ is module $3 + i$; pooling and flattening sit at $d+3$ and
        # $d+4$, so the classifier is module $d + 5$.
        layer, head = '{}', str(n_layers + 5)
        offset = 3
    else:
        offset = 0
    names = [(stem_conv, _CONV), (stem_norm, _NORM)]
    for i in range(n_layers):
        for part, tensors in zip(parts, _PART_TENSORS):
            names.append((f'{layer.format(i + offset)}.{part}', tensors))
    names.append((head, _CONV))
    return names


def _key_names(layout: str, n_layers: int) -> List[str]:
    return [f'{module}.{tensor}' for module, tensors in _module_names(layout, n_layers)
            for tensor in tensors]


def _count_layers(keys: Iterable[str], layout: str) -> int:
    """
    The depth $d$ of a state dict: one more than its highest layer number.
    """
    if layout == 'official':
        # Layers are the numbered modules from 3 on that have sub-modules
        # (`{n}.0.fn.0.weight`); the classifier `{d+5}.weight` has none.
        numbers = [int(k.split('.')[0]) for k in keys
                   if k.split('.')[0].isdigit() and k.count('.') >= 2]
        numbers = [n - 3 for n in numbers if n >= 3]
    else:
        prefix = _NAMES[layout][2].format('')
        numbers = [int(k[len(prefix):].split('.')[0]) for k in keys
                   if k.startswith(prefix) and k[len(prefix):].split('.')[0].isdigit()]
    return max(numbers) + 1 if numbers else 0


# ## Detecting the layout and unwrapping checkpoints

def detect_layout(state_dict: Mapping[str, torch.Tensor]) -> str:
    """
    Tell the layout of a state dict from its keys: mmpretrain's live under
    `backbone.`, timm's start with `stem.` or `blocks.`, ours with `patch_emb.` or
    `conv_mixer_layers.`, and the official ones are all numbers.
    """
    keys = list(state_dict)
    if any(k.startswith('backbone.') for k in keys):
        return 'mmpretrain'
    if any(k.startswith(('stem.', 'blocks.')) for k in keys):
        return 'timm'
    ours = ('patch_emb.', 'conv_mixer_layers.', 'classification.')
    if any(k.startswith(ours) for k in keys):
        return 'ours'
    if keys and all(k.split('.')[0].isdigit() for k in keys):
        return 'official'
    shown = ', '.join(keys[:4]) + (', ...' if len(keys) > 4 else '') if keys else 'none'
    raise ValueError(f"not a ConvMixer state dict in any known layout "
                     f"({', '.join(LAYOUTS)}); its keys are: {shown}")


def _is_state_dict(obj) -> bool:
    return isinstance(obj, Mapping) and len(obj) > 0 and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def unwrap_checkpoint(checkpoint) -> StateDict:
    """
    Find the state dict in a checkpoint.

    Training scripts save more than the weights: the official and timm
    checkpoints are `{'state_dict': ..., 'optimizer': ..., 'args': ..., 'epoch': ...}`,
    mmpretrain's are `{'state_dict': ..., 'meta': ...}`, and other scripts use
    `'model'`. A model trained with `DataParallel` or `DistributedDataParallel`
    has every key prefixed `module.`, and one compiled with `torch.compile` has
    `_orig_mod.`; these prefixes are removed.
    """
    if isinstance(checkpoint, nn.Module):
        checkpoint = checkpoint.state_dict()
    for _ in range(3):
        if _is_state_dict(checkpoint):
            break
        if not isinstance(checkpoint, Mapping):
            raise ValueError(f"expected a state dict or a checkpoint dict, "
                             f"got {type(checkpoint).__name__}")
        wrapper = next((w for w in ('state_dict', 'model')
                        if isinstance(checkpoint.get(w), Mapping)), None)
        if wrapper is None:
            keys = ', '.join(map(str, list(checkpoint)[:6]))
            raise ValueError(f"found no weights in the checkpoint: it is neither a "
                             f"state dict nor has 'state_dict' or 'model' in it "
                             f"(its keys: {keys})")
        checkpoint = checkpoint[wrapper]
    else:
        raise ValueError("found no weights in the checkpoint: too many nested "
                         "'state_dict'/'model' entries")

    state_dict = OrderedDict()
    for key, value in checkpoint.items():
        # mmpretrain may store the input normalization with the weights; it is
        # not part of the network.
        if key.startswith('data_preprocessor.'):
            continue
        while key.startswith(('module.', '_orig_mod.')):
            key = key.split('.', 1)[1]
        state_dict[key] = value
    return state_dict


# ## Converting between layouts

def convert_state_dict(state_dict, to: str = 'ours',
                       layout: Optional[str] = None) -> StateDict:
    """
    Rename the tensors of a ConvMixer state dict from its layout (detected unless
    `layout` is given) to the layout `to`: one of `'ours'`, `'official'`, `'timm'`,
    `'mmpretrain'`. The state dict may be wrapped as described in
    `unwrap_checkpoint`. Keys that are not part of a ConvMixer in the source
    layout are kept as they are, so that loading reports them.
    """
    if to not in LAYOUTS:
        raise ValueError(f"unknown layout {to!r}: choose one of {', '.join(LAYOUTS)}")
    state_dict = unwrap_checkpoint(state_dict)
    if layout is None:
        layout = detect_layout(state_dict)
    elif layout not in LAYOUTS:
        raise ValueError(f"unknown layout {layout!r}: "
                         f"choose one of {', '.join(LAYOUTS)}")
    # Both layouts list the same tensors in the same order, so pairing the two
    # lists of names gives the renaming.
    n_layers = _count_layers(state_dict, layout)
    rename = dict(zip(_key_names(layout, n_layers), _key_names(to, n_layers)))
    return OrderedDict((rename.get(k, k), v) for k, v in state_dict.items())


def to_timm_state_dict(model: nn.Module) -> StateDict:
    """
    Our model's weights in timm's layout: `timm.create_model(name).load_state_dict(...)`
    takes them strictly.
    """
    return convert_state_dict(model.state_dict(), to='timm', layout='ours')


# ## Reading files

def read_checkpoint(path: Union[str, os.PathLike]) -> StateDict:
    """
    Read the weights in a checkpoint file, in whatever layout it has: the file
    is opened safely by [`open_checkpoint`](download.html#open_checkpoint),
    and the state dict is found inside it by `unwrap_checkpoint`.
    """
    return unwrap_checkpoint(open_checkpoint(path))


def read_state_dict(source: Source) -> Tuple[StateDict, str]:
    """
    Turn any `source` into a state dict in *our* layout; also return the layout
    it came in.
    """
    if isinstance(source, (str, os.PathLike)):
        state_dict = read_checkpoint(source)
    else:
        state_dict = unwrap_checkpoint(source)
    layout = detect_layout(state_dict)
    return convert_state_dict(state_dict, to='ours', layout=layout), layout


# ## Readable mismatch reports
#
# A checkpoint of the wrong depth has hundreds of unexpected keys. Listing them
# all hides the one fact that matters, so keys that differ only in the layer
# number are folded into one line, such as `conv_mixer_layers.{20..31}.*`.

def _number_ranges(numbers: Sequence[int]) -> str:
    numbers = sorted(set(numbers))
    if len(numbers) == 1:
        return str(numbers[0])
    runs = []
    start = previous = numbers[0]
    for n in numbers[1:] + [None]:
        if n is not None and n == previous + 1:
            previous = n
            continue
        runs.append(str(start) if start == previous else f'{start}..{previous}')
        if n is not None:
            start = previous = n
    return '{' + ','.join(runs) + '}'


def _split_number(key: str) -> Tuple[str, Optional[int], str]:
    # `conv_mixer_layers.20.norm1.weight`
    # → (`conv_mixer_layers.`, 20, `.norm1.weight`)
    match = re.match(r'^(.*?(?:^|\.))(\d+)((?:\..*)?)$', key)
    if match is None:
        return key, None, ''
    return match.group(1), int(match.group(2)), match.group(3)


def summarize_keys(keys: Iterable[str], limit: int = 6) -> str:
    """
    Fold keys that differ only in the layer number, and the tensors of one
    module, and show at most `limit` entries.
    """
    # Layer numbers of each (prefix, rest):
    # `conv_mixer_layers.`, `.norm1.weight` → 20, 21, ...
    by_rest: Dict[Tuple[str, str], List[int]] = OrderedDict()
    order = lambda k: (_split_number(k)[0], _split_number(k)[1] or 0, k)  # noqa: E731
    for key in sorted(keys, key=order):
        prefix, number, rest = _split_number(key)
        if number is None:
            # Not in a layer: fold by module instead, `patch_emb.norm` + `.weight`
            parent, _, tensor = key.rpartition('.')
            by_rest.setdefault((parent, '.' + tensor), [])
        else:
            by_rest.setdefault((prefix, rest), []).append(number)
    # Entries that share the module and layer numbers are folded into one.
    by_module: Dict[str, List[str]] = OrderedDict()
    for (prefix, rest), numbers in by_rest.items():
        head = f'{prefix}{_number_ranges(numbers)}' if numbers else prefix
        by_module.setdefault(head, []).append(rest)
    entries = []
    for head, rests in by_module.items():
        if len(rests) > 2:
            each = ' each' if head.endswith('}') else ''
            entries.append(f'{head}.* ({len(rests)} tensors{each})')
        else:
            entries.extend(f'{head}{rest}' for rest in rests)
    if len(entries) > limit:
        entries = entries[:limit] + [f'... {len(entries) - limit} more']
    return ', '.join(entries)


def describe_state_dict(state_dict: Mapping[str, torch.Tensor]) -> str:
    """
    A ConvMixer's shape in the paper's terms, read from its weights in our layout,
    such as `ConvMixer-768/32, k7, p7, 3 input channels, 1000 classes`.
    """
    stem = state_dict.get('patch_emb.conv.weight')
    depth_wise = state_dict.get('conv_mixer_layers.0.depth_wise_conv.weight')
    head = state_dict.get('classification.linear.weight')
    n_layers = _count_layers(state_dict, 'ours')
    width = stem.shape[0] if stem is not None and stem.dim() == 4 else '?'
    kernel = (depth_wise.shape[-1] if depth_wise is not None and depth_wise.dim() == 4
              else '?')
    patch = stem.shape[-1] if stem is not None and stem.dim() == 4 else '?'
    channels = stem.shape[1] if stem is not None and stem.dim() == 4 else '?'
    classes = head.shape[0] if head is not None and head.dim() == 2 else 0
    return (f'ConvMixer-{width}/{n_layers}, k{kernel}, p{patch}, '
            f'{channels} input channels, {classes} classes')


Conflicts = List[Tuple[str, torch.Size, torch.Size]]


def _shape_conflicts(conflicts: Conflicts, limit: int = 5) -> str:
    # Tensors are grouped by the pair of shapes, which is what tells the story:
    # `(768,) in the checkpoint, (1536,) in the model` for a different width.
    groups: Dict[Tuple[Tuple[int, ...], Tuple[int, ...]], List[str]] = OrderedDict()
    for key, found, expected in conflicts:
        groups.setdefault((tuple(found), tuple(expected)), []).append(key)
    entries = [f'{found} in the checkpoint, {expected} in the model: '
               f'{summarize_keys(keys, limit=3)}'
               for (found, expected), keys in groups.items()]
    if len(entries) > limit:
        entries = entries[:limit] + [f'... {len(entries) - limit} more']
    return '; '.join(entries)


def _mismatch_message(layout: str, origin: str, checkpoint: StateDict,
                      model_state: StateDict, missing: List[str], unexpected: List[str],
                      conflicts: Conflicts, unknown: List[str]) -> str:
    found, expected = describe_state_dict(checkpoint), describe_state_dict(model_state)
    lines = [f"the checkpoint{origin} ({layout} layout) does not fit the model: "
             f"it holds {found}; the model is {expected}"]
    if unknown:
        lines.append(f"  keys that are not ConvMixer tensors in the {layout} layout "
                     f"({len(unknown)}): {summarize_keys(unknown)}")
    if missing:
        lines.append(f"  missing from the checkpoint ({len(missing)}): "
                     f"{summarize_keys(missing)}")
    if unexpected:
        lines.append(f"  unexpected in the checkpoint ({len(unexpected)}): "
                     f"{summarize_keys(unexpected)}")
    if conflicts:
        lines.append(f"  shape conflicts ({len(conflicts)}): "
                     f"{_shape_conflicts(conflicts)}")
    head_only = all(k.startswith('classification.') for k in
                    missing + unexpected + [k for k, _, _ in conflicts] + unknown)
    if head_only:
        lines.append("  only the classifier differs: "
                     "load_pretrained(model, source, load_head=False) "
                     "keeps the model's own classifier")
    elif found != expected:
        lines.append("  build the model that matches the checkpoint "
                     "(see its description above)")
    else:
        lines.append("  the model's shape matches but the checkpoint has other "
                     "tensors: is it a complete ConvMixer checkpoint?")
    return '\n'.join(lines)


# ## Loading

def _first_non_finite(state_dict: Mapping[str, torch.Tensor]) -> Optional[str]:
    """The name of the first floating-point tensor holding a NaN or an infinity."""
    for name, value in state_dict.items():
        if torch.is_tensor(value) and value.is_floating_point() \
                and not torch.isfinite(value).all():
            return name
    return None


def load_pretrained(model: nn.Module, source: Source,
                    load_head: bool = True, allow_non_finite: bool = False) -> nn.Module:
    """
    Load weights into `model`, strictly.

    * `source` is a checkpoint file (`.pth`, `.pth.tar`, `.safetensors`), a state
      dict, a wrapped checkpoint dict, or a model; in our, the official, timm's or
      mmpretrain's layout.
    * With `load_head=False` the checkpoint's classifier is left out and the
      model keeps its own; everything else must still match. This is how to start
      fine-tuning on a task with a different number of classes.
    * Weights holding NaN or infinity, what a diverged run saves, are refused
      with a `ValueError` naming the tensor, unless `allow_non_finite=True`.

    Returns the model. Raises `CheckpointMismatchError` if the weights do not fit.
    """
    origin = f' {source}' if isinstance(source, (str, os.PathLike)) else ''
    state_dict, layout = read_state_dict(source)
    model_state = model.state_dict()
    # Names the source layout has no rule for; they keep their original names.
    known = set(_key_names('ours', _count_layers(state_dict, 'ours')))
    unknown = [k for k in state_dict if k not in known]
    checkpoint = state_dict
    if not load_head:
        state_dict = OrderedDict((k, v) for k, v in state_dict.items()
                                 if not k.startswith('classification.'))
        model_state = OrderedDict((k, v) for k, v in model_state.items()
                                  if not k.startswith('classification.'))
    missing = [k for k in model_state if k not in state_dict]
    unexpected = [k for k in state_dict if k not in model_state and k not in unknown]
    conflicts = [(k, v.shape, model_state[k].shape) for k, v in state_dict.items()
                 if k in model_state and v.shape != model_state[k].shape]
    if missing or unexpected or conflicts or unknown:
        raise CheckpointMismatchError(_mismatch_message(
            layout, origin, checkpoint, model.state_dict(), missing, unexpected,
            conflicts, unknown))
    bad = None if allow_non_finite else _first_non_finite(state_dict)
    if bad is not None:
        where = f"{origin.strip()}: " if origin else ''
        raise ValueError(f"{where}tensor {bad} holds NaN or infinite values (a diverged "
                         f"run?); load_pretrained(..., allow_non_finite=True) loads them")
    model.load_state_dict(state_dict, strict=load_head)
    return model


__all__ = ['LAYOUTS', 'DOWNLOAD_TIMEOUT', 'CheckpointMismatchError',
           'WeightsUnavailableError', 'detect_layout', 'unwrap_checkpoint',
           'convert_state_dict', 'to_timm_state_dict', 'read_checkpoint',
           'read_state_dict', 'summarize_keys', 'describe_state_dict',
           'load_pretrained', 'cache_dir', 'cached_download']
