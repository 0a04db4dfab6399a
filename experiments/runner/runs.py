"""
---
title: Runs, checkpoints and exact resume
summary: >
  Where a run lives, atomic writes, the checkpoint written after every epoch
  and the random number generators that make a resumed run repeat the numbers
  of one that never stopped.
nav_order: 10
---

# Runs, checkpoints and exact resume

Each run has a folder, `logs/<name>/<run uuid>/`, that labml creates with its
`configs.yaml`, `run.yaml` and `log.jsonl`. The trainer adds `checkpoint.pt`
after every epoch and, at the end, `summary.json` and `metrics.png`. The
checkpoint records which experiment made the run, and only that experiment's
script may `--resume` or `--evaluate` it
([`check_experiment`](#check_experiment)).

A run that stopped, even with `kill -9` in the middle of an epoch, goes on
with `--resume RUN_UUID` from its last complete epoch, and on a CPU with a
fixed seed it then gives *exactly* the numbers of a run that was never
interrupted. Two things make that possible:

1. **Nothing is ever half written.** Every file goes to a temporary file in
   the same folder, is flushed to the disk and renamed over the old one
   ([`atomic_write_bytes`](../../labml_convmixer/atomic.html#atomic_write_bytes)). A rename is atomic, so a
   crash at any moment leaves the previous checkpoint or the new one. A full
   disk, too: the run stops with one line naming the folder, and resumes from
   the checkpoint before. A process killed during a write leaves its
   temporary file; resuming the run removes it
   ([`remove_stale_temps`](#remove_stale_temps)).
2. **The checkpoint holds every state that the next epoch reads**: the
   model's weights and batch-norm statistics, the optimizer's moments, the
   gradient scaler, the position in the schedule (the epoch; the learning rate
   is a function of it), and the state of every random number generator of
   every process: Python's, NumPy's, PyTorch's CPU and CUDA generators. The
   augmentations, the data loader's worker seeds and the shuffle then continue
   where they were.
"""

import os
import random
import re
from pathlib import Path
from typing import Any, Dict

import numpy as np
import torch

from experiments.runner.errors import UserError
from labml_convmixer.atomic import atomic_write_bytes

# ## Random number generators

def seed_everything(seed: int):
    random.seed(seed)
    np.random.seed(seed % 2 ** 32)
    torch.manual_seed(seed)


def rng_state() -> Dict[str, Any]:
    """The state of every generator of this process, in types `weights_only` loading accepts."""
    state = {'python': random.getstate(), 'torch': torch.get_rng_state()}
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state['numpy'] = (kind, keys.tolist(), pos, has_gauss, gauss)
    if torch.cuda.is_available():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]):
    random.setstate(state['python'])
    kind, keys, pos, has_gauss, gauss = state['numpy']
    np.random.set_state((kind, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))
    torch.set_rng_state(state['torch'])
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


# ## The checkpoint
#
# A plain dictionary of tensors, numbers, strings and lists, so that it loads
# with `torch.load(..., weights_only=True)`: loading it runs no code from the
# file. `c` is the run's [configs](trainer.html#TrainerConfigs), `run` its
# [`Run`](trainer.html#Run).

def save_checkpoint(c, run):
    """Every process gives its generators' states, in the order of the ranks; the first writes."""
    rngs = [rng_state()]
    if c.dist_info.enabled:
        rngs = [None] * c.dist_info.world_size
        torch.distributed.all_gather_object(rngs, rng_state())
    if not c.dist_info.is_main:
        return
    checkpoint = {
        'epoch': run.epoch, 'model': c.model.state_dict(),
        'optimizer': c.optimizer.state_dict(),
        'grad_scaler': c.grad_scaler.state_dict() if c.grad_scaler is not None else None,
        'history': run.history, 'rng': rngs,
        # The settings the run was started with: `--resume` and `--evaluate` reuse them
        'overrides': run.overrides, 'name': run.name, 'classes': list(c.data.classes),
        # The experiment (script) that made the run: only it may resume or evaluate it
        'experiment': run.experiment,
        # The last test pass's images and per-class accuracy, for the summary
        'valid_details': run.valid_details,
    }
    atomic_write_bytes(run.path / 'checkpoint.pt', lambda f: torch.save(checkpoint, f))


def load_checkpoint(c, run):
    """
    Weights, optimizer and scaler, the epoch and history, and the generators
    of this process. With another number of processes than the run had, the
    run goes on, but its random draws no longer match the original's.
    """
    checkpoint = run.checkpoint
    c.model.load_state_dict(checkpoint['model'])
    c.optimizer.load_state_dict(checkpoint['optimizer'])
    if c.grad_scaler is not None and checkpoint['grad_scaler'] is not None:
        c.grad_scaler.load_state_dict(checkpoint['grad_scaler'])
    info = c.dist_info
    if len(checkpoint['rng']) == info.world_size:
        set_rng_state(checkpoint['rng'][info.rank])
    else:
        seed_everything(c.seed + 1000 * checkpoint['epoch'] + info.rank)
    run.epoch = checkpoint['epoch']
    run.history = list(checkpoint['history'])
    run.valid_details = dict(checkpoint.get('valid_details', {}))


# ## Finding a run again

def find_run(experiments_path: Path, uuid: str) -> Path:
    """The folder of run `uuid`, under any experiment name."""
    if not re.fullmatch(r'[0-9a-zA-Z_-]+', uuid):
        raise UserError(f"{uuid!r} is not a run uuid", 2)
    matches = sorted(experiments_path.glob(f'*/{uuid}')) if experiments_path.is_dir() else []
    if not matches:
        raise UserError(f"no run {uuid} in {experiments_path}")
    return matches[0]


def read_checkpoint(run_path: Path) -> Dict[str, Any]:
    path = run_path / 'checkpoint.pt'
    if not path.is_file():
        raise UserError(f"run {run_path.name} has no checkpoint yet ({path} is missing)")
    try:
        return torch.load(path, map_location='cpu', weights_only=True)
    except Exception as e:
        raise UserError(f"{path}: cannot read the checkpoint ({e})") from None


def check_experiment(run_path: Path, checkpoint: Dict[str, Any], experiment: str, flag: str):
    """
    A run belongs to the experiment that made it: another one would read its
    settings with its own recipe (ImageNet's crop and mean on CIFAR-10
    images) and write over its files. A checkpoint without the record is
    taken as it is.
    """
    made_by = checkpoint.get('experiment', experiment)
    if made_by != experiment:
        raise UserError(f"run {run_path.name} was made by {made_by}.py, not {experiment}.py; "
                        f"use python experiments/{made_by}.py {flag} {run_path.name}", 2)


def release_stale_pid(run_path: Path):
    """
    labml refuses to start a run whose `run.pid` exists, and a killed run
    leaves one behind. We remove it, unless its process is still alive: two
    processes must never write the same run.
    """
    pid_path = run_path / 'run.pid'
    if not pid_path.exists():
        return
    try:
        pid = int(pid_path.read_text().strip())
    except ValueError:
        pid = None
    if pid is not None and pid != os.getpid() and _process_alive(pid):
        raise UserError(f"run {run_path.name} is still running (process {pid}); stop it first")
    pid_path.unlink()


def remove_stale_temps(run_path: Path):
    """
    Remove the temporary files (`.<name>.<pid>.<random>.tmp`) that a process
    killed in the middle of an [atomic write](../../labml_convmixer/atomic.html)
    left in the run folder; those of a live process stay.
    """
    for tmp in run_path.glob('.*.tmp'):
        match = re.fullmatch(r'\..+\.(\d+)\.[^.]+\.tmp', tmp.name)
        if match and not _process_alive(int(match.group(1))):
            tmp.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A killed process whose parent has not collected it yet is a zombie: dead
    try:
        with open(f'/proc/{pid}/stat') as f:
            return f.read().rsplit(')', 1)[1].split()[0] not in ('Z', 'X')
    except (OSError, IndexError):
        return True
