"""
---
title: Using it as a backbone
nav_order: 5
summary: >
  timm's model contract on the paper's model: features, head, intermediate
  layers, a new classifier, gradient checkpointing, TorchScript and torch.fx.
---

# Using it as a backbone

Detection, segmentation and fine-tuning code asks a backbone for more than its
logits, and timm's models answer in one way that many tools rely on.
`ConvMixerBackbone` is the [paper's `ConvMixer`](model.md#ConvMixer) with that
contract: the attributes `num_classes`, `num_features`, `head_hidden_size`,
`pretrained_cfg`; the methods `forward_features`, `forward_head`,
`forward_intermediates`, `prune_intermediate_layers`, `get_classifier`,
`reset_classifier` and `set_grad_checkpointing`; and a `forward` that
`torch.jit.script` and `torch.fx` can compile or trace. It adds no module, so its
parameters and state-dict keys are the paper model's, and
[pretrained weights](pretrained.md) load into it. [`convmixer()`](factory.md)
and [`create_model()`](models.md) return one.

Its `forward` is `forward_head(forward_features(x))`: the paper's
[`ConvMixer.forward`](model.md#ConvMixer.forward), split where the head starts,
and checked first: a wrong image fails with one [clear line](checks.md).
"""

import contextlib
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.fx
import torch.utils.checkpoint
from torch import nn

from labml_convmixer.checks import check_images, check_sizes, is_integer
from labml_convmixer.model import ClassificationHead, ConvMixer

# `torch.fx` records the check as one call in a traced graph instead of tracing
# into it, so that a traced model checks its images too
torch.fx.wrap('check_images')


class ConvMixerBackbone(ConvMixer):
    """
    ## A ConvMixer with timm's contract

    Built like [`ConvMixer`](model.md#ConvMixer), from an example layer, the
    number of layers, the patch embeddings and the head. `pretrained_cfg`
    describes the images it expects; [`convmixer()`](factory.md) and
    [`create_model()`](models.md) set it.
    """

    def __init__(self, conv_mixer_layer: nn.Module, n_layers: int,
                 patch_emb: nn.Module, classification: ClassificationHead,
                 pretrained_cfg: Optional[Dict[str, object]] = None):
        super().__init__(conv_mixer_layer, n_layers, patch_emb, classification)
        # timm's names: the classes, and the width $h$ of the features and of the
        # pooled vector the classifier reads (the same here: no pre-logits layer)
        self.num_classes = classification.n_classes
        self.num_features = self.head_hidden_size = classification.d_model
        self.pretrained_cfg = self.default_cfg = dict(pretrained_cfg or {})
        # Off by default; see [`set_grad_checkpointing`](#ConvMixerBackbone.set_grad_checkpointing)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's model: logits, `[batch_size, n_classes]`"""
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` without the head, `[batch_size, d_model, height // p, width // p]`"""
        x = self.embed(x)
        for layer in self.conv_mixer_layers:
            # TorchScript leaves out the checkpointing; a scripted model runs
            # each layer plainly
            if self.grad_checkpointing and not torch.jit.is_scripting():
                x = checkpointed(layer, x)
            else:
                x = layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on `forward_features`; `pre_logits` stops after the pooling."""
        if pre_logits:
            return self.classification.pool(x).flatten(1)
        return self.classification(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Check the images, then the patch embeddings $z_0$."""
        # TorchScript cannot compile the check, so a scripted model leaves it out
        # and a wrong image fails inside the first convolution
        if not torch.jit.is_scripting():
            check_images(x, self.patch_emb.in_channels, self.patch_emb.patch_size)
        return self.patch_emb(x)

    @torch.jit.ignore
    def forward_intermediates(
            self, x: torch.Tensor, indices: Union[None, int, Sequence[int]] = None,
            norm: bool = False, stop_early: bool = False, output_fmt: str = 'NCHW',
            intermediates_only: bool = False,
    ) -> Union[List[torch.Tensor], Tuple[torch.Tensor, List[torch.Tensor]]]:
        """
        ### Feature maps of chosen layers

        For detection and segmentation, with timm's arguments:

        * `indices`: the layers whose outputs to return, from 0 (negative count from
          the end); an integer $n$ takes the last $n$; `None` takes all
        * `stop_early` runs no layer after the last one taken; the final
          features returned are then that layer's output
        * `intermediates_only` returns the list alone, without the final features
        * `norm` would normalize the maps: ConvMixer has no final norm, so it
          changes nothing; `output_fmt` can only be `'NCHW'`

        Every map is `[batch_size, d_model, height // p, width // p]`: ConvMixer
        never downsamples after the patch embedding.
        """
        if output_fmt != 'NCHW':
            raise ValueError(f"output_fmt must be 'NCHW' (ConvMixer's feature maps), "
                             f"got {output_fmt!r}")
        taken = self.layer_indices(indices)
        last = max(taken) if stop_early else len(self.conv_mixer_layers) - 1
        intermediates = []
        x = self.embed(x)
        for i, layer in enumerate(self.conv_mixer_layers[:last + 1]):
            x = checkpointed(layer, x) if self.grad_checkpointing else layer(x)
            if i in taken:
                intermediates.append(x)
        return intermediates if intermediates_only else (x, intermediates)

    @torch.jit.ignore
    def prune_intermediate_layers(self, indices: Union[int, Sequence[int]] = 1,
                                  prune_norm: bool = False,
                                  prune_head: bool = True) -> List[int]:
        """
        Drop the layers after the last of `indices` (as in `forward_intermediates`)
        and, with `prune_head`, the classifier; `prune_norm` changes nothing, as
        there is no final norm. Returns the indices, counted from 0.
        """
        taken = self.layer_indices(indices)
        self.conv_mixer_layers = self.conv_mixer_layers[:max(taken) + 1]
        if prune_head:
            self.reset_classifier(0)
        return taken

    @torch.jit.ignore
    def layer_indices(self, indices: Union[None, int, Sequence[int]]) -> List[int]:
        """`indices` as in timm, checked, as a sorted list counted from 0"""
        n = len(self.conv_mixer_layers)
        if indices is None:
            indices = n
        if is_integer(indices):
            if not 1 <= indices <= n:
                raise ValueError(f"cannot take the last {indices} layers of {n}")
            return list(range(n - indices, n))
        taken = set()
        for i in indices:
            if not is_integer(i) or not -n <= i < n:
                raise ValueError(f"layer index {i!r} is out of range for {n} layers")
            taken.add(i % n)
        if not taken:
            raise ValueError("indices must name at least one layer")
        return sorted(taken)

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        """The linear layer of the head (`nn.Identity` without classes), as in timm"""
        return self.classification.linear

    @torch.jit.ignore
    def reset_classifier(self, n_classes: int, global_pool: Optional[str] = None):
        """
        A new head for `n_classes` (0: features only), to fine-tune on a new task.
        `global_pool` is timm's argument: the head always averages, so only
        `None` or `'avg'` are accepted.
        """
        check_sizes(0, n_classes=n_classes)
        if global_pool not in (None, 'avg'):
            raise ValueError(f"global_pool must be 'avg' (the paper's average "
                             f"pooling), got {global_pool!r}")
        head = ClassificationHead(self.classification.d_model, n_classes)
        # On the model's device and dtype, in its mode
        self.classification = head.to(self.patch_emb.conv.weight).train(self.training)
        self.num_classes = n_classes

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True):
        """
        ### Gradient checkpointing

        Recompute each layer's activations in the backward pass instead of keeping
        them: memory for one layer's activations instead of $d$, for about one more
        forward pass. Gradients and running statistics stay as without it.
        """
        self.grad_checkpointing = enable


def checkpointed(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """
    ### `layer(x)`, recomputed in the backward pass

    Only in training and when a backward pass will follow; otherwise `layer(x)`.
    The recomputation normalizes with the batch's statistics, as the first run
    did, but would update the running ones again, so it runs inside
    [`keep_batch_norm_statistics`](#keep_batch_norm_statistics).
    `torch.compile` updates them once in its graph and takes no such context.
    """
    if not (layer.training and torch.is_grad_enabled()):
        return layer(x)
    if torch.compiler.is_compiling():
        return torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
    # `checkpoint`'s two contexts: for the first run, and for the recomputation
    return torch.utils.checkpoint.checkpoint(
        layer, x, use_reentrant=False, context_fn=lambda: (
            contextlib.nullcontext(), keep_batch_norm_statistics(layer)))


@contextlib.contextmanager
def keep_batch_norm_statistics(module: nn.Module):
    """Put back `module`'s buffers: a layer's are its batch norms' statistics."""
    buffers = list(module.buffers())
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)
