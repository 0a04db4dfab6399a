"""
---
title: How a run goes
summary: >
  The run machinery every recipe shares: the command line, the trainer, the
  meters, the launcher, devices and processes, runs and checkpoints, reports.
---

# How a run goes

A recipe is a `Configs` class and a call to `launch`. The launcher reads the
command line, decides what the run does (train, resume or evaluate), sets up
the device and the processes, and only then makes the configs. The trainer runs
the epochs and writes checkpoints; the meter counts loss and accuracy for every
pass; the reports are what a run leaves for a reader. Each has its page, in the
order of a run:

* [Errors for the user](errors.html): `UserError`, one line and a non-zero exit.
* [The command line](cli.html): flags derived from a `Configs` class.
* [The trainer](trainer.html): the shared settings, the optimizer, the epoch loop.
* [Starting, resuming and evaluating a run](launch.html): the `main` of every experiment.
* [Loss and accuracy](metrics.html): one meter for training, testing and `--evaluate`.
* [Reports](reports.html): `summary.json`, plots, per-class accuracy and the confusion matrix.
* [Training fast](speed.html): the speed settings and the training step.
* [Devices and distributed training](distributed.html): the device, `torchrun` and DistributedDataParallel.
* [Runs, checkpoints and exact resume](runs.html): the run folder and the checkpoint.
* [What we use of labml's internals](labml_internals.html): the one private piece, and why.
* [Reporting to the dashboard](dashboard_client.html): what `--dashboard` does.

## Who imports whom

Imports only go downward; there are no cycles.

* `errors` imports nothing; `speed` and `labml_internals` only torch and labml;
  `dashboard_client` only labml.
* `cli` imports `errors`.
* `distributed` imports `errors`.
* `runs` imports `errors` and the package's atomic writer.
* `metrics` imports `speed`.
* `reports` imports `metrics` and the atomic writer.
* `trainer` imports `cli`, `runs`, `speed`, `distributed`, `metrics` and `reports`.
* `launch` imports `cli`, `dashboard_client`, `distributed`, `labml_internals`,
  `reports`, `runs`, `trainer`, `errors` and the atomic writer.

The recipes import `launch`, `trainer` (their base class and checks), `cli` (the
checks of their own settings) and `errors`; the dashboard imports
`dashboard_client`'s address.
"""
