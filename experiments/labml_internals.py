"""
---
title: What we use of labml's internals
summary: >
  The three places where the experiments reach past labml's public API, each
  with the reason, in one module so that a labml upgrade breaks one page.
nav_order: 14
---

# What we use of labml's internals

labml's public API (`experiment`, `tracker`, `logger`, `monit`, `configs`)
covers almost everything the experiments do. Three things it does not offer,
and we take them from `labml.internal`:

1. **Plain output when standard output is not a terminal.** labml redraws one
   line with carriage returns, which is what a terminal needs for live progress.
   In a file or a CI log the redraws pile up into one enormous line. We swap
   labml's console for one that prints only finished lines, without colours
   ([`configure_console`](#configure_console)); in a distributed run, the
   processes other than the first print nothing.
2. **The folder of the current run**, to write the checkpoint and summary
   next to labml's own files ([`current_run_path`](#current_run_path)).
3. **Configurations without an experiment.** In a distributed run only the
   first process creates the labml experiment (one run folder, one set of
   logs), but every process needs the same computed configs
   ([`compute_configs`](#compute_configs)).

The project pins labml to one version; `tests/experiment/test_labml_internals.py`
fails when an upgrade removes any of these.
"""

import re
import sys
from pathlib import Path
from typing import Any, Dict

_ANSI = re.compile(r'\x1b\[[0-9;]*m')


class PlainLines:
    """A labml console destination that prints finished lines only."""

    def __init__(self, silent: bool):
        self.silent = silent

    def log(self, parts, *, is_new_line: bool, is_reset: bool):
        if self.silent or not is_new_line:
            return
        text = ''.join(p if isinstance(p, str) else p[0] for p in parts)
        text = _ANSI.sub('', text).replace('\r', '').strip()
        if text:
            print(text, flush=True)


def configure_console(is_main: bool):
    from labml.internal.logger import logger_singleton
    console = logger_singleton()
    if not is_main:
        # Only the first process speaks
        console._Logger__destinations = [PlainLines(silent=True)]
    elif not sys.stdout.isatty():
        console._Logger__destinations = [PlainLines(silent=False)]


def current_run_path() -> Path:
    from labml.internal.experiment import experiment_singleton
    return Path(experiment_singleton().run.run_path)


def compute_configs(configs: Any, values: Dict[str, Any]):
    """Apply `values` to `configs`, as `experiment.configs` does, without an experiment."""
    from labml.internal.configs.processor import ConfigProcessor
    ConfigProcessor(configs, values)
