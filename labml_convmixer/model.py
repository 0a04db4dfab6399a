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

**Our note:** this page is the paper and nothing else. It needs only `torch`, and
each class works when copied alone (with the parts it is built from). The
package builds on it elsewhere:
[variations](variations.md) of the activation and of the order inside a layer,
[`convmixer()` with checks](factory.md) of sizes and images, and the
[backbone methods](backbone.md) that libraries such as timm expect.
"""

import torch
import torch.nn as nn
import torch.nn.functional as F


class PatchEmbeddings(nn.Module):
    r"""
    ## Patch embeddings

    **The paper:** each $p \times p$ patch gets an embedding of $h$ channels, by
    a convolution with kernel size and stride $p$, activation and normalization:

    $$z_0 = \mathrm{BN}\big(\sigma\{\mathrm{Conv}^{p \times p,\,
      \text{stride } p}_{c_{in} \to h}(X)\}\big)$$

    **Our note:** a convolution with kernel size and stride $p$ touches each
    patch once, with one linear map for all: "cut, flatten, multiply" in one step.

    * `d_model` is $h$; `patch_size` is $p$; `in_channels` is $c_{in}$, 3 for RGB
    * `activation` is $\sigma$: a class such as `nn.GELU`, called once per module
    """

    def __init__(self, d_model: int, patch_size: int, in_channels: int = 3,
                 activation=nn.GELU):
        super().__init__()
        self.d_model, self.patch_size = d_model, patch_size
        self.in_channels = in_channels
        # No padding, so there is one output position per whole patch
        self.conv = nn.Conv2d(in_channels, d_model, kernel_size=patch_size,
                              stride=patch_size)
        self.act = activation()
        self.norm = nn.BatchNorm2d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` is a batch of images, `[batch_size, in_channels, height, width]`"""
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
        # `nn.Conv2d`'s own convolution: what `super().forward(x)` runs, in a
        # form that `torch.jit.script` compiles too
        return self._conv_forward(x, self.weight, self.bias)


class ConvMixerLayer(nn.Module):
    r"""
    ## ConvMixer layer

    One of the $d$ layers. Its input and output are grids of patch embeddings,
    `[batch_size, d_model, height // p, width // p]`.

    **The paper:** the depth-wise convolution mixes each channel over a
    $k \times k$ neighbourhood of patches, with a residual connection around it;
    then a point-wise ($1 \times 1$) convolution, without one, mixes the
    channels of each patch:

    $$z'_\ell = \mathrm{BN}\big(\sigma\{\mathrm{ConvDepthwise}(z_{\ell-1})\}\big)
      + z_{\ell-1}$$

    $$z_\ell = \mathrm{BN}\big(\sigma\{\mathrm{ConvPointwise}(z'_\ell)\}\big)$$

    * `d_model` is $h$; `kernel_size` is $k$ (any $k \ge 1$, even ones too)
    * `activation` is $\sigma$, a class such as `nn.GELU`
    """

    def __init__(self, d_model: int, kernel_size: int, activation=nn.GELU):
        super().__init__()
        # Spatial mixing, by the [depth-wise convolution](#DepthWiseConv2d)
        self.depth_wise_conv = DepthWiseConv2d(d_model, kernel_size)
        self.act1 = activation()
        self.norm1 = nn.BatchNorm2d(d_model)
        # Channel mixing: one linear map of $h$ channels, the same for every patch
        self.point_wise_conv = nn.Conv2d(d_model, d_model, kernel_size=1)
        self.act2 = activation()
        self.norm2 = nn.BatchNorm2d(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # $z'_\ell$: spatial mixing, with the residual connection
        x = x + self.norm1(self.act1(self.depth_wise_conv(x)))
        # $z_\ell$: channel mixing
        x = self.norm2(self.act2(self.point_wise_conv(x)))
        return x


class ClassificationHead(nn.Module):
    """
    ## Classification head

    Its input is the last layer's output,
    `[batch_size, d_model, height // p, width // p]`.

    **The paper:** global average pooling over the patches gives one vector of
    $h$ channels per image; a linear layer turns it into `n_classes` logits.
    **Our note:** `n_classes = 0` gives no linear layer, and the pooled features.
    """

    def __init__(self, d_model: int, n_classes: int):
        super().__init__()
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
    # The standard library's deep copy, imported here so the function copies alone
    import copy
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

    The patch embeddings, $d$ ConvMixer layers and the head, put together.

    * `conv_mixer_layer` is an example [layer](#ConvMixerLayer), copied
      `n_layers` ($d$) times by [`clone_module_list`](#clone_module_list)
    * `patch_emb` is the [patch embeddings](#PatchEmbeddings), `classification`
      the [head](#ClassificationHead)
    """

    def __init__(self, conv_mixer_layer: ConvMixerLayer, n_layers: int,
                 patch_emb: PatchEmbeddings, classification: ClassificationHead):
        super().__init__()
        self.patch_emb = patch_emb
        self.conv_mixer_layers = clone_module_list(conv_mixer_layer, n_layers)
        self.classification = classification

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """`x` is a batch of images, `[batch_size, in_channels, height, width]`"""
        # $z_0$, the patch embeddings, `[batch_size, d_model, height // p, width // p]`
        x = self.patch_emb(x)
        # $z_1, \dots, z_d$: the $d$ layers keep that shape
        for layer in self.conv_mixer_layers:
            x = layer(x)
        # Logits, `[batch_size, n_classes]`
        x = self.classification(x)
        return x


def convmixer(d_model: int, n_layers: int, kernel_size: int = 9, patch_size: int = 7,
              n_classes: int = 1000, in_channels: int = 3,
              activation=nn.GELU) -> ConvMixer:
    """
    ## Build a ConvMixer-$h$/$d$

    Makes the parts and puts them together: `convmixer(256, 8, kernel_size=5,
    patch_size=2, n_classes=10)` is the paper's CIFAR-10 model, ConvMixer-256/8.

    **Our note:** the package's own [`convmixer()`](factory.md) takes the same
    arguments and more (activations by name, other orders), checks them, and
    returns a model with the [backbone methods](backbone.md).
    """
    return ConvMixer(
        ConvMixerLayer(d_model, kernel_size, activation),
        n_layers,
        PatchEmbeddings(d_model, patch_size, in_channels, activation),
        ClassificationHead(d_model, n_classes),
    )


# ## What the layers learn
#
# **The paper** pictures trained weights: the patch embeddings, and depth-wise
# kernels from progressively deeper layers. **Our note:** the experiments'
# [`filters.png`](../experiments/filters.html) draws the same for a model of ours.
