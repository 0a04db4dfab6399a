r"""
---
title: ConvMixer
nav_order: 1
summary: >
  ConvMixer from "Patches Are All You Need?", annotated in PyTorch: patch
  embeddings, depth-wise and point-wise mixing, and a classification head.
---

# ConvMixer

This is a PyTorch implementation of the paper
[Patches Are All You Need?](https://arxiv.org/abs/2201.09792)
by Asher Trockman and J. Zico Kolter. The authors' code is in
[locuslab/convmixer](https://github.com/locuslab/convmixer) (ImageNet) and
[locuslab/convmixer-cifar10](https://github.com/locuslab/convmixer-cifar10)
(CIFAR-10); Figure 2 of the [paper](https://arxiv.org/pdf/2201.09792) draws
the model this page builds. Paragraphs that start with **The paper:** say what
the paper says (§ gives its section); **Our note:** marks our own remarks.

**The paper (§2):** Vision Transformers cut an image into patches and then mix the
patches with self-attention. How much of their success comes from the patches
themselves? ConvMixer keeps the patches and replaces everything else with plain
convolutions:

1. **Patch embedding.** A convolution with kernel size and stride $p$ turns each
   $p \times p$ patch into $h$ channels: a grid of $\frac{H}{p} \times \frac{W}{p}$
   patch embeddings, which keeps its size through the whole network.
2. **$d$ ConvMixer layers.** Each mixes *spatial* locations with a depth-wise
   convolution of kernel size $k$ (each channel over a $k \times k$ neighbourhood of
   patches), with a residual connection; then *channels*, with a point-wise $1 \times 1$
   convolution. Each convolution is followed by an activation and a batch normalization.
3. **Classification head.** Global average pooling and a linear layer.

The four numbers that name a model, ConvMixer-$h$/$d$ with kernel $k$ and
patch $p$, are in the code

| paper | code | meaning |
|---|---|---|
| $h$ | `d_model` | channels of each patch embedding (the "hidden dimension") |
| $d$ | `n_layers` | number of ConvMixer layers (the depth) |
| $k$ | `kernel_size` | kernel size of the depth-wise convolution |
| $p$ | `patch_size` | side of a square patch |

The page follows the paper up to [`convmixer`](#convmixer); then come
[variations](#variations), [input checks](#input-checks) and [use as a
backbone](#using-it-as-a-backbone). It needs only `torch`: copy it alone.
"""

import contextlib
import copy
from typing import Callable, Dict, List, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

# An activation is a *factory* such as `nn.GELU` (each layer calls it for its
# own module) or a name in [`ACTIVATIONS`](#ACTIVATIONS)
ActivationFactory = Callable[[], nn.Module]


class PatchEmbeddings(nn.Module):
    r"""
    ## Patch embeddings

    **The paper:** each $p \times p$ patch gets an embedding of $h$ channels, by
    a convolution with kernel size and stride $p$, activation and normalization:

    $$z_0 = \mathrm{BN}\big(\sigma\{\mathrm{Conv}_{c_{in} \to h}(X,
      \text{stride}=p, \text{kernel\_size}=p)\}\big)$$

    **Our note:** a convolution with kernel size and stride $p$ touches each
    patch once, with one linear map for all: "cut, flatten, multiply" in one step.

    * `d_model` is $h$; `patch_size` is $p$
    * `in_channels`: 3 for RGB; `activation` is $\sigma$, a factory or a name
    * `bn_first` is a [variation](#ReorderedPatchEmbeddings), not the paper's
    """

    def __init__(self, d_model: int, patch_size: int, in_channels: int = 3,
                 activation: Union[str, ActivationFactory] = nn.GELU,
                 bn_first: bool = False):
        super().__init__()
        _check_sizes(1, d_model=d_model, patch_size=patch_size,
                     in_channels=in_channels)
        self.d_model, self.patch_size = d_model, patch_size
        self.in_channels = in_channels
        # No padding, so there is one output position per whole patch
        self.conv = nn.Conv2d(in_channels, d_model, kernel_size=patch_size,
                              stride=patch_size)
        self.act = get_activation(activation)()
        self.norm = nn.BatchNorm2d(d_model)
        self.bn_first = bn_first
        if bn_first:
            _use_reordered_class(self, ReorderedPatchEmbeddings)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` is a batch of images, `[batch_size, in_channels, height, width]`"""
        # A wrong input stops here, with a message that says what is wrong
        _check_images(x, self.in_channels, self.patch_size)
        # $z_0$, of shape `[batch_size, d_model, height // p, width // p]`;
        # pixels past the last whole patch are dropped
        x = self.norm(self.act(self.conv(x)))
        return x


class DepthWiseConv2d(nn.Conv2d):
    r"""
    ## Depth-wise convolution with "same" padding

    **The paper:** spatial mixing is a depth-wise convolution, each channel with
    its own $k \times k$ kernel: it mixes neighbouring patches, never channels.

    **Our note:** the residual connection needs the input's size: $k - 1$
    padding per axis, $\lfloor k/2 \rfloor$ each side for odd $k$; for even $k$,
    $\frac{k}{2} - 1$ before and $\frac{k}{2}$ after, as `padding='same'` would
    (itself a separate operator that older ONNX exporters don't know).
    """

    def __init__(self, d_model: int, kernel_size: int):
        odd = kernel_size % 2 == 1
        super().__init__(d_model, d_model, kernel_size=kernel_size, groups=d_model,
                         padding=kernel_size // 2 if odd else 0)
        # `(left, right, top, bottom)`, for even kernels only
        before, after = (kernel_size - 1) // 2, kernel_size // 2
        self.even_padding = None if odd else (before, after, before, after)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.even_padding is not None:
            x = F.pad(x, self.even_padding)
        return super().forward(x)


class ConvMixerLayer(nn.Module):
    r"""
    ## ConvMixer layer

    One of the $d$ layers. Its input and output are grids of patch embeddings,
    `[batch_size, d_model, height // p, width // p]`.

    **The paper:** the depth-wise convolution mixes each channel over a
    $k \times k$ neighbourhood of patches, with a residual connection around it;
    then a point-wise ($1 \times 1$) convolution, without one, mixes the
    channels of each patch:

    $$z'_l = \mathrm{BN}\big(\sigma\{\mathrm{ConvDepthwise}(z_{l-1})\}\big)
      + z_{l-1}$$

    $$z_l = \mathrm{BN}\big(\sigma\{\mathrm{ConvPointwise}(z'_l)\}\big)$$

    * `d_model` is $h$; `kernel_size` is $k$ (any $k \ge 1$, even ones too)
    * `activation` is $\sigma$, a factory or a name
    * `pre_act`, `bn_first` are [variations](#ReorderedConvMixerLayer), not the paper's
    """

    def __init__(self, d_model: int, kernel_size: int,
                 activation: Union[str, ActivationFactory] = nn.GELU,
                 pre_act: bool = False, bn_first: bool = False):
        super().__init__()
        _check_sizes(1, d_model=d_model, kernel_size=kernel_size)
        activation = get_activation(activation)
        # Spatial mixing
        self.depth_wise_conv = DepthWiseConv2d(d_model, kernel_size)
        self.act1 = activation()
        self.norm1 = nn.BatchNorm2d(d_model)
        # Channel mixing: one linear map of $h$ channels, the same for every patch
        self.point_wise_conv = nn.Conv2d(d_model, d_model, kernel_size=1)
        self.act2 = activation()
        self.norm2 = nn.BatchNorm2d(d_model)
        self.pre_act, self.bn_first = pre_act, bn_first
        if pre_act or bn_first:
            _use_reordered_class(self, ReorderedConvMixerLayer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # $z'_l$: spatial mixing, with the residual connection
        x = x + self.norm1(self.act1(self.depth_wise_conv(x)))
        # $z_l$: channel mixing
        x = self.norm2(self.act2(self.point_wise_conv(x)))
        return x


class ClassificationHead(nn.Module):
    """
    ## Classification head

    **The paper:** global average pooling over the patches gives one vector of
    $h$ channels per image; a linear layer turns it into `n_classes` logits.
    **Our note:** `n_classes = 0` gives no linear layer, and the pooled features,
    for a [backbone](#using-it-as-a-backbone).
    """

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
        _check_sizes(1, d_model=d_model)
        _check_sizes(0, n_classes=n_classes)
        self.d_model, self.n_classes = d_model, n_classes
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(d_model, n_classes) if n_classes > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Average over the patches, `[batch_size, d_model]`
        x = self.pool(x).flatten(1)
        # The logits, `[batch_size, n_classes]`
        x = self.linear(x)
        return x


def clone_module_list(module: nn.Module, n: int) -> nn.ModuleList:
    """
    ## Stack $n$ fresh copies of a layer

    **Our note:** the model copies one example layer $d$ times. A plain deep copy
    would start every layer from *the same* weights; the official code makes each
    layer anew. So every copy's sub-modules get `reset_parameters()`.
    """
    _check_sizes(1, n=n)
    layers = []
    for _ in range(n):
        layer = copy.deepcopy(module)
        for sub_module in layer.modules():
            if hasattr(sub_module, 'reset_parameters'):
                sub_module.reset_parameters()
        layers.append(layer)
    return nn.ModuleList(layers)


class ConvMixer(nn.Module):
    """
    ## ConvMixer

    The patch embeddings, $d$ ConvMixer layers and the head, put together; its
    methods for [use as a backbone](#using-it-as-a-backbone) come later.

    * `conv_mixer_layer` is an example [layer](#ConvMixerLayer), copied
      `n_layers` ($d$) times by [`clone_module_list`](#clone_module_list)
    * `patch_emb` is the [patch embeddings](#PatchEmbeddings), `classification`
      the [head](#ClassificationHead)
    """

    def __init__(self, conv_mixer_layer: ConvMixerLayer, n_layers: int,
                 patch_emb: PatchEmbeddings, classification: ClassificationHead):
        super().__init__()
        _check_sizes(1, n_layers=n_layers)
        self.patch_emb = patch_emb
        self.conv_mixer_layers = clone_module_list(conv_mixer_layer, n_layers)
        self.classification = classification
        # Off by default; see [`set_grad_checkpointing`](#set_grad_checkpointing)
        self.grad_checkpointing = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` is a batch of images, `[batch_size, in_channels, height, width]`"""
        # Patch embeddings, `[batch_size, d_model, height // p, width // p]`
        x = self.patch_emb(x)
        # The $d$ layers keep that shape. `self._run_layer(layer, x)` is
        # `layer(x)`, [checkpointed](#_run_layer) when that is on.
        for layer in self.conv_mixer_layers:
            x = self._run_layer(layer, x)
        # Logits, `[batch_size, n_classes]`
        x = self.classification(x)
        return x


def convmixer(d_model: int, n_layers: int, kernel_size: int = 9, patch_size: int = 7,
              n_classes: int = 1000, in_channels: int = 3,
              activation: Union[str, ActivationFactory] = nn.GELU,
              pre_act: bool = False, bn_first: bool = False) -> ConvMixer:
    """
    ## Build a ConvMixer-$h$/$d$

    Makes the parts and puts them together: `convmixer(256, 8, kernel_size=5,
    patch_size=2, n_classes=10)` is the paper's CIFAR-10 model, ConvMixer-256/8.
    `activation`, `pre_act` and `bn_first` give the [variations](#variations).
    """
    activation = get_activation(activation)
    return ConvMixer(
        ConvMixerLayer(d_model, kernel_size, activation=activation,
                       pre_act=pre_act, bn_first=bn_first),
        n_layers,
        PatchEmbeddings(d_model, patch_size, in_channels, activation=activation,
                        bn_first=bn_first),
        ClassificationHead(d_model, n_classes),
    )


# ## What the layers learn
#
# **The paper** pictures trained weights: the patch embeddings, and depth-wise
# kernels from progressively deeper layers. **Our note:** the experiments'
# [`filters.png`](../experiments/filters.html) draws the same for a model of ours.
# ## Variations
#
# Everything above is the paper's model. What follows is ours: activations by name, and
# other orders of convolution, activation and normalization. None has weights, so every
# variation has the paper's parameters and state-dict keys.

# Activations by name. **The paper (§2):** uses GELU. **Our note:** the
# released ConvMixer-768/32 was trained with ReLU, so needs `activation='relu'`.
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


def conv_act_norm(x: torch.Tensor, conv: nn.Module, act: nn.Module, norm: nn.Module,
                  pre_act: bool = False, bn_first: bool = False) -> torch.Tensor:
    r"""
    ### Convolution, activation and normalization, in any order

    The paper's order is $\mathrm{BN}(\sigma(\mathrm{Conv}(x)))$. `bn_first`
    gives $\sigma(\mathrm{BN}(\mathrm{Conv}(x)))$, as most CNNs; `pre_act`
    gives $\mathrm{BN}(\mathrm{Conv}(\sigma(x)))$; both give ResNet v2's
    $\mathrm{Conv}(\sigma(\mathrm{BN}(x)))$. The parts built with these options
    become the subclasses below, so the paper's `forward` stays the paper's.
    """
    if pre_act:
        return conv(act(norm(x))) if bn_first else norm(conv(act(x)))
    return act(norm(conv(x))) if bn_first else norm(act(conv(x)))


class ReorderedPatchEmbeddings(PatchEmbeddings):
    """`bn_first` only: an activation before this convolution would see pixels."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.in_channels, self.patch_size)
        return conv_act_norm(x, self.conv, self.act, self.norm, bn_first=True)


class ReorderedConvMixerLayer(ConvMixerLayer):
    """The same modules and residual connection, in `conv_act_norm`'s order."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + conv_act_norm(x, self.depth_wise_conv, self.act1, self.norm1,
                              self.pre_act, self.bn_first)
        return conv_act_norm(x, self.point_wise_conv, self.act2, self.norm2,
                             self.pre_act, self.bn_first)


def _use_reordered_class(module: nn.Module, reordered: type):
    if type(module) is not reordered.__base__:
        raise TypeError(f"{type(module).__name__} does not support pre_act or "
                        f"bn_first; subclass {reordered.__name__} to reorder it")
    module.__class__ = reordered


# ## Input checks
#
# A wrong size fails where it is given, with a message that names it.


def _check_sizes(minimum: int, **sizes: int):
    """Each of `sizes` must be an integer (not a `bool`) of at least `minimum`."""
    for name, value in sizes.items():
        if not _is_integer(value) or value < minimum:
            kind = 'positive' if minimum == 1 else 'non-negative'
            raise ValueError(f"{name} must be a {kind} integer, got {value!r}")


def _is_integer(value) -> bool:
    # `True` is an `int` to Python, but never a size
    return isinstance(value, int) and not isinstance(value, bool)


def _check_images(x: torch.Tensor, in_channels: int, patch_size: int):
    """`x` must be `[batch_size, in_channels, height, width]`, at least a patch."""
    shape = tuple(x.shape)
    if x.dim() != 4:
        raise ValueError(f"expected images of shape [batch_size, channels, height, "
                         f"width], got a tensor with {x.dim()} dimensions {shape}")
    if shape[1] != in_channels:
        raise ValueError(f"expected {in_channels} input channels, got {shape[1]} "
                         f"(input shape {shape})")
    if shape[2] < patch_size or shape[3] < patch_size:
        raise ValueError(f"image of {shape[2]}x{shape[3]} pixels is smaller than "
                         f"one {patch_size}x{patch_size} patch")


# ## Using it as a backbone
#
# What libraries such as `timm` expect of a backbone. These are methods of
# `ConvMixer`, written apart from the paper's model and added to the class by
# [`_method_of`](#_method_of): one class, for pickling, compiling and export.


def _method_of(cls: type):
    """A decorator that adds the function to `cls` as a method of that name."""
    def add(function):
        function.__qualname__ = f'{cls.__name__}.{function.__name__}'
        setattr(cls, function.__name__, function)
        return function
    return add


@_method_of(ConvMixer)
def forward_features(self: ConvMixer, x: torch.Tensor) -> torch.Tensor:
    """`forward` without the head, `[batch_size, d_model, height // p, width // p]`"""
    x = self.patch_emb(x)
    for layer in self.conv_mixer_layers:
        x = self._run_layer(layer, x)
    return x


@_method_of(ConvMixer)
def forward_head(self: ConvMixer, x: torch.Tensor,
                 pre_logits: bool = False) -> torch.Tensor:
    """The head on `forward_features`; `pre_logits` stops after the pooling."""
    if pre_logits:
        return self.classification.pool(x).flatten(1)
    return self.classification(x)


@_method_of(ConvMixer)
def forward_intermediates(self: ConvMixer, x: torch.Tensor,
                          indices: Sequence[int]) -> List[torch.Tensor]:
    """
    ### Feature maps of chosen layers

    The outputs of the layers at `indices` (from 0; negative from the end), in
    layer order, for detection and segmentation. Later layers are not run.
    """
    n = len(self.conv_mixer_layers)
    chosen = set()
    for i in indices:
        if not _is_integer(i) or not -n <= i < n:
            raise ValueError(f"layer index {i!r} is out of range for {n} layers")
        chosen.add(i % n)
    if not chosen:
        raise ValueError("indices must name at least one layer")
    outputs = []
    x = self.patch_emb(x)
    for i, layer in enumerate(self.conv_mixer_layers[:max(chosen) + 1]):
        x = self._run_layer(layer, x)
        if i in chosen:
            outputs.append(x)
    return outputs


@_method_of(ConvMixer)
def reset_classifier(self: ConvMixer, n_classes: int):
    """A new head for `n_classes` (0: features only), to fine-tune on a new task"""
    head = ClassificationHead(self.classification.d_model, n_classes)
    # On the model's device and dtype
    self.classification = head.to(self.patch_emb.conv.weight)


@_method_of(ConvMixer)
def set_grad_checkpointing(self: ConvMixer, enable: bool = True):
    """
    ### Gradient checkpointing

    Recompute each layer's activations in the backward pass instead of keeping
    them: memory for one layer's activations instead of $d$, for about one more
    forward pass. Gradients and running statistics stay as without it.
    """
    self.grad_checkpointing = enable


@_method_of(ConvMixer)
def _run_layer(self: ConvMixer, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """
    `layer(x)`, checkpointed when that is on and a backward pass will follow.

    The recomputation normalizes with the batch's statistics, as the first run
    did, but would update the running ones again, so it runs inside
    [`_keep_batch_norm_statistics`](#_keep_batch_norm_statistics).
    `torch.compile` updates them once in its graph and takes no such context.
    """
    if not (self.grad_checkpointing and self.training and torch.is_grad_enabled()):
        return layer(x)
    if torch.compiler.is_compiling():
        return torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
    # `checkpoint`'s two contexts: for the first run, and for the recomputation
    return torch.utils.checkpoint.checkpoint(
        layer, x, use_reentrant=False, context_fn=lambda: (
            contextlib.nullcontext(), _keep_batch_norm_statistics(layer)))


@contextlib.contextmanager
def _keep_batch_norm_statistics(module: nn.Module):
    """Put back `module`'s buffers: a layer's are its batch norms' statistics."""
    buffers = list(module.buffers())
    saved = [buffer.clone() for buffer in buffers]
    try:
        yield
    finally:
        with torch.no_grad():
            for buffer, value in zip(buffers, saved):
                buffer.copy_(value)
