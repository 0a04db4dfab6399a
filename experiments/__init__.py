"""
---
title: Experiments
summary: The recipes that train and evaluate the model; these files are run as scripts, not installed.
---

# Experiments

From the root of a clone, install the project and what its experiments use first:
`python3 -m pip install -e ".[experiment]"`.

The recipes, each a page that reads on its own:

* [ConvMixer on CIFAR-10](cifar10.html): the recipe, `python experiments/cifar10.py`.
* [ConvMixer on ImageNet and image folders](imagenet.html): evaluate the published
  models, fine-tune on your own images, `python experiments/imagenet.py`.
* [The ImageNet experiment's recipes](imagenet_recipes.html): fine-tuning and from
  scratch, their schedules, the crop scale by image size.
* [What the network learned, as pictures](filters.html): `filters.png`, a trained model's kernels.
* [labml's dashboard](dashboard/__init__.html): watch runs as they train, on your machine,
  `python -m experiments.dashboard`.

What they stand on lives in two folders below them:

* [the data](datasets/__init__.html): reading CIFAR-10 and image folders, and
  augmenting batches;
* [the runner](runner/__init__.html): how a run goes, from the command line to the
  epoch loop, the checkpoints and the reports, shared by every recipe.

Imports only go downward: a recipe imports `datasets` and `runner`; `datasets`
imports only the runner's [errors](runner/errors.html); the runner imports
neither.

This file makes the folder a package, so the modules can import each other as
`experiments.runner.trainer` and so on.
"""
