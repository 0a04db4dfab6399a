"""
---
title: Watch runs in labml's dashboard
summary: >
  labml's own dashboard on your machine, offline and without a database: the
  runs' loss and accuracy as they train, their output, runs side by side.
---

# Watch runs in labml's dashboard

A run writes labml's files and, at its end, `summary.json` and `metrics.png`
into its folder. To watch it *while* it trains (the loss and accuracy of each
epoch, its output, several runs side by side, from a phone on the same network
if you wish), start labml's own dashboard, the `labml-app` package, on your
machine. Set it up once:

```
pip install -e ".[dashboard]" && npm ci --prefix experiments/dashboard
```

and start it:

```
python -m experiments.dashboard
```

It answers with one line, and Ctrl-C stops it:

```
labml dashboard at http://127.0.0.1:5005 (runs kept in logs/dashboard); Ctrl-C stops it
```

Open that address in a browser, then start a run that reports to it, in
another terminal:

```
python experiments/cifar10.py --dashboard
```

The run prints the address of its page (`Monitor experiment at
http://127.0.0.1:5005/run/<run uuid>`), and the list of runs on the first page
has it too. `--port` starts the dashboard on another port, and
`--dashboard ADDRESS` sends a run to a dashboard at another address.

![labml's dashboard showing a CIFAR-10 run: its training and test loss for each epoch, its output](../../dashboard.png)

## What runs where

* **The app.** `labml-app` 0.5.14 as published on PyPI, its page, handlers and
  analyses unchanged, served by uvicorn in this process.
* **The store.** labml-app keeps its runs in MongoDB; here they are files in
  `logs/dashboard/`, next to the runs' own folders (`--store DIR` puts them
  elsewhere). Stop the dashboard, start it again, and every run is there.
  [What the files are, and why](internals.html#the-store).
* **The page's libraries.** The page loads Bootstrap 5.0.0-beta2, d3 6 (6.7.0) and
  Font Awesome 5.9.0 from three CDNs; `npm ci --prefix experiments/dashboard`
  installs the same files (its lock file pins them), and the dashboard serves
  them itself. No request leaves your machine: the dashboard's browser test
  records every request the page makes and checks it.
* **The runs.** A run sends its data from a background thread of labml's.
  When no dashboard answers as it starts, the run says so in one line and
  trains on, writing its own folder as always. When the dashboard goes away
  during a run, the run finishes all the same and waits at most 10 s for it
  at its end. In a distributed run only the first process reports.

labml-app does not run offline or without MongoDB as it comes; five small
changes, made from outside the package, have
[a page of their own](internals.html).

`pip install -e ".[dashboard]"` brings in `labml-app` and what it requires:
FastAPI, Starlette, pydantic, uvicorn, gunicorn, labml-db, and pymongo and
redis, which labml-app and labml-db import but the dashboard does not use. It
changes no version of what the rest of the project installs.

## From another device on your network

The dashboard listens on `127.0.0.1`, this machine only, unless told
otherwise. To follow a run from a phone or another computer on your own
network, let it listen on all of the machine's addresses:

```
python -m experiments.dashboard --host 0.0.0.0
```

and open `http://ADDRESS:5005` on the other device, where `ADDRESS` is the
machine's address on your network (`hostname -I` prints it on Linux). A run on
another computer reports with `--dashboard http://ADDRESS:5005`. labml-app has
no accounts when run locally: anyone who can reach that address sees every run
and can archive or delete it. Do this on a network you trust, never on a
public one.
"""

import argparse
import socket
import sys
from pathlib import Path
from typing import Optional

from experiments.dashboard import internals
from experiments.runner.dashboard_client import DEFAULT_HOST, DEFAULT_PORT

# The project's root: the default store is in its `logs/`, beside the runs
ROOT = Path(__file__).resolve().parents[2]
DEFAULT_STORE = ROOT / 'logs' / 'dashboard'


# A run reports with the runner's client,
# [`connect`](../runner/dashboard_client.html#connect), which `--dashboard`
# calls; the dashboard and its runs agree on the address through it.

# ## Serving it

def serve(host: str, port: int, store: Path):
    """The dashboard on `host:port`, with its store in `store`, until Ctrl-C."""
    import uvicorn
    app = internals.offline_app(store, host, port)
    # The port is taken here, so that a busy one is one clear line, and is
    # listening before the line with the address: a browser opened at once
    # waits for uvicorn rather than being refused
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        raise DashboardError(f"cannot listen on {host}:{port} ({e.strerror}): "
                             "choose another with --port") from None
    shown = store.relative_to(Path.cwd()) if store.is_relative_to(Path.cwd()) else store
    # 0.0.0.0 is every address of the machine, not one a browser can open
    where = (f"http://127.0.0.1:{port} and at this machine's addresses on your network"
             if host == '0.0.0.0' else f"http://{host}:{port}")
    print(f"labml dashboard at {where} (runs kept in {shown}); Ctrl-C stops it", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level='warning'))
    try:
        server.run(sockets=[sock])
    except KeyboardInterrupt:
        # uvicorn has closed its connections, and raises Ctrl-C again for us
        pass
    print("dashboard stopped", flush=True)


class DashboardError(Exception):
    """A failure whose message is all the user needs."""


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m experiments.dashboard',
        description="labml's dashboard on this machine: runs started with --dashboard "
                    "report to it.")
    parser.add_argument('--host', default=DEFAULT_HOST,
                        help=f"address to listen on (default {DEFAULT_HOST}, this machine "
                             "only; 0.0.0.0 for every device on your network)")
    parser.add_argument('--port', type=int, default=DEFAULT_PORT,
                        help=f"port to listen on (default {DEFAULT_PORT})")
    parser.add_argument('--store', type=Path, default=DEFAULT_STORE,
                        help="folder the runs are kept in (default logs/dashboard)")
    args = parser.parse_args(argv)
    try:
        serve(args.host, args.port, args.store.resolve())
    except (DashboardError, internals.AssetsMissing, internals.AppMissing) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0
