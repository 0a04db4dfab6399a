"""
---
title: Errors for the user
summary: >
  The one kind of failure a user can cause and fix, printed as one line with a
  non-zero exit instead of a traceback.
nav_order: 1
---

# Errors for the user

A wrong value on the command line, missing or damaged data, an unknown run: a
user can fix these, so their message says what is wrong and what to do, in one
line. They raise `UserError`; the [launcher](launch.html#launch) prints the
message and exits with its `exit_code`. Every other exception is a bug and
keeps its traceback. The command line, the data modules, the runs and the
recipes all raise it, so it has this module of its own, which imports nothing.
"""


class UserError(Exception):
    """An expected failure whose message (`str(error)`) is all the user needs."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        # 2 for a wrong command line, as `argparse` uses, else 1
        self.exit_code = exit_code
