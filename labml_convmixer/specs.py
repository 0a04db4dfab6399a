"""
---
title: Model specifications
nav_order: 6
summary: >
  What a ConvMixer is and expects, in one place: its sizes, its weights, and
  the images it was trained on, as timm's pretrained_cfg.
---

# Model specifications

A `ModelSpec` holds the facts of one model: the paper's four numbers, the
activation, the classes, where its weights are, and how its images are
prepared. The [named models](models.md) are `ModelSpec`s;
[`convmixer()`](factory.md) makes one for a model of any size, with the
defaults below, and both put its [`pretrained_cfg`](#ModelSpec.pretrained_cfg)
on the model. The ImageNet experiment's transforms read the same numbers.
"""

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

# Images are normalized with the ImageNet mean and standard deviation (per RGB
# channel) for the ImageNet models.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# And with CIFAR-10's own for the CIFAR-10 model.
CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)

# Where the authors published the weights, and where mmpretrain keeps its copies.
OFFICIAL_URL = 'https://github.com/tmp-iclr/convmixer/releases/download/v1.0/'
MMPRETRAIN_URL = 'https://download.openmmlab.com/mmclassification/v0/convmixer/'


@dataclass(frozen=True)
class ModelSpec:
    """
    ## A named model

    The paper's hyper-parameters, the number of classes and the activation of
    one variant, and where its weights are. `weights_file` is the name of the
    official file, `mmpretrain_file` the name of mmpretrain's copy of the same
    weights (either is used if found in the cache). For evaluation, images are
    resized to `input_size / crop_pct` with `interpolation`, center cropped to
    `input_size` and normalized with `mean` and `std`. The defaults are the
    ImageNet models' (resize to 233, bicubic, crop 224), and those of a model of
    any other size.
    """
    name: str
    d_model: int
    n_layers: int
    kernel_size: int
    patch_size: int
    activation: str
    n_classes: int
    weights_file: Optional[str] = None
    mmpretrain_file: Optional[str] = None
    top1: Optional[float] = None
    input_size: int = 224
    crop_pct: float = 0.96
    interpolation: str = 'bicubic'
    mean: Tuple[float, ...] = IMAGENET_MEAN
    std: Tuple[float, ...] = IMAGENET_STD
    in_channels: int = 3

    @property
    def weights_url(self) -> Optional[str]:
        return OFFICIAL_URL + self.weights_file if self.weights_file else None

    @property
    def mmpretrain_url(self) -> Optional[str]:
        return MMPRETRAIN_URL + self.mmpretrain_file if self.mmpretrain_file else None

    def pretrained_cfg(self) -> Dict[str, object]:
        """
        ### timm's description of the model and its images

        The fields of timm's `pretrained_cfg` (timm's values for the ImageNet
        models), with the names of our first convolution and classifier. The
        ImageNet experiment builds its transforms from it too. None-free: timm's
        `pool_size` (`None` for ConvMixer) is left out.
        """
        c = self.in_channels
        # RGB statistics do not fit other channels: then 0.5, as for unknown images
        fits = len(self.mean) == c
        return dict(architecture=self.name, url=self.weights_url or '',
                    num_classes=self.n_classes,
                    input_size=(c, self.input_size, self.input_size),
                    fixed_input_size=False, interpolation=self.interpolation,
                    crop_pct=self.crop_pct, crop_mode='center',
                    mean=self.mean if fits else (0.5,) * c,
                    std=self.std if fits else (0.5,) * c, first_conv='patch_emb.conv',
                    classifier='classification.linear', license='mit')

    def config(self) -> Dict[str, object]:
        """The arguments of `convmixer()` that build this model."""
        return dict(d_model=self.d_model, n_layers=self.n_layers, kernel_size=self.kernel_size,
                    patch_size=self.patch_size, n_classes=self.n_classes,
                    in_channels=self.in_channels,
                    activation=self.activation, pre_act=False, bn_first=False)
