"""
---
title: Atomic writes
summary: >
  The one way this project writes a file: into a temporary file beside it,
  flushed to the disk, then renamed over it, so that no reader ever sees half
  a file.
---

# Atomic writes

A download, a checkpoint, a summary or a plot may be interrupted at any moment:
`Ctrl+C`, `kill -9`, a full disk, a lost connection. Every file of the project
is therefore written the same way: to a temporary file in the same folder, which
is flushed to the disk and then renamed to its final name. A rename within a
folder is atomic, so the final name always holds either the old file or the
whole new one, and an interrupted write leaves no temporary file behind. A
process killed in the middle of a write cannot remove its temporary file, so
its name holds the process id: the [run machinery](../experiments/runner/runs.html#remove_stale_temps)
removes those of dead processes. A full disk is reported as one `OSError`
that names the file, whatever the writer raised.
"""

import errno
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], None]):
    """Call `write(file)` on a temporary file next to `path`, then move it into place."""
    path = Path(path)
    # The temporary name holds our process id: a later run can tell the file
    # of a killed process (`.checkpoint.pt.<pid>.<random>.tmp`) from a live one's
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.{os.getpid()}.',
                                   suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except Exception as e:
        # A full disk inside a writer (`torch.save` reports it as a
        # `RuntimeError`): say so, with the file's name, as one `OSError`
        full = _disk_full(e)
        if full is None:
            raise
        raise OSError(full.errno, f'no space left to write {path.name}', str(path)) from e
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    # Make the rename itself durable
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _disk_full(error: BaseException):
    """The `OSError` of a full disk (or quota) in `error` or what caused it, if any."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        error = error.__cause__ or error.__context__
    return None


def atomic_write_text(path: Path, text: str):
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
