"""Errors that mean "the configuration is wrong": the CLI prints them without a traceback."""


class ConfigError(ValueError):
    """A user-facing configuration problem, detected before any training starts."""
