r"""
---
title: What the network learned, as pictures
summary: >
  filters.png: the patch embedding's kernels as small RGB patches, and the
  depth-wise kernels of the first, a middle and the last layer.
nav_order: 12
---

# What the network learned, as pictures

From the root of a clone, install the project and what its experiments use first:
`python3 -m pip install -e ".[experiment]"`.

A trained ConvMixer's first weights can be looked at directly, as the paper
does for its ImageNet models. `filters.png` has four panels:

1. **The patch embedding**: each of the $h$ kernels of the
   [patch embedding](../labml_convmixer/model.html#PatchEmbeddings) is a
   $p \times p$ RGB patch: the colour pattern that makes that channel respond.
2. **The depth-wise kernels** of the first, a middle and the last
   [layer](../labml_convmixer/model.html#ConvMixerLayer): 64 of the $h$
   $k \times k$ kernels, the same channels in each layer, red for positive
   weights and blue for negative ones.

Every kernel is scaled to its own largest weight, with zero in the middle
(grey for the patches, white for the depth-wise kernels), so that a weak
kernel is as readable as a strong one.

**What to look for.** An untrained model's kernels are noise. After training,
the kernels are no longer noise: we expect colour contrasts in the patch
embedding (with $p = 2$ on CIFAR-10, a $2 \times 2$ patch has little room for
more) and smoother, structured depth-wise kernels. The paper pictures the same
weights of its ImageNet models
([model page](../labml_convmixer/model.html#what-the-layers-learn)); compare
the three layers: how far each kernel reaches from its centre.

## Making the picture

```
python experiments/filters.py logs/cifar10/RUN_UUID/checkpoint.pt
```

draws a run's checkpoint into `filters.png` (`--out` names another file);
`--evaluate RUN_UUID` writes it into the run's folder as well. Any checkpoint
that [`load_pretrained`](../labml_convmixer/pretrained.html) reads works
(the official, timm and mmpretrain files too), and so does the name of a
released model, whose weights are then downloaded:

```
python experiments/filters.py convmixer_1536_20 --out filters-1536.png
```
"""

import argparse
import re
import sys
from pathlib import Path
from typing import List, Mapping, Union

# Run as a script, Python puts `experiments/` on the path but not the project
# root; add it so that `labml_convmixer` and `experiments` import without an
# install.
if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn
from torchvision.utils import make_grid

from experiments.runner.reports import pyplot, save_figure
from labml_convmixer.models import create_model, list_models
from labml_convmixer.pretrained import read_state_dict

# The weights drawn, in our state-dict layout
PATCH_KEY = 'patch_emb.conv.weight'
KERNEL_KEY_RE = re.compile(r'conv_mixer_layers\.(\d+)\.depth_wise_conv\.weight')
# At most this many patch-embedding kernels, and this many kernels of each layer
MAX_PATCHES = 256
KERNELS = 64


# ## Scaling a kernel
#
# Each kernel is divided by twice its largest absolute weight and moved up by
# one half: zero is $0.5$, the largest weight $0$ or $1$. The sign stays
# readable, and a kernel of small weights is not a grey square.

def signed_unit(kernels: torch.Tensor) -> torch.Tensor:
    """`[n, ...]` kernels, each scaled to $[0, 1]$ with zero at $0.5$."""
    flat = kernels.detach().float().cpu().flatten(1)
    largest = flat.abs().amax(dim=1).clamp_min(1e-12)
    return (flat / (2 * largest[:, None]) + 0.5).view(kernels.shape)


def layers_to_draw(n_layers: int) -> List[int]:
    """The first, a middle and the last layer (fewer when there are fewer)."""
    return sorted({0, n_layers // 2, n_layers - 1})


# ## The panels

def patch_mosaic(weight: torch.Tensor) -> torch.Tensor:
    """
    The patch embedding's `[h, in_channels, p, p]` kernels as one RGB picture,
    `[3, height, width]`: RGB for 3 input channels, else their mean in grey.
    """
    kernels = weight[:MAX_PATCHES]
    if kernels.shape[1] != 3:
        kernels = kernels.mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
    columns = int(len(kernels) ** 0.5 + 0.999)
    return make_grid(signed_unit(kernels), nrow=columns, padding=1, pad_value=1.0)


def kernel_mosaic(weight: torch.Tensor, channels: torch.Tensor, colormap) -> torch.Tensor:
    """The depth-wise `[h, 1, k, k]` kernels of `channels`, coloured by `colormap`, `[3, height, width]`."""
    values = signed_unit(weight[channels, 0])
    coloured = torch.from_numpy(colormap(values.numpy())[..., :3]).permute(0, 3, 1, 2).float()
    columns = int(len(channels) ** 0.5 + 0.999)
    # Grey between the kernels: white is a weight of zero
    return make_grid(coloured, nrow=columns, padding=1, pad_value=0.7)


def _weights(source: Union[nn.Module, Mapping[str, torch.Tensor], str, Path]):
    """The patch embedding's kernels and each layer's depth-wise kernels, by layer."""
    state_dict, _ = read_state_dict(source)
    layers = {int(m.group(1)): value for key, value in state_dict.items()
              if (m := KERNEL_KEY_RE.fullmatch(key))}
    if PATCH_KEY not in state_dict or not layers:
        raise ValueError("found no ConvMixer weights to draw (a patch embedding and "
                         "depth-wise convolutions)")
    return state_dict[PATCH_KEY], [layers[i] for i in sorted(layers)]


def draw_filters(source: Union[nn.Module, Mapping[str, torch.Tensor], str, Path], path: Union[str, Path]):
    """
    ## Draw `filters.png`

    `source` is a model, a state dict or a checkpoint file, in any layout that
    `load_pretrained` reads. The picture is written atomically to `path`.
    """
    patches, layers = _weights(source)
    plt = pyplot()
    colormap = plt.get_cmap('RdBu_r')
    h, k = layers[0].shape[0], layers[0].shape[-1]
    channels = torch.linspace(0, h - 1, min(KERNELS, h)).round().long().unique()
    drawn = layers_to_draw(len(layers))
    fig, axes = plt.subplots(1, 1 + len(drawn), figsize=(4.2 * (1 + len(drawn)), 4.8))
    p = patches.shape[-1]
    panels = [(patch_mosaic(patches),
               f"patch embedding\n{min(h, MAX_PATCHES)} of {h} kernels, {p} × {p}")]
    panels += [(kernel_mosaic(layers[i], channels, colormap),
                f"layer {i + 1} of {len(layers)}, depth-wise\n{len(channels)} of {h} kernels, {k} × {k}")
               for i in drawn]
    for ax, (picture, title) in zip(axes, panels):
        ax.imshow(picture.permute(1, 2, 0).numpy(), interpolation='nearest')
        ax.set_title(title, fontsize=10)
        ax.axis('off')
    fig.suptitle("Each kernel scaled to its largest weight; depth-wise: red positive, "
                 "blue negative", fontsize=9, y=0.04)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    save_figure(fig, Path(path))


# ## From the command line

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Draw a ConvMixer's patch embedding and depth-wise kernels into a PNG.")
    parser.add_argument('source', help="a checkpoint file (a run's checkpoint.pt, or any "
                                       "layout load_pretrained reads) or the name of a released model")
    parser.add_argument('--out', type=Path, default=Path('filters.png'), help='the PNG to write')
    args = parser.parse_args(argv)
    source = args.source
    if not Path(source).exists():
        if source not in list_models(pretrained=True):
            parser.error(f"{source} is neither a file nor one of the released models: "
                         f"{', '.join(list_models(pretrained=True))}")
        source = create_model(source, pretrained=True)
    draw_filters(source, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
