"""
---
title: python -m experiments.dashboard
summary: The command that starts the dashboard; everything it does is on the dashboard's page.
---

# `python -m experiments.dashboard`

Starts [labml's dashboard](__init__.html) on this machine; `--help` lists the
options.
"""

import sys

from experiments.dashboard import main

if __name__ == '__main__':
    sys.exit(main())
