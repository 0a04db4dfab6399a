"""
---
title: A process for each path
summary: >
  The benchmark runs each training path in a process of its own and drives
  them in turns from the parent, so that no setting of one process changes
  the other path's speed.
nav_order: 6
---

# A process for each path

The [benchmark](train_speed.html) times the reference-style loop and ours in
turns, and for that both must be ready at once. If both lived in the
benchmark's own process they would share everything that belongs to a
process: the C library's heap and its settings (ours [keeps freed
memory](../experiments/runner/speed.html#keep_freed_memory), which would then make the
baseline faster too), oneDNN's caches of convolution kernels, and the thread
pools. So each path is built in a child process of its own, started with
`spawn` (a fresh interpreter: nothing is inherited, and CUDA works in it), and
the parent asks it for one unit of work at a time over a pipe. Only the parent
reads the clock; a round trip through the pipe costs well under a millisecond
against a training step of seconds on a CPU (and 20 steps a call on a GPU).

A child holds its model and memory while the others run; it does no work
between requests.
"""

import multiprocessing
import time
from typing import Any, Callable, Tuple

# The builder runs in the child and returns an object whose methods the parent
# calls by name: `run()`, which does one unit of work and returns the number of
# images it processed, and whatever else the benchmark asks of it.
Builder = Callable[..., Any]


def _serve(conn, start_method: str, build: Builder, build_args: Tuple):
    """The child: build the path, report how long that and a first call took, then serve requests."""
    # A spawned child would start its own children (data loader workers) with
    # `spawn` too, re-importing everything in each; start them as the parent's
    # scripts do (`fork` on Linux).
    multiprocessing.set_start_method(start_method, force=True)
    try:
        start = time.perf_counter()
        path = build(*build_args)
        path.run()
        conn.send(('ok', time.perf_counter() - start))
    except Exception as e:  # reported to the parent, which decides what to do
        conn.send(('error', f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"))
        return
    while True:
        try:
            method = conn.recv()
        except EOFError:  # the parent has gone
            break
        if method is None:
            break
        try:
            conn.send(('ok', getattr(path, method)()))
        except Exception as e:
            conn.send(('error', f"{type(e).__name__}: {e}"))


class PathProcess:
    """
    The parent's handle on one path: calling it runs one unit of work in the
    child; `call(name)` calls another method there. `first_call_s` is how long
    building the path and its first unit took (compilation included).
    """

    def __init__(self, name: str, build: Builder, *build_args):
        self.name = name
        context = multiprocessing.get_context('spawn')
        self._conn, child_conn = context.Pipe()
        # Not a daemon: a path's data loader starts worker processes of its own.
        self._process = context.Process(
            target=_serve, args=(child_conn, multiprocessing.get_start_method(), build, build_args),
            name=f'benchmark path: {name}')
        self._process.start()
        child_conn.close()
        try:
            self.first_call_s = self._reply()
        except RuntimeError:
            self.close()
            raise

    def _reply(self):
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the process of {self.name!r} ended (exit code {self._process.exitcode})") from None
        if status == 'error':
            raise RuntimeError(f"{self.name}: {value}")
        return value

    def call(self, method: str):
        self._conn.send(method)
        return self._reply()

    def __call__(self) -> int:
        return self.call('run')

    def close(self):
        if self._process.is_alive():
            try:
                self._conn.send(None)
            except (BrokenPipeError, OSError):
                pass
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
        self._conn.close()
