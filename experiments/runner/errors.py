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
user can fix these, so their message must say what is wrong and what to do, in
one line. They raise [`UserError`](#UserError); the
[launcher](launch.html#launch) prints the message and exits with its
`exit_code`. Every other exception is a bug and keeps its traceback.

The command line, the data modules, the runs and the recipes all raise it, so
it lives in this module of its own, which imports nothing.
"""

# The one name the other modules import
__all__ = ['UserError']

# ## The exception
#
# Only the message and the exit status: where it is raised knows what went
# wrong, and the launcher alone decides how it is shown.


class UserError(Exception):
    """
    An expected failure whose message is all the user needs: what is wrong
    and what to do, in one line.
    """

    # The exit status: 2 for a wrong command line, as `argparse` uses, else 1
    exit_code: int = 1

    # The message goes to `Exception`, so `str(error)` is the line the user reads
    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code
