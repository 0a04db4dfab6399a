"""
---
title: How a run goes
summary: >
  The run machinery every recipe shares: the command line, the trainer, the
  meters, the launcher, devices and processes, runs and checkpoints, reports.
---

# How a run goes

A recipe is a `Configs` class and a call to [`launch`](launch.html). The
launcher reads the [command line](cli.html), decides what the run does (train,
resume or evaluate), sets up the [device and the processes](distributed.html),
and only then makes the configs. The [trainer](trainer.html) runs the epochs
and writes [checkpoints](runs.html); the [meter](metrics.html) counts loss and
accuracy for every pass; the [reports](reports.html) are what a run leaves for
a reader. A user's mistake is one [`UserError`](errors.html) line.

Imports only go downward, with no cycles: `errors` imports nothing; `speed`,
`labml_internals` and `dashboard_client` only torch and labml; `cli`,
`distributed` and `runs` import `errors` (`runs` also the package's atomic
writer); `metrics` imports `speed`, and `reports` imports `metrics`; `trainer`
imports `cli`, `runs`, `speed`, `distributed`, `metrics`, `reports` and
`errors`; `launch` imports all but `speed` and `metrics`, which it reaches
through the trainer. The recipes import `launch`, `trainer`, `cli` and
`errors`; the dashboard imports `dashboard_client`'s address.
"""
