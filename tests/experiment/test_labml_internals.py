"""
The private parts of labml that `experiments/labml_internals.py` relies on are
still there: an upgrade that removes one fails here, by name, instead of in the
middle of a run.
"""

import io
import sys
from contextlib import redirect_stdout

from cifar10_testdata import ROOT

sys.path.insert(0, str(ROOT))
from experiments import labml_internals  # noqa: E402


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
    from labml.internal.experiment import experiment_singleton
    from labml.internal.configs.processor import ConfigProcessor  # noqa: F401

    class Small(BaseConfigs):
        width: int = 3
        height: int = 4

    c = Small()
    labml_internals.compute_configs(c, {'width': 5})
    assert (c.width, c.height) == (5, 4)

    lab.configure({'experiments_path': str(tmp_path)})
    experiment.create(name='internals', writers=set())
    path = labml_internals.current_run_path()
    assert path == experiment_singleton().run.run_path
    assert path.parent.name == 'internals' and path.parent.parent == tmp_path
