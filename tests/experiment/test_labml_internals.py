"""
The private part of labml that `experiments/runner/labml_internals.py` relies on
is still there: an upgrade fails here, by name, instead of in the middle of a
run. And the public calls the launcher uses instead of labml's internals do what
it needs: configs without a run folder, and the folder of the run it created.
"""

import io
import time
import sys
from contextlib import redirect_stdout

from cifar10_testdata import ROOT

sys.path.insert(0, str(ROOT))
from experiments.runner import labml_internals  # noqa: E402


def test_labml_is_the_version_whose_internals_we_checked():
    from importlib.metadata import version
    # Another version: check `labml_internals.py` against its source, then change this
    assert version('labml') == '0.5.3'


def test_console_destinations_are_where_we_replace_them():
    from labml.internal.logger import logger_singleton
    console = logger_singleton()
    # The name-mangled list of destinations that `configure_console` swaps
    assert isinstance(console._Logger__destinations, list)
    saved = console._Logger__destinations
    try:
        out = io.StringIO()
        with redirect_stdout(out):
            labml_internals.configure_console(is_main=True)
            from labml import logger
            logger.log('first line')
            logger.log([('coloured', '\x1b[31m'), ' line'])
        # Standard output was a `StringIO`, not a terminal: finished lines, no colours
        assert out.getvalue().splitlines() == ['first line', 'coloured line']
        labml_internals.configure_console(is_main=False)
        out = io.StringIO()
        with redirect_stdout(out):
            logger.log('a line from another process')
        assert out.getvalue() == ''
    finally:
        console._Logger__destinations = saved


def test_run_path_and_configs_without_an_experiment(tmp_path):
    from labml import experiment, lab
    from labml.configs import BaseConfigs
    from experiments.runner import launch

    class Small(BaseConfigs):
        width: int = 3
        height: int = 4

    lab.configure({'experiments_path': str(tmp_path)})
    c = Small()
    # What the processes after the first, and `--evaluate`, do: no run folder
    experiment.evaluate()
    experiment.configs(c, {'width': 5})
    assert (c.width, c.height) == (5, 4)
    assert list(tmp_path.iterdir()) == []

    experiment.create(name='internals', writers=set())
    path = launch.run_path_of('internals')
    assert path.parent.name == 'internals' and path.parent.parent == tmp_path
    with experiment.start():
        assert (path / 'run.yaml').is_file()


def test_stop_file_writers_ends_the_thread_that_finish_never_stopped(tmp_path):
    from labml.internal.tracker.writers.file import FileWriterThread, Writer
    writer = Writer(tmp_path / 'log.jsonl')
    # The first flush starts labml's thread; it is not a daemon, so Python
    # would wait for it at exit, and only `finish()` ends it
    writer.flush()
    thread = writer.thread
    assert isinstance(thread, FileWriterThread) and not thread.daemon
    time.sleep(0.2)
    assert thread.is_alive()
    labml_internals.stop_file_writers(timeout=5)
    assert not thread.is_alive()
    assert (tmp_path / 'log.jsonl').read_text().count('\n') == 1
