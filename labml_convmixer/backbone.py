"""
---
title: Using it as a backbone
nav_order: 5
summary: >
  The methods that libraries such as timm expect of a backbone: features,
  head, intermediate layers, a new classifier, gradient checkpointing.
---

# Using it as a backbone

Detection, segmentation and fine-tuning code asks a backbone for more than its
logits. `ConvMixerBackbone` is the [paper's `ConvMixer`](model.md#ConvMixer)
with the methods timm's models have: `forward_features`, `forward_head`,
`forward_intermediates`, `reset_classifier` and `set_grad_checkpointing`. It
adds no module, so its parameters and state-dict keys are the paper model's,
and [pretrained weights](pretrained.md) load into it. [`convmixer()`](factory.md)
and [`create_model()`](models.md) return one.

Its `forward` is `forward_head(forward_features(x))`: the paper's
[`ConvMixer.forward`](model.md#ConvMixer.forward), split where the head starts,
and checked first: a wrong image fails with one [clear line](checks.md).
"""

import contextlib
from typing import List, Sequence

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
    ## A ConvMixer with the backbone methods

    Built like [`ConvMixer`](model.md#ConvMixer), from an example layer, the
    number of layers, the patch embeddings and the head.
    """

    def __init__(self, conv_mixer_layer: nn.Module, n_layers: int,
                 patch_emb: nn.Module, classification: ClassificationHead):
        super().__init__(conv_mixer_layer, n_layers, patch_emb, classification)
        # Off by default; see [`set_grad_checkpointing`](#ConvMixerBackbone.set_grad_checkpointing)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The paper's model: logits, `[batch_size, n_classes]`"""
        return self.forward_head(self.forward_features(x))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """`forward` without the head, `[batch_size, d_model, height // p, width // p]`"""
        x = self.embed(x)
        for layer in self.conv_mixer_layers:
            x = self.run_layer(layer, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The head on `forward_features`; `pre_logits` stops after the pooling."""
        if pre_logits:
            return self.classification.pool(x).flatten(1)
        return self.classification(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Check the images, then the patch embeddings $z_0$."""
        # TorchScript cannot compile the check; a scripted model leaves it out
        if not torch.jit.is_scripting():
            check_images(x, self.patch_emb.in_channels, self.patch_emb.patch_size)
        return self.patch_emb(x)

    def forward_intermediates(self, x: torch.Tensor,
                              indices: Sequence[int]) -> List[torch.Tensor]:
        """
        ### Feature maps of chosen layers

        The outputs of the layers at `indices` (from 0; negative from the end), in
        layer order, for detection and segmentation. Later layers are not run.
        """
        n = len(self.conv_mixer_layers)
        chosen = set()
        for i in indices:
            if not is_integer(i) or not -n <= i < n:
                raise ValueError(f"layer index {i!r} is out of range for {n} layers")
            chosen.add(i % n)
        if not chosen:
            raise ValueError("indices must name at least one layer")
        outputs = []
        x = self.embed(x)
        for i, layer in enumerate(self.conv_mixer_layers[:max(chosen) + 1]):
            x = self.run_layer(layer, x)
            if i in chosen:
                outputs.append(x)
        return outputs

    def reset_classifier(self, n_classes: int):
        """A new head for `n_classes` (0: features only), to fine-tune on a new task"""
        check_sizes(0, n_classes=n_classes)
        head = ClassificationHead(self.classification.d_model, n_classes)
        # On the model's device and dtype
        self.classification = head.to(self.patch_emb.conv.weight)

    def set_grad_checkpointing(self, enable: bool = True):
        """
        ### Gradient checkpointing

        Recompute each layer's activations in the backward pass instead of keeping
        them: memory for one layer's activations instead of $d$, for about one more
        forward pass. Gradients and running statistics stay as without it.
        """
        self.grad_checkpointing = enable

    def run_layer(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        """
        `layer(x)`, checkpointed when that is on and a backward pass will follow.

        The recomputation normalizes with the batch's statistics, as the first run
        did, but would update the running ones again, so it runs inside
        [`keep_batch_norm_statistics`](#keep_batch_norm_statistics).
        `torch.compile` updates them once in its graph and takes no such context.
        """
        if (torch.jit.is_scripting() or not self.grad_checkpointing
                or not self.training or not torch.is_grad_enabled()):
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
