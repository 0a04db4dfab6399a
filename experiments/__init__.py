"""
---
title: Experiments
summary: The training code that uses the model; these files are run as scripts, not installed.
---

# Experiments

* [ConvMixer on CIFAR-10](cifar10.html): the main experiment, `python experiments/cifar10.py`.
* [Training fast](speed.html): the speed settings the experiment uses.
* [Batched data augmentation](gpu_augment.html): flip and RandAugment for a whole batch at once.

This file makes the folder a package, so the modules can import each other as
`experiments.speed` and so on.
"""
