"""The one exception family for bad user input.

Everything a user can get wrong -- a config value, a command-line argument, a missing or corrupt
file -- raises a :class:`UserError` *where the input is read*. The command line catches exactly
this type in one place (:func:`lit_cert.commands.main`) and prints
``lit_cert: error: <message>`` with exit status 2 and no traceback; anything else is a bug and
keeps its traceback. It subclasses ``ValueError`` so library callers can catch it generically.
"""


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
