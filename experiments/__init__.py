"""
---
title: Experiments
summary: The training code that uses the model; these files are run as scripts, not installed.
---

# Experiments

The recipes come first, each followed by its data; the pages after them are
what the recipes stand on, each with one job, shared by every experiment.

* [ConvMixer on CIFAR-10](cifar10.html): the recipe, `python experiments/cifar10.py`.
* [CIFAR-10 data](cifar10_data.html): reading the data set and the two augmentation pipelines.
* [Batched data augmentation](gpu_augment.html): flip and RandAugment for a whole batch at once.
* [Training fast](speed.html): the speed settings and the training step.
* [ConvMixer on ImageNet and image folders](imagenet.html): evaluate the published
  models, fine-tune on your own images, `python experiments/imagenet.py`.
* [Image folders](imagefolder_data.html): reading and checking a folder per class, and
  the transforms.
* [The trainer](trainer.html): the shared settings, the epoch loop and the meters.
* [Starting, resuming and evaluating a run](launch.html): the `main` of every experiment.
* [The command line](cli.html): flags derived from a `Configs` class.
* [Runs, checkpoints and exact resume](runs.html): the run folder and atomic writes.
* [Distributed training](distributed.html): `torchrun` and DistributedDataParallel.
* [What the network learned, as pictures](filters.html): `filters.png`, a trained model's kernels.
* [Reports](reports.html): `summary.json`, plots, per-class accuracy and the confusion matrix.
* [What we use of labml's internals](labml_internals.html): the three private pieces, and why.
* [labml's dashboard](dashboard/__init__.html): watch runs as they train, on your machine,
  `python -m experiments.dashboard`.

This file makes the folder a package, so the modules can import each other as
`experiments.speed` and so on.
"""
