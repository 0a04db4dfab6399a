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
whole new one, and an interrupted write leaves no temporary file behind.
"""

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable


def atomic_write_bytes(path: Path, write: Callable[[BinaryIO], None]):
    """Call `write(file)` on a temporary file next to `path`, then move it into place."""
    path = Path(path)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f'.{path.name}.', suffix='.tmp')
    try:
        with os.fdopen(handle, 'wb') as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    # Make the rename itself durable
    fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str):
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
