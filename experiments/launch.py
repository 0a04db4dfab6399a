"""
---
title: Starting, resuming and evaluating a run
summary: >
  The `main` of every experiment: read the command line, then start a new run,
  continue one with --resume, evaluate one with --evaluate or evaluate the
  starting weights with --eval-only; errors a user can fix are one line.
nav_order: 8
---

# Starting, resuming and evaluating a run

An experiment's `main` is one call, [`launch`](#launch), with its `Configs`
class. It adds the flags that are about runs rather than settings:

| flag | what |
|---|---|
| `--set KEY=VALUE` | any setting, by its key |
| `--name NAME` | the experiment name, the folder under `logs/` |
| `--logs-dir DIR` | where runs are written (default: the project's `logs/`) |
| `--resume RUN_UUID` | continue a run from its last checkpoint |
| `--evaluate RUN_UUID` | evaluate a run's last checkpoint on the test set |
| `--eval-only` | evaluate the starting weights and stop (experiments that offer it) |
| `--weights-digest DIR` | write each process's SHA-256 of the final weights to `DIR/rank<N>.sha256` |

A resumed run keeps the settings it was started with; it may change only where
things are on this machine (`data_dir`, `device_name`, `num_workers`). An
expected failure, a wrong value, missing data, an unknown run, is one line on
standard error and a non-zero exit, never a traceback; `Ctrl+C` says how to
continue.

An experiment passes what is particular to it: its `checks` of single values,
a `check_settings` function for rules that involve several settings (it sees
the values with the defaults filled in, the ones given on the command line,
and the parsed flags), and `eval_only=True` when it starts from weights worth
evaluating on their own (pretrained ones, a weights file).
"""

import argparse
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import torch

from labml import experiment, lab, logger

from experiments import cli, distributed, filters, labml_internals, reports, runs
from experiments.cli import UserError
from experiments.trainer import TrainerConfigs, resolve_device

# Settings a resumed run may change: where things are, not what is computed
RESUME_MAY_CHANGE = {'data_dir', 'device_name', 'num_workers'}


# `check_settings(settings, given, args)`: raises a `UserError` for values
# that do not go together
SettingsCheck = Callable[[Dict[str, Any], Dict[str, Any], argparse.Namespace], None]


def launch(configs_class: type, *, name: str, description: str,
           checks: Dict[str, Sequence[cli.Check]], argv: Optional[List[str]] = None,
           check_settings: Optional[SettingsCheck] = None, eval_only: bool = False):
    """Run the experiment's command line and exit with its status."""
    prog = f'{name}.py'
    try:
        code = main(configs_class, name=name, prog=prog, description=description,
                    checks=checks, argv=argv, check_settings=check_settings,
                    eval_only=eval_only)
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr, flush=True)
        code = e.exit_code
    except KeyboardInterrupt:
        print(f"{prog}: interrupted; the last finished epoch is saved, "
              "continue with --resume RUN_UUID", file=sys.stderr, flush=True)
        code = 130
    sys.exit(code)


def build_parser(configs_class: type, prog: str, description: str,
                 checks: Dict[str, Sequence[cli.Check]],
                 eval_only: bool = False) -> argparse.ArgumentParser:
    parser = cli.build_parser(configs_class, prog, description, checks)
    parser.add_argument('--name', default=None,
                        help=f'experiment name, the folder under logs/ (default {prog[:-3]})')
    parser.add_argument('--logs-dir', default=None,
                        help="where runs are written (default: the project's logs/)")
    parser.add_argument('--resume', metavar='RUN_UUID',
                        help='continue a run from its last checkpoint')
    parser.add_argument('--evaluate', metavar='RUN_UUID',
                        help="evaluate a run's last checkpoint on the test set")
    if eval_only:
        parser.add_argument('--eval-only', action='store_true',
                            help='evaluate the starting weights on the test set and '
                                 'stop; writes summary.json in a new run')
    parser.add_argument('--weights-digest', metavar='DIR', default=None,
                        help='write the SHA-256 of the final weights of each process '
                             'to DIR/rank<N>.sha256')
    return parser


def parse_overrides(args: argparse.Namespace, configs_class: type,
                    checks: Dict[str, Sequence[cli.Check]], world_size: int,
                    check_settings: Optional[SettingsCheck] = None) -> Dict[str, Any]:
    """The settings from the command line, checked, including the checks across settings."""
    values = cli.parse_settings(args, configs_class, {**checks, **RUN_CHECKS})
    defaults = {key: s.default for key, s in cli.settings_of(configs_class).items()}
    settings = {**defaults, **values}
    if settings['batch_size'] % world_size:
        raise UserError(f"batch_size {settings['batch_size']} must be divisible by the "
                        f"number of processes, {world_size}", 2)
    # A resumed or evaluated run brings its own settings, checked when it started
    if check_settings is not None and not (args.resume or args.evaluate):
        check_settings(settings, values, args)
    return values


# ### Checks of where things are

def _absolute_path(key: str, value: str) -> str:
    # Stored with the run, so make it independent of the current folder
    return str(Path(value).expanduser().resolve()) if value else value


def _existing_device(key: str, value: str) -> str:
    try:
        device = resolve_device(value)
    except RuntimeError:
        raise UserError(f"unknown device {value!r}: use auto, cpu, cuda or cuda:N", 2) from None
    if device.type not in ('cpu', 'cuda'):
        raise UserError(f"device must be auto, cpu or cuda, got {value!r}", 2)
    if device.type == 'cuda' and not torch.cuda.is_available():
        raise UserError("device cuda was asked for, but PyTorch sees no CUDA GPU", 2)
    if device.type == 'cuda' and device.index >= torch.cuda.device_count():
        raise UserError(f"there is no GPU {device}", 2)
    return value


RUN_CHECKS = {'data_dir': (_absolute_path,), 'device_name': (_existing_device,)}


# ## The command

def main(configs_class: type, *, name: str, prog: str, description: str,
         checks: Dict[str, Sequence[cli.Check]], argv: Optional[List[str]] = None,
         check_settings: Optional[SettingsCheck] = None,
         eval_only: bool = False) -> int:
    parser = build_parser(configs_class, prog, description, checks, eval_only)
    args = parser.parse_args(argv)
    if args.logs_dir:
        lab.configure({'experiments_path': str(Path(args.logs_dir).expanduser().resolve())})
    modes = [flag for flag, on in (('--resume', args.resume),
                                   ('--evaluate', args.evaluate),
                                   ('--eval-only', getattr(args, 'eval_only', False)))
             if on]
    if len(modes) > 1:
        raise UserError(f"{' and '.join(modes)} cannot be used together", 2)
    overrides = parse_overrides(args, configs_class, checks, distributed.world_size(),
                                check_settings)
    if args.name is not None and not re.fullmatch(r'\w[\w.-]*', args.name):
        raise UserError("--name must be a plain folder name (letters, digits, '_', '-', '.'), "
                        f"got {args.name!r}", 2)

    checkpoint = run_path = None
    name = args.name or name
    if args.resume or args.evaluate:
        run_path = runs.find_run(lab.get_experiments_path(), args.resume or args.evaluate)
        checkpoint = runs.read_checkpoint(run_path)
        changed = set(overrides) - RESUME_MAY_CHANGE
        if args.resume and changed:
            raise UserError("a resumed run keeps its own settings; "
                            f"drop {', '.join(sorted(changed))}", 2)
        # The run's own settings, plus where to find things on this machine
        overrides = {**checkpoint['overrides'],
                     **{k: v for k, v in overrides.items() if k in RESUME_MAY_CHANGE}}
        name = checkpoint['name']

    device = resolve_device(overrides.get('device_name', 'auto'))
    if device.type == 'cpu':
        # Numbers too small for a normal float ("subnormals") appear as the
        # learning rate and the gradients shrink; x86 CPUs compute with them
        # many times slower. Flushing them to zero costs no accuracy.
        torch.set_flush_denormal(True)
    if overrides.get('sync_bn') and device.type != 'cuda':
        raise UserError("--sync-bn needs CUDA GPUs: PyTorch's SyncBatchNorm does not run "
                        "on CPUs", 2)
    info = distributed.init_distributed(device)
    labml_internals.configure_console(info.is_main)
    finished = False
    try:
        if args.evaluate:
            status = evaluate_run(configs_class, run_path, checkpoint, overrides)
        elif getattr(args, 'eval_only', False):
            status = evaluate_start(configs_class, overrides, info, name)
        else:
            status = train(configs_class, args, overrides, info, name, run_path, checkpoint)
        finished = True
        return status
    finally:
        distributed.end_distributed(info, finished)


def _make_configs(configs_class: type, info: distributed.DistInfo,
                  overrides: Optional[Dict[str, Any]] = None) -> TrainerConfigs:
    """A `Configs` for this process; with `overrides`, seeded with theirs first."""
    if overrides is not None:
        default_seed = cli.settings_of(configs_class)['seed'].default
        runs.seed_everything(overrides.get('seed', default_seed))
    c = configs_class()
    # The process's place in a distributed run is a fact, not a setting
    c.dist_info = info
    return c


def _start_run(c: TrainerConfigs, overrides: Dict[str, Any], name: str,
               uuid: Optional[str] = None):
    """A labml run in the first process; the same configs, with no run, in the rest."""
    if c.dist_info.is_main:
        experiment.create(name=name, uuid=uuid, writers={'screen', 'file'})
        experiment.configs(c, dict(overrides))
    else:
        labml_internals.compute_configs(c, dict(overrides))


def _check_classes(c: TrainerConfigs, checkpoint: Dict[str, Any], run_path: Path):
    """A run's checkpoint fits only data with the classes it was trained on."""
    classes = list(c.data.classes)
    if checkpoint['classes'] != classes:
        trained = checkpoint['classes']
        raise UserError(f"run {run_path.name} was trained on {len(trained)} classes "
                        f"({', '.join(trained[:5])}, ...), the data now has "
                        f"{len(classes)} ({', '.join(classes[:5])}, ...)")


def _evaluate(c: TrainerConfigs) -> reports.Evaluation:
    return reports.evaluate(c.model, c.valid_loader, list(c.data.classes),
                            device=c.device, precision=c.precision,
                            channels_last=c.channels_last,
                            distributed=c.dist_info.enabled)


def evaluate_run(configs_class: type, run_path: Path, checkpoint: Dict[str, Any],
                 overrides: Dict[str, Any]) -> int:
    c = _make_configs(configs_class, distributed.DistInfo())
    experiment.evaluate()
    # No compilation for a single pass over the test set
    experiment.configs(c, {**overrides, 'compile': False})
    c.run_state.evaluating = c.run_state.restoring = True
    _check_classes(c, checkpoint, run_path)
    c.model.load_state_dict(checkpoint['model'])
    # What the trained layers look like, beside the numbers
    filters.draw_filters(c.model, run_path / 'filters.png')
    classes = list(c.data.classes)
    result = reports.write_evaluation(run_path, _evaluate(c), classes,
                                      checkpoint['epoch'], **c.summary_facts())
    logger.log(f"test accuracy {100 * result['test_accuracy']:.2f}% "
               f"({result['test_images']} images, epoch {result['epochs_trained']}); "
               + f"filters in {run_path / 'filters.png'}; "
               + (f"confusion matrix in {run_path / 'confusion_matrix.png'}"
                  if len(classes) <= reports.PLOTTED_CLASSES
                  else f"results in {run_path / 'evaluation.json'}"))
    return 0


def evaluate_start(configs_class: type, overrides: Dict[str, Any],
                   info: distributed.DistInfo, name: str) -> int:
    """
    ## `--eval-only`

    A new run whose model is built as for training, from its starting weights,
    and evaluated once on the test data; its `summary.json` has the numbers.
    """
    c = _make_configs(configs_class, info, overrides)
    _start_run(c, {**overrides, 'compile': False}, name)
    c.run_state.evaluating = True
    _ = c.data, c.model
    if info.is_main:
        with experiment.start():
            evaluation = _evaluate(c)
    else:
        evaluation = _evaluate(c)
    if info.is_main:
        run_path = labml_internals.current_run_path()
        classes = list(c.data.classes)
        summary = reports.write_evaluation_summary(
            run_path, evaluation, classes, changed_configs=overrides,
            device=str(c.device), world_size=info.world_size, **c.summary_facts())
        logger.log(f"top-1 {100 * summary['valid_accuracy']:.2f}%  "
                   f"top-5 {100 * summary['valid_top5']:.2f}%  on "
                   f"{summary['valid_images']} images; "
                   f"summary in {run_path / 'summary.json'}")
    return 0


def train(configs_class: type, args: argparse.Namespace, overrides: Dict[str, Any],
          info: distributed.DistInfo, name: str, run_path: Optional[Path],
          checkpoint: Optional[Dict[str, Any]]) -> int:
    c = _make_configs(configs_class, info, overrides)
    if info.is_main and run_path is not None:
        runs.release_stale_pid(run_path)
    _start_run(c, overrides, name, run_path.name if run_path is not None else None)

    state = c.run_state
    state.restoring = checkpoint is not None
    # Read the data first: a missing data set should stop the run before the
    # model is compiled
    _ = c.data
    if checkpoint is not None:
        _check_classes(c, checkpoint, run_path)
    state.overrides = dict(overrides)
    state.name = name
    if info.is_main:
        state.run_path = labml_internals.current_run_path()
    _ = c.model, c.train_model, c.optimizer, c.grad_scaler
    if checkpoint is not None:
        c.load_checkpoint(checkpoint)
        if info.is_main:
            logger.log(f"resuming run {run_path.name} after epoch {state.epoch}")
    if info.is_main:
        with experiment.start():
            c.run()
    else:
        c.run()

    if args.weights_digest:
        folder = Path(args.weights_digest)
        folder.mkdir(parents=True, exist_ok=True)
        runs.atomic_write_text(folder / f'rank{info.rank}.sha256',
                               distributed.weights_digest(c.model) + '\n')
    if info.is_main:
        if not state.history:
            raise UserError("nothing to summarise: the run has no finished epoch")
        summary = reports.write_summary(
            state.run_path, state.history, changed_configs=state.overrides,
            device=str(c.device), world_size=info.world_size,
            classes=list(c.data.classes), **state.valid_details, **c.summary_facts())
        logger.log(f"test accuracy {100 * summary['valid_accuracy']:.2f}% after "
                   f"{summary['epochs']} epochs; run folder {state.run_path}")
    return 0
