r"""
---
title: ConvMixer on ImageNet and image folders
summary: >
  Evaluate the published ImageNet-1k ConvMixers with the transform their
  numbers were measured with, and fine-tune a pretrained ConvMixer (or train
  one from scratch) on any folder of images.
nav_order: 5
---

# ConvMixer on ImageNet and image folders

From the root of a clone, install the project and what its experiments use first:
`python3 -m pip install -e ".[experiment]"`.

The paper's headline results are on ImageNet-1k. This experiment measures
them, and does what a practitioner most often wants from a pretrained model:
fine-tunes it on their own folder of images. Any data set laid out as
`DIR/train/<class>/*.jpg` and `DIR/val/<class>/*.jpg` works; the
[data page](datasets/imagefolder_data.html) says how it is read and checked.

## Evaluating the published models

```
python experiments/imagenet.py --data-dir DIR \
    --model convmixer_768_32 --pretrained --eval-only
```

measures top-1 and top-5 accuracy on the 50,000 images of `DIR/val`, with the
transform the published numbers were measured with: the shorter side resized
to 233 pixels (bicubic), the centre $224 \times 224$ cropped, ImageNet's mean
and standard deviation. The weights are downloaded once into torch's cache;
offline, the error says which file to fetch and where to put it. What each
model should reach, as published (the authors' README, validated with timm's
`validate.py`, and mmpretrain's model card):

| `--model` | top-1 | top-5 |
|---|---|---|
| `convmixer_1536_20` | 81.37 % | 95.61 % |
| `convmixer_768_32` | 80.16 % | 95.08 % |
| `convmixer_1024_20_ks9_p14` | 76.94 % | 93.36 % |

**These numbers were not measured on the machines that build this project**:
they have neither ImageNet nor a network to download the weights. What the
tests check is the machinery: the transform equals timm's, and a model whose
weights are set so that the answer is known gets exactly that answer.
`--weights FILE` evaluates a checkpoint file instead, in any layout
[`load_pretrained`](../labml_convmixer/pretrained.html) reads (a run's own
`checkpoint.pt` too); its classifier must have one output per class folder.

The run shows its progress on a terminal, prints the images per second and
the top-1 accuracy when done, and writes `summary.json` in a
new run folder: `valid_accuracy` (top-1, a fraction), `valid_top5`,
`valid_images`, `per_class_accuracy` and the transform used. An image file that
cannot be decoded stops the run with its name: it is not skipped, because a
skipped image changes the number that is compared with the published one (see
the [data page](datasets/imagefolder_data.html#checked-before-anything-runs)).

## Fine-tuning, or training from scratch

```
python experiments/imagenet.py --data-dir DIR \
    --model convmixer_768_32 --pretrained --epochs 10
```

replaces the classifier with a fresh one for the folder's classes
(`reset_classifier`), trains on `DIR/train` and tests on `DIR/val` after each
epoch; `--weights FILE` starts from a file the same way. Without `--model`,
`--d-model`, `--n-layers`, `--kernel-size` and `--patch-size` build a
ConvMixer, as for CIFAR-10, `--image-size` sets the crop, and the run trains
it from scratch with the [from-scratch recipe](#the-two-recipes):

```
python experiments/imagenet.py --data-dir DIR --d-model 256 --n-layers 8 \
    --kernel-size 9 --patch-size 8 --image-size 128 --epochs 50
```

Loader workers (one per CPU core, at most 8) decode the images and keep four
batches each ready ahead of the model; by default they only decode and crop,
and the training device flips and RandAugments whole batches
(`--augment batched`), so that a GPU does not wait for the CPU. A run has everything the
[CIFAR-10 experiment](cifar10.html) has: checkpoints after every epoch, an
exact `--resume RUN_UUID`, `--evaluate RUN_UUID`, `torchrun`, `--train-subset`,
`--seed`, `--device`, `--name` and the speed switches; `--help` lists them all.

## The two recipes

What the run starts from chooses its recipe (`--recipe` in `--help`, `recipe`
in the run's `configs.yaml` and `summary.json`, and a line at the start of the
run): starting weights (`--pretrained`, `--weights`) are **fine-tuned**;
anything else, a model from the flags or `--model` without `--pretrained`,
trains **from scratch**. `--recipe fine-tune` or `--recipe scratch` chooses
one whatever the start, and any setting given on the command line wins over
its recipe's default.

| setting | fine-tune | from scratch | where the from-scratch number comes from |
|---|---|---|---|
| `--lr` | $5 \times 10^{-4}$ | $0.01 \sqrt{B / 128}$: 0.01 at $B = 128$ | official README's 0.01 (at 10 GPUs × 64), see below |
| `--weight-decay` | 0.05 | $2 \times 10^{-5}$ | the README sets none: the default of its `train.py` |
| `--schedule` | `warmup-cosine`: 1 epoch up, cosine to 0 | `one-cycle`: up to $2T/5$, $\eta/20$ at $4T/5$, 0 at $T$ | README (`--sched onecycle --warmup-epochs 0`) |
| `--adam-eps` | $10^{-8}$ (PyTorch's) | $10^{-8}$ | PyTorch's; the README's $10^{-3}$ is left out, see below |
| `--clip-grad` | none | gradient norm 1 | README (`--clip-grad 1.0`) |
| batch $B$, `--epochs` | 128, 10 | 128, 10 | one machine; the paper trains 150 to 300 epochs |
| training crops (`--scale`) | 8 % to 100 % of the area | the same | ImageNet's; 75 % for small images, [below](#small-images) |
| RandAugment | 2 operations, magnitude 9 | the same | see below |
| test images | shorter side to $\lfloor s / 0.96 \rfloor$, centre crop $s$ | the same | the published evaluation |

The fine-tuning recipe is the usual one for adapting good weights to a small
data set: a small learning rate, a warm-up while the new classifier settles,
AdamW's common weight decay, and the cosine that timm and DeiT fine-tune with.

The from-scratch recipe is the official ImageNet command with what one machine
and a short run can use. Its learning rate of 0.01 was set for a global batch
of 640 and 150 epochs or more; here it is kept at this experiment's batch of
128, and other batches scale it by $\sqrt{B/128}$, the rule timm applies to
Adam-type optimizers. Scaled down from 640 by that same rule it would be
0.0045, too slow for a run of a few epochs. The official
$\epsilon = 10^{-3}$ damps AdamW's steps where gradients are small, which a
run of hundreds of epochs can afford; a short one keeps PyTorch's $10^{-8}$.

Left out are mixup and cutmix (0.5 each), label smoothing (0.1) and random
erasing (0.25): they fight overfitting over 150 to 300 epochs of ImageNet, and
slow down a run of tens of epochs (the CIFAR-10 reference leaves them all out
for its 25 epochs).
RandAugment's magnitude is torchvision's, of 31 steps: 9 is a mild setting;
the official `rand-m9-mstd0.5` is timm's 9 of 10, with each operation applied
half of the time, tuned for those same long runs.

Measured on real images: scikit-learn's 1,797 handwritten digits, written as
a folder of $32 \times 32$ PNGs (1,438 training, 359 test images) by the
[check](../benchmarks/digits_check.html), which trains the same ConvMixer for
the same epochs, from the same starting weights and in the same order of
images, with a plain PyTorch loop (crops of 75 % to 100 %, flip,
RandAugment(2, 9), AdamW at 0.01 in one cycle, weight decay 0.005) and with
this experiment given no recipe flag. Test accuracy after the last epoch,
ConvMixer-32/2 ($k = 5$, $p = 4$), 8 epochs, 2 loader workers, a 2-core CPU
(`python benchmarks/digits_check.py --epochs 8 --d-model 32 --n-layers 2
--patch-size 4 --seed S`):

| seed | plain loop | the recipe, no flags |
|---|---|---|
| 0 | 88.3 % | 90.5 % |
| 1 | 84.4 % | 87.7 % |
| 2 | 88.9 % | 89.1 % |

## Small images

A random crop of 8 % of the area, ImageNet's habit, makes sense for
photographs of about 400 pixels cropped to 224; on a 32-pixel image it keeps
9 pixels a side, blown up more than three times (the official README advises
`--scale 0.75 1.0` for CIFAR-10). So the default depends on `--image-size`
$s$: 8 % while that smallest crop keeps at least a CIFAR image, 32 pixels a
side ($\sqrt{0.08}\, s \ge 32$, that is $s \ge 114$), and 75 % for smaller
images, whichever the recipe. `--scale LOW HIGH` is timm's spelling and sets
both bounds; `--scale LOW` keeps the upper one at 1.
"""

import math
import os
import sys
from pathlib import Path
from typing import Any, Dict

if __package__ in (None, ''):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch
from torch import nn

from labml import lab, logger
from labml.configs import option

from experiments import filters
from experiments.datasets.imagefolder_data import FolderData, DeviceAugment, describe, \
    eval_transform, image_loader, random_subset, read_image_folder, train_transform
from experiments.runner import cli
from experiments.runner.errors import UserError
from experiments.runner.launch import launch
from experiments.runner.trainer import CHECKS, RANDAUGMENT_CHECKS, TrainerConfigs
from experiments.imagenet_recipes import (RECIPE_KEYS, RECIPES, SMALLEST_CROP, default_scale,
                                         one_cycle_lr, recipe_text, warmup_cosine_lr)
from labml_convmixer.download import WeightsUnavailableError
from labml_convmixer.factory import convmixer
from labml_convmixer.models import create_model, get_model_spec, list_models
from labml_convmixer.pretrained import load_pretrained, read_state_dict

# What the ImageNet models expect of their images, as their models carry it
IMAGENET_CFG = get_model_spec('convmixer_1536_20').pretrained_cfg()


def default_workers() -> int:
    """The CPU cores this process may use, at most 8: decoding JPEGs is CPU work."""
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else os.cpu_count() or 1)
    return max(1, min(8, cores))


class Configs(TrainerConfigs):
    """
    ## Settings

    What to start from, then the model built from scratch when there is no
    `--model`, the schedule and the images. The
    [trainer](runner/trainer.html#TrainerConfigs) declares the shared settings.
    """
    model_name: str = ''  # a named model; empty: one built from --d-model etc.
    pretrained: bool = False  # start from the published ImageNet weights of --model
    weights: str = ''  # start from this checkpoint file, in any layout
    # The recipe: fine-tuning for a start from weights, else from scratch
    recipe: str  # fine-tune or scratch: the defaults of --lr, --weight-decay, --schedule, --adam-eps, --clip-grad

    # From scratch: the paper's ConvMixer-768/32, kernel 7, patch 7, ReLU
    d_model = 768
    n_layers = 32
    kernel_size = 7
    patch_size = 7
    activation = 'relu'

    # The schedule, the optimizer and the recipe's defaults of their settings
    epochs = 10
    batch_size = 128
    lr: float  # peak learning rate
    weight_decay: float  # AdamW's weight decay
    schedule: str  # warmup-cosine or one-cycle
    warmup_epochs: float = 1.0  # warmup-cosine: epochs of linear warm-up (at most half)
    adam_eps: float  # AdamW's epsilon, added to the root of the second moment
    clip_grad: float  # clip the gradients' norm to this before each step (0: never)

    # The images; the defaults are the ImageNet models' `pretrained_cfg`
    image_size: int = IMAGENET_CFG['input_size'][-1]  # side of the square crop the model sees
    crop_pct: float = IMAGENET_CFG['crop_pct']  # testing: shorter side to image_size / crop_pct, crop
    interpolation: str = IMAGENET_CFG['interpolation']  # resizing: bicubic or bilinear
    scale: float  # training crops cover scale to scale_max of the area; --scale LOW [HIGH] sets both
    scale_max: float = 1.0  # the largest training crop, a fraction of the image's area
    flip: bool = True  # random horizontal flips
    randaugment_ops: int = 2  # RandAugment's number of operations (0: no RandAugment)
    randaugment_magnitude: int = 9  # RandAugment's magnitude, 0..30

    num_workers = default_workers()
    report_top5 = True
    data: FolderData

    def learning_rate(self, t: float) -> float:
        if self.schedule == 'one-cycle':
            return one_cycle_lr(t, self.epochs, self.lr)
        return warmup_cosine_lr(t, self.epochs, self.lr, self.warmup_epochs)

    def normalization(self):
        """A named model's mean and std (ImageNet's for the ImageNet models)."""
        cfg = get_model_spec(self.model_name).pretrained_cfg() if self.model_name else IMAGENET_CFG
        return cfg['mean'], cfg['std']

    def eval_transform(self):
        return eval_transform(self.image_size, self.crop_pct, self.interpolation,
                              *self.normalization())

    def train_transform(self, on_device: bool = False):
        mean, std = self.normalization()
        return train_transform(self.image_size, self.scale, self.interpolation,
                               scale_max=self.scale_max, flip=self.flip, num_ops=self.randaugment_ops,
                               magnitude=self.randaugment_magnitude, mean=mean, std=std,
                               on_device=on_device)

    def summary_facts(self) -> Dict[str, Any]:
        # An evaluation (`run_mode`) has no training images to describe
        facts = {'transform': describe(self.eval_transform())}
        if not self.run_mode.evaluating:
            facts['train_transform'] = describe(self.train_transform())
            facts['recipe'] = {'name': self.recipe,
                               **{key: getattr(self, key) for key in RECIPE_KEYS}}
        return facts


# ## The recipe
#
# Each setting of the recipe, and the crop scale, is an `@option` (numbers on
# the [recipes page](imagenet_recipes.html)): a value given replaces it.

@option(Configs.recipe)
def _recipe(c: Configs) -> str:
    return 'fine-tune' if c.pretrained or c.weights else 'scratch'


def _recipe_default(key: str):
    def default(c: Configs):
        value = RECIPES[c.recipe][key]
        return value(c) if callable(value) else value
    return default


for _key in RECIPE_KEYS:
    option(getattr(Configs, _key), 'recipe')(_recipe_default(_key))


@option(Configs.scale)
def _scale(c: Configs) -> float:
    return default_scale(c.image_size)


# ## The data
#
# The folders are read and checked ([`read_image_folder`](datasets/imagefolder_data.html))
# before anything else; evaluating needs `val/` only, so this option reads the
# run's mode ([`run_mode`](runner/trainer.html#RunMode)). `--train-subset N`
# trains on $N$ images drawn with the seed.

@option(Configs.data)
def _data(c: Configs) -> FolderData:
    root = Path(c.data_dir) if c.data_dir else lab.get_data_path() / 'imagenet'
    data = read_image_folder(root, need_train=not c.run_mode.evaluating)
    data.train = random_subset(data.train, c.train_subset, c.seed)
    return data


# Training batches come from loader workers that decode and crop; the rest of
# the augmentation happens in the workers too (`torchvision`) or on the device
# a batch at a time (`batched`, the default on a GPU and a CPU).

@option(Configs.train_loader)
def _train_loader(c: Configs):
    on_device = c.augment == 'batched'
    logger.log(f"recipe {c.recipe}: lr {c.lr:.3g}, weight decay {c.weight_decay:g}, "
               f"{c.schedule}, AdamW eps {c.adam_eps:g}, "
               + (f"gradient norm clipped at {c.clip_grad:g}, " if c.clip_grad else '')
               + f"crops of {c.scale:g} to {c.scale_max:g} of the area")
    loader = image_loader(c.data.train, c.train_transform(on_device),
                          c.shuffled_sampler(len(c.data.train)), c.per_process_batch(),
                          c.num_workers, c.device.type == 'cuda')
    if not on_device:
        return loader
    from experiments.datasets.gpu_augment import BatchAugment
    mean, std = c.normalization()
    return DeviceAugment(loader, c.device, BatchAugment(
        mean, std, flip=c.flip, num_ops=c.randaugment_ops,
        magnitude=c.randaugment_magnitude))


@option(Configs.valid_loader)
def _valid_loader(c: Configs):
    return image_loader(c.data.valid, c.eval_transform(),
                        c.shard_sampler(len(c.data.valid)), c.per_process_batch(),
                        c.num_workers, c.device.type == 'cuda')


# ## The model
#
# A named model or one from the flags, then the starting weights: the
# published ones (`--pretrained`) or a file (`--weights`). When a checkpoint of
# this experiment's own run will replace them (`--resume`, `--evaluate`: the
# `restoring` of [`run_mode`](runner/trainer.html#RunMode)), loading them would
# be wasted, and they are skipped. Every failure a user can
# fix, a damaged or foreign file, no network, becomes one line.

def _one_line(error: Exception) -> str:
    return '; '.join(line.strip() for line in str(error).splitlines() if line.strip())


def starting_model(c: Configs) -> nn.Module:
    n_classes, load = len(c.data.classes), not c.run_mode.restoring
    try:
        if c.model_name:
            model = create_model(c.model_name, pretrained=c.pretrained and load)
        else:
            model = convmixer(c.d_model, c.n_layers, kernel_size=c.kernel_size,
                              patch_size=c.patch_size, n_classes=n_classes,
                              activation=c.activation)
        if c.weights and load:
            state_dict, _ = read_state_dict(c.weights)
            # The file's own classifier size, so that everything loads strictly
            head = state_dict.get('classification.linear.weight')
            model.reset_classifier(head.shape[0] if head is not None else 0)
            load_pretrained(model, state_dict)
    except (ValueError, OSError, WeightsUnavailableError) as e:
        origin = f"{c.weights}: " if c.weights and c.weights not in str(e) else ''
        raise UserError(origin + _one_line(e)) from None
    return fit_classifier(c, model, loaded=load and (c.pretrained or bool(c.weights)))


def fit_classifier(c: Configs, model: nn.Module, loaded: bool) -> nn.Module:
    """
    Weights for another number of classes: a new classifier for fine-tuning
    (`reset_classifier`); for evaluation they cannot be used.
    """
    n_classes, has = len(c.data.classes), model.classification.n_classes
    if has == n_classes:
        return model
    if loaded and c.run_mode.evaluating:
        source = 'the published weights' if c.pretrained else c.weights
        raise UserError(f"{source} classify {has} classes, but {c.data.root / 'val'} "
                        f"has {n_classes} class folders: evaluating needs weights for "
                        f"the folder's classes (drop --eval-only to fine-tune them on "
                        f"it)")
    if loaded:
        logger.log(f"a new classifier for the {n_classes} classes of the data "
                   f"replaces the starting weights' {has}")
    model.reset_classifier(n_classes)
    return model


@option(Configs.model)
def _model(c: Configs) -> nn.Module:
    # Seeded, so that every process of a distributed run starts the same
    torch.manual_seed(c.seed)
    return c.prepare(starting_model(c))


# The optimizer, AdamW with the recipe's settings, is the
# [trainer's](runner/trainer.html#_optimizer).
#
# ## Run it
#
# The checks of single values, and of values that must go together, run
# before any data is read.

def _model_name(key: str, value: str) -> str:
    if value and value not in list_models():
        raise UserError(f"unknown model {value!r}: choose one of "
                        f"{', '.join(list_models())}", 2)
    return value


_model_name.choices = list_models()


def _existing_file(key: str, value: str) -> str:
    path = Path(value).expanduser().resolve()
    if value and path.is_dir():
        raise UserError(f"--{key} {value}: is a folder; give the checkpoint file in it", 2)
    if value and not path.is_file():
        raise UserError(f"--{key} {value}: no such file", 2)
    return str(path) if value else value


IMAGENET_CHECKS = {
    **CHECKS, **RANDAUGMENT_CHECKS,
    'model_name': (_model_name,), 'weights': (_existing_file,),
    'image_size': (cli.at_least(1),), 'warmup_epochs': (cli.non_negative,),
    'crop_pct': (cli.positive, cli.at_most(1)),
    'scale': (cli.positive, cli.at_most(1), cli.upper_bound('scale_max'),
              cli.default_is(f"0.08 for images of {math.ceil(SMALLEST_CROP / math.sqrt(0.08))}"
                             " pixels and more, else 0.75")),
    'scale_max': (cli.positive, cli.at_most(1)),
    'recipe': (cli.one_of(RECIPES), cli.default_is(
        'fine-tune with --pretrained or --weights, else scratch')),
    **{key: (*checks, cli.default_is(recipe_text(key))) for key, checks in (
        ('lr', CHECKS['lr']), ('weight_decay', CHECKS['weight_decay']),
        ('schedule', (cli.one_of(('warmup-cosine', 'one-cycle')),)),
        ('adam_eps', (cli.positive,)), ('clip_grad', (cli.non_negative,)))},
    'interpolation': (cli.one_of(('bicubic', 'bilinear')),),
}
ARCHITECTURE = ('d_model', 'n_layers', 'kernel_size', 'patch_size', 'activation')


def check_settings(s: Dict[str, Any], given: Dict[str, Any], args) -> None:
    name = s['model_name']
    published = ', '.join(list_models(pretrained=True))
    if s['pretrained'] and not name:
        raise UserError(f"--pretrained needs --model NAME, one of {published}", 2)
    if s['pretrained'] and s['weights']:
        raise UserError("--pretrained and --weights both give the starting weights: "
                        "choose one", 2)
    if s['pretrained'] and not get_model_spec(name).weights_file:
        raise UserError(f"{name} has no published weights (those that have: "
                        f"{published}); drop --pretrained to train it from scratch, or "
                        f"start from a file with --weights FILE", 2)
    fixed = ['--' + key.replace('_', '-') for key in ARCHITECTURE if key in given]
    if name and fixed:
        raise UserError(f"--model {name} fixes the architecture: "
                        f"drop {', '.join(fixed)}", 2)
    patch = get_model_spec(name).patch_size if name else s['patch_size']
    if patch > s['image_size']:
        raise UserError(f"the patch ({patch}) is larger than the image "
                        f"(image_size {s['image_size']})", 2)
    low = s['scale'] if s['scale'] is not None else default_scale(s['image_size'])
    if low > s['scale_max']:
        raise UserError(f"the crop scale goes from LOW to HIGH: --scale {low:g} "
                        f"{s['scale_max']:g} has LOW above HIGH", 2)
    if getattr(args, 'eval_only', False) and not (s['pretrained'] or s['weights']):
        raise UserError("--eval-only evaluates starting weights: give --model NAME "
                        "--pretrained, or --weights FILE (a run of this experiment: "
                        "--evaluate RUN_UUID)", 2)


def main(argv=None):
    launch(Configs, name='imagenet', argv=argv, checks=IMAGENET_CHECKS,
           description='Evaluate or fine-tune ConvMixer on ImageNet or image folders.',
           check_settings=check_settings, eval_only=True, draw=filters.draw_filters)


if __name__ == '__main__':
    main()
