r"""
---
title: The ImageNet experiment's recipes
summary: >
  The numbers of the fine-tuning and the from-scratch recipe of the ImageNet
  experiment, their learning rate schedules and the crop scale by image size.
nav_order: 6
---

# The ImageNet experiment's recipes

The [ImageNet experiment](imagenet.html#the-two-recipes) chooses one of two
recipes by what a run starts from; its page compares them and says where each
number comes from. Here are the numbers and the functions that use them; the
[trainer](runner/trainer.html#_optimizer) builds AdamW from the recipe's
settings and clips the gradients when the recipe says so.
"""

import math

import numpy as np

# ## The schedules
#
# Fine-tuning starts from weights that are already good. A one-cycle schedule
# like CIFAR-10's would spend 40 % of a short run climbing to its peak, and
# much of it at rates high enough to undo what the weights had learned.
# Instead: a linear warm-up over $w$ epochs (`warmup_epochs`), then a cosine
# decay to 0 at $T$:
#
# $$\eta(t) = \eta_{max} \frac{t}{w} \quad (t < w), \qquad
#   \eta(t) = \frac{\eta_{max}}{2} \left(1 + \cos \pi \frac{t - w}{T - w}\right).$$
#
# The warm-up is for the new classifier: it starts random, and its large
# early gradients flow back into the pretrained layers; a small learning rate
# while it settles (and while AdamW's moment estimates fill up) keeps them
# from being pushed far off. The cosine spends the second half of the run at
# small rates, where fine-tuning gains most; it is the schedule timm and DeiT
# fine-tune with. Like CIFAR-10's schedule it is a function of the fractional
# epoch $t$ alone, so a resumed run continues it exactly.

def warmup_cosine_lr(t: float, epochs: int, lr_max: float, warmup: float) -> float:
    warmup = min(warmup, epochs / 2)
    if t < warmup:
        return lr_max * t / warmup
    progress = min((t - warmup) / (epochs - warmup), 1.0)
    return lr_max * 0.5 * (1 + math.cos(math.pi * progress))


# From scratch: the official recipe's one cycle, the
# [CIFAR-10 experiment's](cifar10.html#the-learning-rate-schedule): up from 0
# to $\eta_{max}$ over the first $2T/5$ epochs, down to $\eta_{max}/20$ at
# $4T/5$ and to 0 at $T$.

def one_cycle_lr(t: float, epochs: int, lr_max: float) -> float:
    return float(np.interp(t, [0, epochs * 2 / 5, epochs * 4 / 5, epochs],
                           [0, lr_max, lr_max / 20, 0]))


# ## The two recipes
#
# What a run starts from decides its recipe (`recipe`): starting weights
# (`--pretrained`, `--weights`) are fine-tuned; anything else trains from
# scratch. `--recipe` chooses one explicitly, and every setting given on the
# command line wins over its recipe's default. The page's
# [table](imagenet.html#the-two-recipes) says where each number comes from.

def scratch_lr(batch_size: int) -> float:
    """The official 0.01 at this experiment's batch of 128, scaled by the square root."""
    return 0.01 * math.sqrt(batch_size / 128)


RECIPES = {
    'fine-tune': {'lr': lambda c: 5e-4, 'weight_decay': 0.05,
                  'schedule': 'warmup-cosine', 'adam_eps': 1e-8, 'clip_grad': 0.0},
    'scratch': {'lr': lambda c: scratch_lr(c.batch_size), 'weight_decay': 2e-5,
                'schedule': 'one-cycle', 'adam_eps': 1e-8, 'clip_grad': 1.0},
}
RECIPE_KEYS = ('lr', 'weight_decay', 'schedule', 'adam_eps', 'clip_grad')


def recipe_text(key: str) -> str:
    """What `--help` says of a setting's default: each recipe's value."""
    if key == 'lr':
        return 'fine-tune 0.0005, scratch 0.01 * sqrt(batch_size / 128)'
    return f"fine-tune {RECIPES['fine-tune'][key]}, scratch {RECIPES['scratch'][key]}"


# ## Small images
#
# The default crop scale keeps ImageNet's 8 % only while the smallest crop is
# at least 32 pixels a side (the experiment page's
# [argument](imagenet.html#small-images)).

SMALLEST_CROP = 32


def default_scale(image_size: int) -> float:
    return 0.08 if math.sqrt(0.08) * image_size >= SMALLEST_CROP else 0.75

