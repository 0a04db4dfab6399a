"""
---
title: Data sets
summary: Reading the data sets of the recipes and augmenting their batches.
---

# Data sets

* [CIFAR-10 data](cifar10_data.html): reading the data set and the two augmentation pipelines.
* [Batched data augmentation](gpu_augment.html): flip and RandAugment for a whole batch at once.
* [Image folders](imagefolder_data.html): reading and checking a folder per class, and
  the transforms.

`cifar10_data` and `imagefolder_data` import the runner's
[`UserError`](../runner/errors.html#UserError) for a data set a user can fix;
`gpu_augment` imports only torch. The recipes import all three.
"""
