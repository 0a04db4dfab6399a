"""
Run an experiment on a disk that fills up: `python full_disk.py LOGS N SCRIPT ARGS...`
runs `SCRIPT ARGS...` normally until N checkpoints are written; the disk
fills up during the next checkpoint's write, and from then on every write
under `LOGS` fails with `ENOSPC`: the atomic writer's file (inside
`torch.save`) and every `open` for writing, labml's `log.jsonl` and
`run_log.jsonl` included.
"""

import builtins
import errno
import os
import runpy
import sys
from pathlib import Path

logs, full_after, script = Path(sys.argv[1]).resolve(), int(sys.argv[2]), sys.argv[3]
sys.argv = [script, *sys.argv[4:]]
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import labml_convmixer.atomic as atomic  # noqa: E402

real_write, real_open = atomic.atomic_write_bytes, builtins.open
written = {'checkpoints': 0, 'full': False}


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


class FullFile:
    """A file whose writes fail; everything else is the real file's."""

    def __init__(self, f):
        self.f = f

    def __getattr__(self, name):
        return no_space if name == 'write' else getattr(self.f, name)


def disk_is_full() -> bool:
    return written['full']


def atomic_write_bytes(path, write):
    if Path(path).name == 'checkpoint.pt':
        written['full'] = written['checkpoints'] >= full_after
        written['checkpoints'] += 1
    if disk_is_full():
        return real_write(path, lambda f: write(FullFile(f)))
    real_write(path, write)


def open_for_writing(file, mode='r', *args, **kwargs):
    if disk_is_full() and any(c in mode for c in 'wax') \
            and Path(str(file)).resolve().is_relative_to(logs):
        no_space()
    return real_open(file, mode, *args, **kwargs)


atomic.atomic_write_bytes = atomic_write_bytes
builtins.open = open_for_writing
runpy.run_path(script, run_name='__main__')
