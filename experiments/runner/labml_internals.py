"""
---
title: What we use of labml's internals
summary: >
  The one place where the experiments reach past labml's public API, with the
  reason, in one module so that a labml upgrade breaks one page.
nav_order: 11
---

# What we use of labml's internals

labml's public API (`experiment`, `tracker`, `logger`, `monit`, `configs`)
covers almost everything the experiments do (see the
[launcher](launch.html#labml-runs-and-distributed-training)). Two things it
does not offer, and we take them from `labml.internal`:

**Plain output when standard output is not a terminal.** labml redraws one line
with carriage returns, which is what a terminal needs for live progress. In a
file or a CI log the redraws pile up into one enormous line.
[`configure_console`](#configure_console) swaps labml's console for one that
prints only finished lines, without colours, and silences the processes after
the first of a distributed run. labml keeps its console's destinations in a
private, name-mangled list, `_Logger__destinations`, with no call to change it.

**A process that exits after a failed write.** labml's file writer sends
`log.jsonl` lines through a thread that is not a daemon, so Python waits for
it at exit, and it stops only when `finish()` tells it to. On a full disk
`finish()` raises while writing `run_log.jsonl`, before it gets there, and the
process would wait for ever. [`stop_file_writers`](#stop_file_writers) stops
every such thread before the launcher exits.

The project pins labml to one version; `tests/experiment/test_labml_internals.py`
fails on another, or when either of these no longer works.
"""

import re
import sys
import threading

# The codes labml writes around coloured text, left out of plain lines
_ANSI = re.compile(r'\x1b\[[0-9;]*m')


class PlainLines:
    """A labml console destination that prints finished lines only."""

    def log(self, parts, *, is_new_line: bool, is_reset: bool):
        if not is_new_line:
            return
        text = ''.join(p if isinstance(p, str) else p[0] for p in parts)
        text = _ANSI.sub('', text).replace('\r', '').strip()
        if text:
            print(text, flush=True)


def configure_console(is_main: bool):
    from labml.internal.logger import logger_singleton
    console = logger_singleton()
    if not is_main:
        # No destination: the processes after the first print nothing
        console._Logger__destinations = []
    elif not sys.stdout.isatty():
        console._Logger__destinations = [PlainLines()]


def stop_file_writers(timeout: float = 5.0):
    """Push labml's end marker, as `finish()` would have; a thread it stopped is gone."""
    from labml.internal.tracker.writers.file import FileWriterThread
    for thread in threading.enumerate():
        if isinstance(thread, FileWriterThread) and thread.is_alive():
            thread.push('done')
            thread.join(timeout)
