"""The one exception family for bad user input.

Everything a user can get wrong -- a config value, a command-line argument, a missing or corrupt
file -- raises a :class:`UserError` *where the input is read*. The command line catches exactly
this type in one place (:func:`lit_cert.commands.main`) and prints
``lit_cert: error: <message>`` with exit status 2 and no traceback; anything else is a bug and
keeps its traceback. It subclasses ``ValueError`` so library callers can catch it generically.
:func:`did_you_mean` is the one suggestion helper of those messages.
"""

import difflib
from collections.abc import Iterable


class UserError(ValueError):
    """Bad input from the user (configuration, arguments, files); the message says what to do."""


class ConfigError(UserError):
    """A configuration or command-line value is invalid; detected before any training starts."""


class DataError(UserError):
    """A dataset is missing, unreadable, corrupt or inconsistent (e.g. labels out of range)."""


def check(condition: bool, message: str, error: type[UserError] = ConfigError) -> None:
    """Raise ``error(message)`` unless ``condition``: the one-line form of input validation."""
    if not condition:
        raise error(message)


def did_you_mean(word: str, candidates: Iterable[str], cutoff: float = 0.6, case_insensitive: bool = True) -> str:
    """`` (did you mean X?)`` for the closest candidate, or an empty string. A candidate that
    differs only in case wins (``lit_cert.methods.Sabr`` -> ``SABR``, not ``Standard``); the
    rest is compared case-insensitively too."""
    pool = sorted(set(candidates))
    if case_insensitive:
        same = [c for c in pool if c.lower() == word.lower()]
        if same:
            return f" (did you mean {same[0]}?)"
        lowered = {c.lower(): c for c in pool}
        match = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=cutoff)
        return f" (did you mean {lowered[match[0]]}?)" if match else ""
    match = difflib.get_close_matches(word, pool, n=1, cutoff=cutoff)
    return f" (did you mean {match[0]}?)" if match else ""
