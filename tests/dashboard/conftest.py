"""
Fixtures for the dashboard's tests: the dashboard started as a user starts
it, and tiny CIFAR-10 runs that report to it (data in CIFAR-10's layout, as
the experiment tests make it).
"""

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / 'tests' / 'experiment'))

from cifar10_testdata import SCRIPT, TINY, write_dataset  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class Dashboard:
    """`python -m experiments.dashboard` in a subprocess, with its output read line by line."""

    def __init__(self, store: Path, port: int):
        self.store, self.port = store, port
        self.address = f'http://127.0.0.1:{port}'
        self.process = subprocess.Popen(
            [sys.executable, '-m', 'experiments.dashboard', '--port', str(port), '--store', str(store)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env=dict(os.environ, PYTHONUNBUFFERED='1'))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.stderr = []
        threading.Thread(target=lambda: self.stderr.extend(self.process.stderr), daemon=True).start()
        try:
            self.first_line = self.lines.get(timeout=60)
        except queue.Empty:
            self.process.kill()
            raise AssertionError(f"the dashboard did not start: {''.join(self.stderr)[-2000:]}")

    def _read(self):
        for line in self.process.stdout:
            self.lines.put(line.rstrip('\n'))

    def stop(self, sig=signal.SIGINT) -> int:
        """Ctrl-C, as a user stops it; its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=30)
        finally:
            self.process.kill()


@pytest.fixture(scope='session')
def synthetic_cifar(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp('dashboard_cifar'))


@pytest.fixture
def start_dashboard():
    """Start dashboards; whatever is still running at the end of the test is stopped."""
    started = []

    def start(store: Path, port: int = 0) -> Dashboard:
        dashboard = Dashboard(store, port or free_port())
        started.append(dashboard)
        return dashboard

    yield start
    for dashboard in started:
        dashboard.stop(signal.SIGKILL)


def start_run(address: str, data: Path, logs: Path, epochs: int) -> subprocess.Popen:
    """A tiny CIFAR-10 run started with `--dashboard ADDRESS`, as a user starts it."""
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), '--dashboard', address, '--data-dir', str(data),
         '--logs-dir', str(logs), '--epochs', str(epochs), *TINY],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env=dict(os.environ, PYTHONUNBUFFERED='1', OMP_NUM_THREADS='1'))
