"""
---
title: Reporting to the dashboard
summary: >
  What `--dashboard` does in a run: find labml's dashboard, point labml's
  client at it, and never let the run wait long for it.
nav_order: 12
---

# Reporting to the dashboard

`--dashboard [ADDRESS]` sends a run to [labml's dashboard](../dashboard/__init__.html)
as it trains. The [launcher](launch.html#make_configs) calls
[`connect`](#connect) in the first process of a run, before the run is created;
when a dashboard answers, the run gets labml's `'app'` writer beside its screen
and files. The client half lives here, in the runner, so that the runner needs
nothing from the dashboard's package (which imports the runner's defaults).
It uses only the standard library and labml: a run needs no more to report.
Two of its pieces reach into labml's client; the dashboard's
[page of workarounds](../dashboard/internals.html) lists them with the rest.
"""

import atexit
import json
import sys
import time
import urllib.request
from typing import Optional

DEFAULT_HOST = '127.0.0.1'
# labml's own `labml app-server` uses this port
DEFAULT_PORT = 5005
DEFAULT_ADDRESS = f'http://{DEFAULT_HOST}:{DEFAULT_PORT}'


# ## Reporting a run
#
# Ask the dashboard for the project its page lists, and point labml's
# `app_url` at it. A dashboard that does not answer within a few seconds costs
# the run one line and nothing else.

def connect(address: str = DEFAULT_ADDRESS, timeout: float = 3.0) -> bool:
    """
    Send this process's labml run to the dashboard at `address`; `False`, after
    one line saying so, when none answers there. The caller then adds labml's
    `'app'` writer to the run's writers.
    """
    address = address.rstrip('/')
    token = project_token(address, timeout)
    if token is None:
        print(f"no dashboard answers at {address}: the run trains on and logs to its "
              "own folder only", flush=True)
        return False
    # Never wait long for the dashboard at the end of the run
    bound_exit()
    from labml import lab
    # labml posts the run's data to `<app_url>/track`
    lab.configure({'app_url': f'{address}/api/v1/{token}', 'app_open_browser': False})
    return True


# ## The runs' project
#
# labml-app files a run under the project whose token comes in the query of
# the address it is posted to, `.../track?labml_token=...`, and, without one,
# under a *floating* project, whose runs the page does not list (it offers to
# "claim" each on its own page). labml's client cannot send one: it posts to
# `<app_url>/track` and refuses an `app_url` with a `?`. labml-app's route has
# a place for the token in the path, `/api/v1/<token>/track`, but reads it
# from the query only. So the client puts the token of the project the page
# lists in the path ([`project_token`](#project_token)), and the dashboard
# copies it into the query ([`LocalApp`](../dashboard/internals.html#LocalApp)).

def project_token(address: str, timeout: float) -> Optional[str]:
    """
    The token of the project the page of the dashboard at `address` lists
    (the page asks for the runs of `null` and is told the token), or `None`
    when no dashboard answers there.
    """
    try:
        with urllib.request.urlopen(f'{address}/api/v1/runs/null', timeout=timeout) as response:
            return json.loads(response.read())['labml_token']
    except (OSError, ValueError, KeyError, TypeError):
        return None


# ## A run that must not wait for the dashboard
#
# `labml.internal.app.AppTracker` starts a thread, `_AppTrackThread`, that
# posts the run's data; it is not a daemon thread, and when a post fails it
# waits 10 s, 20 s, 30 s, ... and tries again, without end. Python waits for
# every such thread before it exits. We let labml make its trackers daemon
# threads, which Python does not wait for, and at exit give them
# `EXIT_WAIT_S` seconds to deliver what is left, the end of the run among it.

EXIT_WAIT_S = 10.0

_trackers: list = []


def bound_exit():
    """From now on, labml's trackers in this process delay its exit by at most `EXIT_WAIT_S`."""
    import labml.internal.app as app
    if getattr(app.AppTracker, '_exit_bounded', False):
        return

    class DaemonAppTracker(app.AppTracker):
        _exit_bounded = True

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **{**kwargs, 'daemon': True})
            _trackers.append(self)

    # `labml.internal.experiment` imports `AppTracker` from here when a run starts
    app.AppTracker = DaemonAppTracker
    atexit.register(_wait_for_trackers)


def _wait_for_trackers():
    deadline = time.monotonic() + EXIT_WAIT_S
    for tracker in _trackers:
        thread = tracker.thread
        if thread is not None and thread.is_alive():
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(t.thread is not None and t.thread.is_alive() for t in _trackers):
        print(f"the dashboard did not take the run's last data within {EXIT_WAIT_S:.0f} s; "
              "the run's own files are complete", file=sys.stderr, flush=True)
