r"""
---
title: ConvMixer
summary: >
  An annotated PyTorch implementation of ConvMixer from the paper
  "Patches Are All You Need?": patch embeddings, depth-wise and point-wise
  mixing, and a classification head.
---

# ConvMixer

This is a PyTorch implementation of the paper
[Patches Are All You Need?](https://arxiv.org/abs/2201.09792)
by Asher Trockman and J. Zico Kolter.

Vision Transformers cut an image into patches and then mix information between
the patches with self-attention. The paper asks how much of their success comes
from the patches themselves, and answers with a model that keeps the patches but
replaces everything else with plain convolutions:

1. **Patch embedding.** A convolution with kernel size and stride $p$ turns each
   $p \times p$ patch into a vector of $h$ channels. The image becomes a grid of
   $\frac{H}{p} \times \frac{W}{p}$ patch embeddings, and it keeps that size and
   resolution through the whole network.
2. **$d$ ConvMixer layers.** Each one first mixes *spatial* locations with a
   depth-wise convolution of kernel size $k$ (each channel looks at its
   $k \times k$ neighbourhood of patches, channels do not talk to each other),
   with a residual connection around it; then it mixes *channels* with a
   point-wise $1 \times 1$ convolution (each patch looks at all its channels,
   patches do not talk to each other). Every convolution is followed by an
   activation and a batch normalization.
3. **Classification head.** Global average pooling over the patches and a
   linear layer.

The four numbers that name a model, ConvMixer-$h$/$d$ with kernel $k$ and
patch $p$, appear in the code as

| paper | code | meaning |
|---|---|---|
| $h$ | `d_model` | channels of each patch embedding (the "hidden dimension") |
| $d$ | `n_layers` | number of ConvMixer layers (the depth) |
| $k$ | `kernel_size` | kernel size of the depth-wise convolution |
| $p$ | `patch_size` | side of a square patch |

Compared with the MLP-Mixer, each mixing step is a single layer rather than a
two-layer MLP, and spatial mixing is local (a $k \times k$ neighbourhood) rather
than global. Compared with a ViT there is no attention, no positional embedding
and no class token: the depth-wise convolution knows where things are.

This file depends only on `torch` and the Python standard library, so you can
copy it alone into your own project.
"""

import copy
from typing import Callable, Dict, List, Sequence, Union

import torch
import torch.nn.functional as F
import torch.utils.checkpoint
from torch import nn

# An activation is given as a *factory*: a class or function that returns a new
# `nn.Module` each time it is called, such as `nn.GELU` or `nn.ReLU`.
# Each layer calls it to get its own activation module.
ActivationFactory = Callable[[], nn.Module]

# The activations that can be named by a string, for configuration files and the
# command line. The paper uses GELU; the released ConvMixer-768/32 uses ReLU.
ACTIVATIONS: Dict[str, ActivationFactory] = {
    'gelu': nn.GELU,
    'relu': nn.ReLU,
    'mish': nn.Mish,
    'silu': nn.SiLU,
}


def get_activation(activation: Union[str, ActivationFactory]) -> ActivationFactory:
    """
    Turn an activation name (`'gelu'`, `'relu'`, `'mish'`, `'silu'`) into its factory;
    a factory passes through unchanged.
    """
    if isinstance(activation, str):
        if activation.lower() not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}: "
                             f"choose one of {', '.join(sorted(ACTIVATIONS))}")
        return ACTIVATIONS[activation.lower()]
    if not callable(activation):
        raise ValueError(f"activation must be a name or a callable that returns an nn.Module, "
                         f"got {activation!r}")
    return activation


def _check_positive(**sizes: int):
    # Constructor arguments are checked up front, so that a wrong size fails here
    # with its name rather than later inside a convolution.
    for name, value in sizes.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def conv_act_norm(x: torch.Tensor, conv: nn.Module, act: nn.Module, norm: nn.Module,
                  pre_act: bool = False, bn_first: bool = False) -> torch.Tensor:
    r"""
    ## Convolution, activation and normalization

    The paper applies, everywhere, a convolution, then the activation, then batch
    normalization: $\mathrm{BN}(\sigma(\mathrm{Conv}(x)))$.
    Two common variations are worth trying, and both only reorder the same three
    modules, so they have the same parameters and load the same checkpoints:

    * `bn_first` normalizes before the activation,
      $\sigma(\mathrm{BN}(\mathrm{Conv}(x)))$, the order of most CNNs;
    * `pre_act` moves the activation in front of the convolution,
      $\mathrm{BN}(\mathrm{Conv}(\sigma(x)))$; together with `bn_first` it is the
      pre-activation order of ResNet v2, $\mathrm{Conv}(\sigma(\mathrm{BN}(x)))$.
    """
    if pre_act:
        if bn_first:
            return conv(act(norm(x)))
        return norm(conv(act(x)))
    if bn_first:
        return act(norm(conv(x)))
    return norm(act(conv(x)))


class PatchEmbeddings(nn.Module):
    r"""
    ## Patch embeddings

    This splits the image into patches of size $p \times p$ and gives an
    embedding of $h$ channels to each patch.

    A convolution whose kernel size and stride both equal the patch size $p$
    touches each patch exactly once and applies the same linear map to all of
    them: it *is* "cut into patches, flatten, multiply by a matrix", done in one
    step. An activation and batch normalization follow, as after every
    convolution in ConvMixer.

    * `d_model` is $h$, the number of channels of a patch embedding
    * `patch_size` is $p$
    * `in_channels` is the number of channels of the input image (3 for RGB)
    * `activation` is a factory for the activation module (GELU in the paper)
    * `bn_first` applies batch normalization before the activation
    """

    def __init__(self, d_model: int, patch_size: int, in_channels: int = 3,
                 activation: Union[str, ActivationFactory] = nn.GELU, bn_first: bool = False):
        super().__init__()
        _check_positive(d_model=d_model, patch_size=patch_size, in_channels=in_channels)
        self.d_model = d_model
        self.patch_size = patch_size
        self.in_channels = in_channels
        self.bn_first = bn_first
        # The patch "cutting" convolution: kernel size and stride $p$, no padding,
        # so the output has one position per patch.
        self.conv = nn.Conv2d(in_channels, d_model, kernel_size=patch_size, stride=patch_size)
        self.act = get_activation(activation)()
        self.norm = nn.BatchNorm2d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        `x` is a batch of images of shape `[batch_size, in_channels, height, width]`.
        """
        # Catch the common mistakes with a message that names them,
        # instead of an error from deep inside the convolution.
        if x.dim() != 4:
            raise ValueError(f"expected images of shape [batch_size, channels, height, width], "
                             f"got a tensor with {x.dim()} dimensions {tuple(x.shape)}")
        if x.shape[1] != self.in_channels:
            raise ValueError(f"expected {self.in_channels} input channels, got {x.shape[1]} "
                             f"(input shape {tuple(x.shape)})")
        if x.shape[2] < self.patch_size or x.shape[3] < self.patch_size:
            raise ValueError(f"image of {x.shape[2]}x{x.shape[3]} pixels is smaller than "
                             f"one {self.patch_size}x{self.patch_size} patch")
        # The result has shape `[batch_size, d_model, height // p, width // p]`;
        # pixels past the last whole patch are dropped.
        return conv_act_norm(x, self.conv, self.act, self.norm, bn_first=self.bn_first)


class DepthWiseConv2d(nn.Conv2d):
    r"""
    ## Depth-wise convolution with "same" padding

    A depth-wise convolution convolves each channel with its own $k \times k$
    kernel: it is a convolution with as many groups as channels. It mixes
    information between neighbouring patches, but never between channels.

    The output must keep the size of the input, for the residual connection.
    That needs $k - 1$ padding in total along each axis. For odd $k$ this is
    $\lfloor k/2 \rfloor$ on each side, which the convolution does itself. For
    even $k$ the two sides differ by one: we pad $\frac{k}{2} - 1$ before and
    $\frac{k}{2}$ after, the same as PyTorch's `padding='same'`. We don't use
    `padding='same'` itself: it goes through a separate convolution operator
    that older ONNX exporters and trace-based FLOP counters don't know, while
    integer padding is the plain convolution and computes the same numbers.
    """

    def __init__(self, d_model: int, kernel_size: int):
        odd = kernel_size % 2 == 1
        super().__init__(d_model, d_model, kernel_size=kernel_size, groups=d_model,
                         padding=kernel_size // 2 if odd else 0)
        # Explicit padding `(left, right, top, bottom)`, for even kernels only.
        self.even_padding = None if odd else (
            (kernel_size - 1) // 2, kernel_size // 2, (kernel_size - 1) // 2, kernel_size // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.even_padding is not None:
            x = F.pad(x, self.even_padding)
        return super().forward(x)


class ConvMixerLayer(nn.Module):
    r"""
    ## ConvMixer layer

    This is one of the $d$ layers of the model. The input is the grid of patch
    embeddings of shape `[batch_size, d_model, height, width]`, and so is the output.

    First, the depth-wise convolution mixes each channel over a $k \times k$
    neighbourhood of patches (spatial mixing), with a residual connection around it:

    $$z' = \mathrm{BN}\big(\sigma\{\mathrm{ConvDepthwise}(z)\}\big) + z$$

    Then the point-wise convolution, a $1 \times 1$ convolution, mixes the
    channels of each patch (channel mixing):

    $$z_{\text{next}} = \mathrm{BN}\big(\sigma\{\mathrm{ConvPointwise}(z')\}\big)$$

    There is no residual connection around the point-wise convolution. The paper
    found this works better.

    * `d_model` is $h$, the number of channels of the patch embeddings
    * `kernel_size` is $k$, the size of the depth-wise kernel; any $k \ge 1$ keeps
      the spatial size, even ones included
    * `activation` is a factory for the activation modules, $\sigma$
    * `pre_act` and `bn_first` reorder convolution, activation and normalization
      as described in [`conv_act_norm`](#conv_act_norm)
    """

    def __init__(self, d_model: int, kernel_size: int,
                 activation: Union[str, ActivationFactory] = nn.GELU,
                 pre_act: bool = False, bn_first: bool = False):
        super().__init__()
        _check_positive(d_model=d_model, kernel_size=kernel_size)
        activation = get_activation(activation)
        self.pre_act = pre_act
        self.bn_first = bn_first
        # Spatial mixing: the depth-wise convolution, its activation and normalization.
        self.depth_wise_conv = DepthWiseConv2d(d_model, kernel_size)
        self.act1 = activation()
        self.norm1 = nn.BatchNorm2d(d_model)
        # Channel mixing: a $1 \times 1$ convolution is a linear map of each patch's
        # $h$ channels, the same for every patch, with its activation and normalization.
        self.point_wise_conv = nn.Conv2d(d_model, d_model, kernel_size=1)
        self.act2 = activation()
        self.norm2 = nn.BatchNorm2d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Spatial mixing, with the residual connection around it
        x = x + conv_act_norm(x, self.depth_wise_conv, self.act1, self.norm1,
                              self.pre_act, self.bn_first)
        # Channel mixing, without a residual connection
        return conv_act_norm(x, self.point_wise_conv, self.act2, self.norm2,
                             self.pre_act, self.bn_first)


class ClassificationHead(nn.Module):
    """
    ## Classification head

    Average pooling over all patches gives one vector of $h$ channels for the
    image, and a linear layer turns it into the logits of the `n_classes` classes.

    With `n_classes = 0` there is no linear layer, and the head returns the
    pooled features of shape `[batch_size, d_model]`, for use as a backbone.
    """

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
        _check_positive(d_model=d_model)
        if not isinstance(n_classes, int) or n_classes < 0:
            raise ValueError(f"n_classes must be a non-negative integer, got {n_classes!r}")
        self.d_model = d_model
        self.n_classes = n_classes
        self.pool = nn.AdaptiveAvgPool2d((1, 1))
        self.linear = nn.Linear(d_model, n_classes) if n_classes > 0 else nn.Identity()

    def pool_features(self, x: torch.Tensor) -> torch.Tensor:
        """
        Pool the `[batch_size, d_model, height, width]` patch embeddings to
        `[batch_size, d_model]`
        """
        return self.pool(x).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # `[batch_size, d_model, height, width]` → `[batch_size, d_model]` → `[batch_size, n_classes]`
        return self.linear(self.pool_features(x))


def clone_module_list(module: nn.Module, n: int) -> nn.ModuleList:
    """
    ## Stack $n$ fresh copies of a layer

    The model is built from one example layer, `conv_mixer_layer`, which is copied
    `n_layers` times. A plain deep copy would give every layer *the same* initial
    weights. That trains, but it is not the model of the paper: the official code
    builds each layer anew, so each starts from its own random weights.

    So after copying we call `reset_parameters()` on every sub-module that has it
    (convolutions, batch normalizations, linear layers), which draws new weights
    from the module's default initialisation. The copy keeps the example's
    structure (kernel size, activation, ordering options); only the weights are new.
    """
    _check_positive(n=n)
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

    This puts the patch embeddings, $d$ ConvMixer layers and the classification
    head together.

    * `conv_mixer_layer` is an example [ConvMixer layer](#ConvMixerLayer);
      `n_layers` fresh copies of it are made with [`clone_module_list`](#clone_module_list)
    * `n_layers` is $d$, the number of ConvMixer layers (the depth)
    * `patch_emb` is the [patch embeddings](#PatchEmbeddings) layer
    * `classification` is the [classification head](#ClassificationHead)
    """

    def __init__(self, conv_mixer_layer: ConvMixerLayer, n_layers: int,
                 patch_emb: PatchEmbeddings, classification: ClassificationHead):
        super().__init__()
        _check_positive(n_layers=n_layers)
        self.patch_emb = patch_emb
        self.conv_mixer_layers = clone_module_list(conv_mixer_layer, n_layers)
        self.classification = classification
        # Gradient checkpointing is off by default; see `set_grad_checkpointing`.
        self.grad_checkpointing = False

    def _run_layer(self, layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
        # With gradient checkpointing, a layer's activations are not kept for the
        # backward pass but recomputed, trading compute for memory.
        if self.grad_checkpointing and self.training and torch.is_grad_enabled():
            return torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False)
        return layer(x)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """
        ### Features

        `x` is the batch of images, `[batch_size, in_channels, height, width]`.
        Returns the patch embeddings after the last layer,
        `[batch_size, d_model, height // p, width // p]`.
        """
        # Patch embeddings, `[batch_size, d_model, height // p, width // p]`
        x = self.patch_emb(x)
        # The ConvMixer layers keep that shape
        for layer in self.conv_mixer_layers:
            x = self._run_layer(layer, x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """
        ### Head

        Applies the head to the output of `forward_features`. With `pre_logits`
        it stops after pooling and returns `[batch_size, d_model]`.
        """
        if pre_logits:
            return self.classification.pool_features(x)
        return self.classification(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """
        ### Logits

        `[batch_size, in_channels, height, width]` → `[batch_size, n_classes]`
        (or `[batch_size, d_model]` when the head has no classes)
        """
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: Sequence[int]) -> List[torch.Tensor]:
        """
        ### Feature maps of chosen layers

        Returns the outputs of the layers at `indices` (counted from 0, negative
        counts from the end), each `[batch_size, d_model, height // p, width // p]`,
        in the order of the layers. This is what detection and segmentation
        backbones need; the layers after the last chosen one are not run.
        """
        n = len(self.conv_mixer_layers)
        chosen = set()
        for i in indices:
            if not isinstance(i, int) or not -n <= i < n:
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

    def reset_classifier(self, n_classes: int):
        """
        ### New classifier

        Replaces the head with a freshly initialised one for `n_classes` classes
        (0 for features only), keeping everything else; for fine-tuning on a new task.
        """
        self.classification = ClassificationHead(self.classification.d_model, n_classes)
        device = self.patch_emb.conv.weight.device
        self.classification.to(device=device, dtype=self.patch_emb.conv.weight.dtype)

    def set_grad_checkpointing(self, enable: bool = True):
        """
        ### Gradient checkpointing

        Recompute each layer's activations in the backward pass instead of storing
        them: activation memory of one layer instead of $d$, for about one extra
        forward pass of compute.
        """
        self.grad_checkpointing = enable


def convmixer(d_model: int, n_layers: int, kernel_size: int = 9, patch_size: int = 7,
              n_classes: int = 1000, in_channels: int = 3,
              activation: Union[str, ActivationFactory] = nn.GELU,
              pre_act: bool = False, bn_first: bool = False) -> ConvMixer:
    """
    ## Build a ConvMixer-$h$/$d$

    A shortcut that makes the parts and puts them together. For example,
    `convmixer(256, 8, kernel_size=5, patch_size=2, n_classes=10)` is the
    CIFAR-10 model of the paper, ConvMixer-256/8.
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
