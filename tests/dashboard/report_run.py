"""
Run a recipe as its `--dashboard ADDRESS` flag does:
`python tests/dashboard/report_run.py ADDRESS SCRIPT [ARGS...]`.

The flag calls `experiments.dashboard.connect(ADDRESS)` before the run is
created and, when it returns `True`, adds labml's `'app'` writer to the run's
writers; this file does the same from outside the recipe, then runs SCRIPT as
`python SCRIPT ARGS...` would.
"""

import runpy
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from labml import experiment  # noqa: E402

from experiments import dashboard  # noqa: E402

address, script, *args = sys.argv[1:]
if dashboard.connect(address):
    create = experiment.create

    def create_reporting(**kwargs):
        return create(**{**kwargs, 'writers': set(kwargs['writers']) | {'app'}})

    experiment.create = create_reporting
sys.argv = [script, *args]
runpy.run_path(script, run_name='__main__')
