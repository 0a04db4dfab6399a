"""
---
title: The command line
summary: >
  A command line derived from a labml Configs class: one flag per setting, its
  type, default and help read from the class itself, values checked before
  anything runs, and user errors as one line.
nav_order: 2
---

# The command line

An experiment's settings are written once, in its `Configs` class:

```python
epochs: int  # T, number of epochs of the schedule
```

Everything the command line needs is already there: the name, the type, the
default and, in the comment at the end of the line, the help.
[`settings_of`](#settings_of) reads them, [`build_parser`](#build_parser) makes
one flag per setting, and [`parse_settings`](#parse_settings) turns what was
typed into checked values before any data is read or any folder is made, so a
typo costs a second, not a download.
"""

import argparse
import inspect
import io
import math
import textwrap
import tokenize
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, List, Sequence

from experiments.runner.errors import UserError

# ## Settings of a `Configs` class
#
# A setting is a plain value with a help comment. Computed configs (the model,
# the data, the optimizer) have other types; a plain value without a help
# comment is one an experiment sets for itself (such as the trainer's
# `report_top5`).


@dataclass
class Setting:
    key: str
    type: type
    # `None` when an `@option` computes the value
    default: Any
    help: str

    @property
    def default_text(self) -> str:
        if self.default is None:
            return 'device dependent'
        return repr(self.default) if isinstance(self.default, str) else str(self.default)


def _trailing_comments(cls: type) -> Dict[str, str]:
    """The help of each setting: the comment ending its line in the class body."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    comments = {}
    line: List[tokenize.TokenInfo] = []
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type in (tokenize.NEWLINE, tokenize.NL):
            # `name: type = value  # help`, indented one level: not inside a method
            if len(line) >= 3 and line[0].type == tokenize.NAME and line[0].start[1] == 4 \
                    and line[1].string in (':', '=') and line[-1].type == tokenize.COMMENT:
                comments.setdefault(line[0].string, line[-1].string.lstrip('#').strip())
            line = []
        elif token.type not in (tokenize.INDENT, tokenize.DEDENT):
            line.append(token)
    return comments


def settings_of(configs_class: type) -> Dict[str, Setting]:
    """
    The type and help of a setting come from the class that declares it, the
    default from the most derived class that gives a value.
    """
    settings = {}
    for cls in reversed(configs_class.__mro__):
        comments = None
        for key, annotation in cls.__dict__.get('__annotations__', {}).items():
            if annotation not in (int, float, str, bool) or key.startswith('_'):
                continue
            if comments is None:
                comments = _trailing_comments(cls)
            if key in comments:
                settings[key] = Setting(key, annotation, None, comments[key])
            else:
                settings.pop(key, None)
    for key, setting in settings.items():
        # labml keeps each attribute as a `ConfigItem`, with its value when it has one
        item = getattr(configs_class, key, None)
        if item is not None and getattr(item, 'has_value', False):
            setting.default = item.value
    return settings


# ## The parser

# A setting whose flag is not its key with dashes (`model` is the computed
# model, so the setting that names one is `model_name`)
FLAG_NAMES = {'device_name': 'device', 'model_name': 'model'}
# What a value is, in the usage line, where its type says too little
METAVARS = {'data_dir': 'DIR', 'device_name': 'DEVICE', 'activation': 'NAME',
            'weights': 'FILE'}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line, no usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser(configs_class: type, prog: str, description: str,
                 checks: Dict[str, Sequence['Check']]) -> argparse.ArgumentParser:
    """The experiment adds its own flags (`--resume` and so on) to the result."""
    settings = settings_of(configs_class)
    defaults = {key: _check_fact(key, checks, 'default_text', s.default_text)
                for key, s in settings.items()}
    keys = ', '.join(f'{s.key} ({s.type.__name__}, default {defaults[s.key]})'
                     for s in settings.values())
    parser = _Parser(prog=prog, description=description, epilog=f'Keys for --set: {keys}.')
    # The upper end of a range has no flag of its own: `--scale LOW HIGH` sets it
    seconds = {_check_fact(key, checks, 'second') for key in settings}
    for s in settings.values():
        if s.key in seconds:
            continue
        flag = '--' + FLAG_NAMES.get(s.key, s.key).replace('_', '-')
        text = f'{s.help} (default {defaults[s.key]})'
        if s.type is bool:
            parser.add_argument(flag, dest=s.key, action=argparse.BooleanOptionalAction, help=text)
        elif _check_fact(s.key, checks, 'second'):
            parser.add_argument(flag, dest=s.key, nargs='+', help=text, metavar=('LOW', 'HIGH'))
        else:
            choices = _check_fact(s.key, checks, 'choices')
            metavar = '{' + ','.join(choices) + '}' if choices else s.type.__name__.upper()
            parser.add_argument(flag, dest=s.key, metavar=METAVARS.get(s.key, metavar), help=text)
    parser.add_argument('--set', dest='set_values', action='append', default=[],
                        metavar='KEY=VALUE',
                        help='set any setting (repeatable); the keys are listed below')
    return parser


def parse_value(setting: Setting, text: str) -> Any:
    key, type_ = setting.key, setting.type
    if type_ is bool:
        if text.lower() in ('1', 'true', 'yes', 'on'):
            return True
        if text.lower() in ('0', 'false', 'no', 'off'):
            return False
        raise UserError(f"{key} must be true or false, got {text!r}", 2)
    try:
        return type_(text)
    except ValueError:
        kind = 'an integer' if type_ is int else 'a number'
        raise UserError(f"{key} must be {kind}, got {text!r}", 2) from None


def parse_settings(args: argparse.Namespace, configs_class: type,
                   checks: Dict[str, Sequence['Check']]) -> Dict[str, Any]:
    """Only the settings given (a flag wins over `--set`); `Configs`' defaults apply to the rest."""
    settings = settings_of(configs_class)
    texts = {}
    for item in args.set_values:
        if '=' not in item:
            raise UserError(f"--set takes KEY=VALUE, got {item!r}", 2)
        key, text = item.split('=', 1)
        key = key.strip().replace('-', '_')
        if key not in settings:
            raise UserError(f"unknown setting {key!r} in --set (valid keys are listed in --help)", 2)
        texts[key] = text.strip()
    values = {}
    for key, setting in settings.items():
        given = getattr(args, key, None)
        if given is None:
            given = texts.get(key)
        if isinstance(given, list):
            # `--KEY LOW [HIGH]`: HIGH, when given, is the value of the second setting
            if len(given) > 2:
                raise UserError(f"--{key.replace('_', '-')} takes one or two numbers (LOW, or "
                                f"LOW HIGH), got {len(given)}: {' '.join(given)}", 2)
            values[key] = parse_value(setting, given[0])
            if len(given) == 2:
                second = _check_fact(key, checks, 'second')
                values[second] = parse_value(settings[second], given[1])
        elif given is not None:
            # A switch arrives as a `bool` already; other values as text
            values[key] = given if isinstance(given, bool) else parse_value(setting, given)
    for key in list(values):
        for check in checks.get(key, ()):
            values[key] = check(key, values[key])
    return values


# ## Checks
#
# A check gets the key and the parsed value and returns the value to use (it
# may normalise it, as [`one_of`](#one_of) lower-cases a name) or raises a
# [`UserError`](errors.html#UserError) with exit code 2, a command-line error
# that names the setting and the value.

Check = Callable[[str, Any], Any]


def at_least(n: int) -> Check:
    def check(key, value):
        if value < n:
            raise UserError(f"{key} must not be negative, got {value}" if n == 0
                            else f"{key} must be at least {n}, got {value}", 2)
        return value
    return check


def at_most(n: int, why: str = '') -> Check:
    def check(key, value):
        if value > n:
            raise UserError(f"{key} must be at most {n}{f' ({why})' if why else ''}, "
                            f"got {value}", 2)
        return value
    return check


def positive(key: str, value: float) -> float:
    if not (math.isfinite(value) and value > 0):
        raise UserError(f"{key} must be positive, got {value}", 2)
    return value


def non_negative(key: str, value: float) -> float:
    if not (math.isfinite(value) and value >= 0):
        raise UserError(f"{key} must be a non-negative number, got {value}", 2)
    return value


def one_of(names: Iterable[str]) -> Check:
    names = sorted(names)

    def check(key, value):
        if value.lower() not in names:
            raise UserError(f"unknown {key} {value!r}: choose one of {', '.join(names)}", 2)
        return value.lower()
    check.choices = names
    return check


# ## Defaults that depend on other settings, and ranges
#
# These checks pass the value on and tell the parser a fact: `default_is(text)`
# is what `--help` shows as the default of a setting an `@option` computes from
# others; `upper_bound(key)` makes the flag take a range as timm's `train.py`
# spells it (`--scale 0.75 1.0`), the second number being the setting `key`.


def default_is(text: str) -> Check:
    def check(key, value):
        return value
    check.default_text = text
    return check


def upper_bound(second: str) -> Check:
    def check(key, value):
        return value
    check.second = second
    return check


def _check_fact(key: str, checks: Dict[str, Sequence[Check]], fact: str, default: Any = None):
    """The first `fact` (`choices`, `default_text`, `second`) that a check of `key` carries."""
    facts = [getattr(c, fact, None) for c in checks.get(key, ())]
    return next((f for f in facts if f), default)
