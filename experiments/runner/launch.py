"""
---
title: Starting, resuming and evaluating a run
summary: >
  The `main` of every experiment: read the command line, then start a new run,
  continue one with --resume, evaluate one with --evaluate or evaluate the
  starting weights with --eval-only; errors a user can fix are one line.
nav_order: 5
---

# Starting, resuming and evaluating a run

An experiment's `main` is one call, [`launch`](#launch), with its `Configs`
class. Besides a flag for every setting ([the command line](cli.html)), it
adds the flags about runs: `--name`, `--logs-dir`, `--resume RUN_UUID`,
`--evaluate RUN_UUID`, `--eval-only` (experiments that start from weights
worth evaluating), `--dashboard` and `--weights-digest`; `--help` says what
each does.

A resumed run keeps the settings it was started with; it may change only where
things are on this machine (`data_dir`, `device_name`, `num_workers`). Only the
experiment that made a run may resume or evaluate it; the refusal names the
right script. A finished run is not resumed: `--resume` says so, exits with 0
and changes nothing. An expected failure is one line on standard error and a
non-zero exit, never a traceback; `Ctrl+C` and SIGTERM stop the run alike,
with a line that says how to continue it (`--resume <its uuid>`).

Everything that decides what the run does comes first, from the command line
alone: the settings, the run to resume or evaluate and its checkpoint, the
[`RunMode`](trainer.html#RunMode), the device and the process's place in a
distributed run. Only then are the configs made, with all of it given to them.

## labml runs and distributed training

The first process creates the labml experiment with `experiment.create`: one run
folder with labml's `configs.yaml`, `run.yaml` and `log.jsonl`, to which the
trainer adds its checkpoint and summary. The other processes of a distributed
run compute the same configs under `experiment.evaluate()`, labml's experiment
that records nothing and creates no folder; so does `--evaluate`, which writes
into the run it evaluates.

labml's own distributed mode, `experiment.create(distributed_rank=...,
distributed_world_size=...)`, does not fit: it gives every process its own run
folder, `<uuid>.<rank>`, and needs the run's uuid before the process group
could share it, so `--resume RUN_UUID` would find no folder `<uuid>` and a
run's checkpoint would be spread over as many folders as processes. Its
`disable_screen` drops only the tracker's console writer, while our lines go
through labml's `logger`: the [console](labml_internals.html) quiets the other
processes instead.
"""

import argparse
import contextlib
import errno
import os
import re
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from torch import nn

from labml import experiment, lab, logger

from experiments.runner import cli, dashboard_client, distributed, labml_internals, reports, \
    runs, trainer
from experiments.runner.errors import UserError
from experiments.runner.trainer import Run, RunMode, TrainerConfigs
from labml_convmixer.atomic import atomic_write_text

# Settings a resumed run may change: where things are, not what is computed
RESUME_MAY_CHANGE = {'data_dir', 'device_name', 'num_workers'}

# `check_settings(settings, given, args)`: raises a `UserError` for values that
# do not go together; it sees the values with the defaults filled in, those
# given on the command line, and the parsed flags
SettingsCheck = Callable[[Dict[str, Any], Dict[str, Any], argparse.Namespace], None]
# `draw(model, path)`: a picture of the model, for `--evaluate`
Draw = Callable[[nn.Module, Path], None]


def launch(configs_class: type, *, name: str, description: str,
           checks: Dict[str, Sequence[cli.Check]], argv: Optional[List[str]] = None,
           check_settings: Optional[SettingsCheck] = None, eval_only: bool = False,
           draw: Optional[Draw] = None):
    """Run the experiment's command line and exit with its status."""
    prog = f'{name}.py'
    # SIGTERM (`kill`, a job scheduler) stops the run as Ctrl+C does
    signal.signal(signal.SIGTERM, _terminate)
    try:
        code = main(configs_class, name=name, prog=prog, description=description,
                    checks=checks, argv=argv, check_settings=check_settings,
                    eval_only=eval_only, draw=draw)
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt as e:
        print(f"{prog}: {interrupted_line()}", file=sys.stderr, flush=True)
        code = 128 + signal.SIGTERM if isinstance(e, Terminated) else 130
    finally:
        # labml may have left its log writer waiting (see labml_internals)
        labml_internals.stop_file_writers()
    sys.exit(code)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the run is, so that it unwinds as after Ctrl+C."""


def _terminate(signum, frame):
    raise Terminated()


# The folder of the run being trained, once it exists: what an interruption
# names for `--resume`
_training = {'run_path': None}


def interrupted_line() -> str:
    run = _training['run_path']
    if run is None:
        return "interrupted"
    if not (run / 'checkpoint.pt').exists():
        return f"interrupted before run {run.name} finished its first epoch; nothing to resume"
    return f"interrupted; the last finished epoch is saved, continue with --resume {run.name}"


def build_parser(configs_class: type, prog: str, description: str,
                 checks: Dict[str, Sequence[cli.Check]],
                 eval_only: bool = False) -> argparse.ArgumentParser:
    parser = cli.build_parser(configs_class, prog, description, checks)
    add = parser.add_argument
    add('--name', help=f'experiment name, the folder under logs/ (default {prog[:-3]})')
    add('--logs-dir', help="where runs are written (default: the project's logs/)")
    add('--resume', metavar='RUN_UUID', help='continue a run from its last checkpoint')
    add('--evaluate', metavar='RUN_UUID', help="evaluate a run's last checkpoint on the test set")
    if eval_only:
        add('--eval-only', action='store_true', help='evaluate the starting weights on the test '
                                                     'set and stop; writes summary.json in a new run')
    add('--dashboard', nargs='?', const=dashboard_client.DEFAULT_ADDRESS, metavar='ADDRESS',
        help="report the run to labml's dashboard as it trains (default address "
             f"{dashboard_client.DEFAULT_ADDRESS}; start it with python -m experiments.dashboard)")
    add('--weights-digest', metavar='DIR', help='write the SHA-256 of the final weights of '
                                                'each process to DIR/rank<N>.sha256')
    return parser


def _absolute_path(key: str, value: str) -> str:
    # Stored with the run, so make it independent of the current folder
    return str(Path(value).expanduser().resolve()) if value else value


# Checks of where things are
RUN_CHECKS = {'data_dir': (_absolute_path,), 'device_name': (distributed.check_device_name,)}


def parse_overrides(args: argparse.Namespace, configs_class: type,
                    checks: Dict[str, Sequence[cli.Check]], world_size: int,
                    check_settings: Optional[SettingsCheck] = None) -> Dict[str, Any]:
    """The settings from the command line, checked, including the checks across settings."""
    values = cli.parse_settings(args, configs_class, {**checks, **RUN_CHECKS})
    settings = {**{k: s.default for k, s in cli.settings_of(configs_class).items()}, **values}
    if settings['batch_size'] % world_size:
        raise UserError(f"batch_size {settings['batch_size']} must be divisible by the "
                        f"number of processes, {world_size}", 2)
    # A resumed or evaluated run brings its own settings, checked when it started
    if check_settings is not None and not (args.resume or args.evaluate):
        check_settings(settings, values, args)
    return values


# ## The command

def main(configs_class: type, *, name: str, prog: str, description: str,
         checks: Dict[str, Sequence[cli.Check]], argv: Optional[List[str]] = None,
         check_settings: Optional[SettingsCheck] = None, eval_only: bool = False,
         draw: Optional[Draw] = None) -> int:
    args = build_parser(configs_class, prog, description, checks, eval_only).parse_args(argv)
    if args.logs_dir:
        lab.configure({'experiments_path': str(Path(args.logs_dir).expanduser().resolve())})
    start_eval = getattr(args, 'eval_only', False)
    modes = [flag for flag, on in (('--resume', args.resume), ('--evaluate', args.evaluate),
                                   ('--eval-only', start_eval)) if on]
    if len(modes) > 1:
        raise UserError(f"{' and '.join(modes)} cannot be used together", 2)
    overrides = parse_overrides(args, configs_class, checks, distributed.world_size(),
                                check_settings)
    if args.name is not None and not re.fullmatch(r'\w[\w.-]*', args.name):
        raise UserError("--name must be a plain folder name (letters, digits, '_', '-', '.'), "
                        f"got {args.name!r}", 2)

    checkpoint = run_path = None
    run_name = args.name or name
    if args.resume or args.evaluate:
        run_path = runs.find_run(lab.get_experiments_path(), args.resume or args.evaluate)
        checkpoint = runs.read_checkpoint(run_path)
        runs.check_experiment(run_path, checkpoint, name,
                              '--resume' if args.resume else '--evaluate')
        changed = set(overrides) - RESUME_MAY_CHANGE
        if args.resume and changed:
            raise UserError("a resumed run keeps its own settings; "
                            f"drop {', '.join(sorted(changed))}", 2)
        # The run's own settings, plus where to find things on this machine
        overrides = {**checkpoint['overrides'],
                     **{k: v for k, v in overrides.items() if k in RESUME_MAY_CHANGE}}
        run_name = checkpoint['name']
        if args.resume and _finished(configs_class, checkpoint, run_path):
            print(f"{prog}: run {run_path.name} is finished ({checkpoint['epoch']} epochs); "
                  f"nothing to resume, nothing changed; its summary is "
                  f"{run_path / 'summary.json'}", flush=True)
            return 0
    mode = RunMode(evaluating=bool(args.evaluate or start_eval),
                   restoring=checkpoint is not None)
    # Every mode but `--evaluate` writes a run (`--evaluate` finds a place of its own)
    folder = run_path or lab.get_experiments_path()
    if not args.evaluate and (problem := unwritable(folder)):
        raise UserError(f"--logs-dir {folder}: cannot write there ({problem}); "
                        f"choose a folder you can write to", 2)

    device = distributed.setup_device(overrides.get('device_name', 'auto'),
                                      overrides.get('sync_bn', False))
    info = distributed.init_distributed(device)
    labml_internals.configure_console(info.is_main)
    run = Run(configs_class, overrides, mode, info, name, run_name, run_path, checkpoint)
    finished = False
    try:
        status = evaluate(run, draw) if mode.evaluating else train(run, args)
        finished = True
        return status
    except Exception as e:
        problem = storage_problem(e, run_name, training=not mode.evaluating)
        if problem is None:
            raise
        raise UserError(problem) from None
    finally:
        distributed.end_distributed(info, finished)


def storage_problem(error: BaseException, name: str, training: bool) -> Optional[str]:
    """
    ## Full and read-only storage

    A write that fails because the disk is full, or the folder is read-only,
    is no bug: the user can fix it. It may surface anywhere, in our writes or
    labml's, and often chained under another exception (labml's `finish()`
    raises its own while recording the crash), so the whole chain is searched.
    The line names the folder; the last checkpoint is never touched by a
    failed write (writes are [atomic](../../labml_convmixer/atomic.html)), so
    the run can continue from it.
    """
    problems = {errno.ENOSPC: 'no space left on its device',
                errno.EDQUOT: 'the disk quota is used up',
                errno.EROFS: 'it is on read-only storage',
                errno.EACCES: 'it cannot be written (permission denied)'}
    while error is not None and not (isinstance(error, OSError) and error.errno in problems):
        error = error.__cause__ or error.__context__
    if error is None:
        return None
    try:
        run = run_path_of(name)
    except Exception:
        # No labml run yet
        run = None
    folder = Path(error.filename).parent if error.filename else run or lab.get_experiments_path()
    line = f"cannot write to {folder}: {problems[error.errno]}"
    fix = 'make room' if error.errno in (errno.ENOSPC, errno.EDQUOT) else 'make it writable'
    if training and run is not None and (run / 'checkpoint.pt').exists():
        return f"{line}; the last checkpoint is kept: {fix}, then continue with " \
               f"--resume {run.name}"
    return f"{line}; {fix} or choose another --logs-dir"


def unwritable(folder: Path) -> Optional[str]:
    """
    Why `folder` (made if need be) takes no file, or `None`: tried before any
    data is read, so read-only storage is one line within a second, not a
    traceback after the data set has loaded.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=folder, prefix='.write-test.')
        os.close(handle)
        os.remove(probe)
        return None
    except OSError as e:
        return e.strerror


def _finished(configs_class: type, checkpoint: Dict[str, Any], run_path: Path) -> bool:
    """
    All epochs trained and the summary written. A run that trained its last
    epoch but stopped before its summary resumes to write it: the checkpoint
    keeps what the summary needs.
    """
    epochs = checkpoint['overrides'].get('epochs', cli.settings_of(configs_class)['epochs'].default)
    return checkpoint['epoch'] >= epochs and (run_path / 'summary.json').is_file()


def make_configs(run: Run, overrides: Dict[str, Any], new_run: bool,
                 dashboard: Optional[str] = None) -> TrainerConfigs:
    """
    The configs of this process, seeded first. With `new_run`, the first
    process creates (or, resuming, reopens) the labml run, which also reports
    to the dashboard at `dashboard` when one answers there
    ([`connect`](dashboard_client.html#connect)); the rest compute the same
    configs with no run.
    """
    default_seed = cli.settings_of(run.configs_class)['seed'].default
    runs.seed_everything(overrides.get('seed', default_seed))
    c = run.configs_class()
    c.dist_info, c.run_mode = run.info, run.mode
    if new_run and run.info.is_main:
        writers = {'screen', 'file'}
        if dashboard and dashboard_client.connect(dashboard):
            writers.add('app')
        experiment.create(name=run.name, uuid=run.path.name if run.path else None,
                          writers=writers)
    else:
        experiment.evaluate()
    experiment.configs(c, dict(overrides))
    classes = list(c.data.classes)
    # A run's checkpoint fits only data with the classes it was trained on
    if run.checkpoint is not None and run.checkpoint['classes'] != classes:
        trained = run.checkpoint['classes']
        raise UserError(f"run {run.path.name} was trained on {len(trained)} classes "
                        f"({', '.join(trained[:5])}, ...), the data now has "
                        f"{len(classes)} ({', '.join(classes[:5])}, ...)")
    return c


def run_path_of(name: str) -> Path:
    """The folder of the labml run this process created."""
    return lab.get_experiments_path() / name / experiment.get_uuid()


def evaluate(run: Run, draw: Optional[Draw]) -> int:
    """
    ## `--evaluate` and `--eval-only`

    One pass over the test data, without compiling the model. `--evaluate`
    loads a run's checkpoint and writes `evaluation.json`, the confusion matrix
    and the picture of the model into that run's folder, saying so when they
    replace an earlier evaluation's; a run on read-only storage gets them in a
    folder of the system's temporary directory named after the run, which the
    last line names. `--eval-only` evaluates the starting weights in a new run,
    whose `summary.json` has the numbers.
    """
    new_run = run.checkpoint is None
    c = make_configs(run, {**run.overrides, 'compile': False}, new_run)
    if not new_run:
        c.model.load_state_dict(run.checkpoint['model'])
    classes = list(c.data.classes)
    start = time.perf_counter()
    with experiment.start() if run.info.is_main and new_run else contextlib.nullcontext():
        result = c.evaluate()
    if not run.info.is_main:
        return 0
    reports.log_pass(result, time.perf_counter() - start)
    facts = c.summary_facts()
    if new_run:
        path = run_path_of(run.name)
        summary = reports.write_evaluation_summary(
            path, result, classes, changed_configs=run.overrides, device=str(c.device),
            world_size=run.info.world_size, **facts)
        logger.log(f"top-1 {100 * summary['valid_accuracy']:.2f}%  "
                   f"top-5 {100 * summary['valid_top5']:.2f}%  on "
                   f"{summary['valid_images']} images; summary in {path / 'summary.json'}")
        return 0
    out = run.path
    if unwritable(out):
        out = Path(tempfile.gettempdir()) / 'labml_convmixer' / f'{run.name}-{run.path.name}'
        out.mkdir(parents=True, exist_ok=True)
        logger.log(f"run folder {run.path} is read-only: the evaluation goes to {out}")
    elif (out / 'evaluation.json').exists():
        logger.log(f"replacing the earlier evaluation in {out}")
    pictures = ''
    if draw is not None:
        draw(c.model, out / 'filters.png')
        pictures = f"filters in {out / 'filters.png'}; "
    numbers = reports.write_evaluation(out, result, classes, run.checkpoint['epoch'],
                                       run_uuid=run.path.name, **facts)
    logger.log(f"test accuracy {100 * numbers['test_accuracy']:.2f}% "
               f"({numbers['test_images']} images, epoch {numbers['epochs_trained']}); "
               + pictures
               + (f"confusion matrix in {out / 'confusion_matrix.png'}"
                  if len(classes) <= reports.PLOTTED_CLASSES
                  else f"results in {out / 'evaluation.json'}"))
    return 0


def train(run: Run, args: argparse.Namespace) -> int:
    """
    ## Training, new or resumed

    The data is read first: a missing data set stops the run before the model
    is built and compiled.
    """
    if run.info.is_main and run.path is not None:
        runs.release_stale_pid(run.path)
        runs.remove_stale_temps(run.path)
    c = make_configs(run, run.overrides, new_run=True, dashboard=args.dashboard)
    if run.info.is_main:
        run.path = _training['run_path'] = run_path_of(run.name)
    if run.checkpoint is not None:
        runs.load_checkpoint(c, run)
        if run.info.is_main:
            logger.log(f"resuming run {run.path.name} after epoch {run.epoch}")
    with experiment.start() if run.info.is_main else contextlib.nullcontext():
        trainer.train(c, run)

    if args.weights_digest:
        folder = Path(args.weights_digest)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / f'rank{run.info.rank}.sha256',
                          distributed.weights_digest(c.model) + '\n')
    if not run.info.is_main:
        return 0
    if not run.history:
        raise UserError("nothing to summarise: the run has no finished epoch")
    summary = reports.write_summary(
        run.path, run.history, changed_configs=run.overrides, device=str(c.device),
        world_size=run.info.world_size, classes=list(c.data.classes), **run.valid_details,
        **c.summary_facts())
    logger.log(f"test accuracy {100 * summary['valid_accuracy']:.2f}% after "
               f"{summary['epochs']} epochs; run folder {run.path}")
    return 0
