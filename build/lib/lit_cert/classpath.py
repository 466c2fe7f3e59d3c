"""Import a class from its dotted ``class_path`` (configs, checkpoints): the one importer."""

from __future__ import annotations

import importlib

from lit_cert.errors import ConfigError


def import_class(path: str, base: type | None = None, what: str = "class") -> type:
    """The class at ``path`` (``package.module.Name``), checked to subclass ``base`` if given.

    Every failure is a :class:`~lit_cert.errors.ConfigError` naming the path and the reason."""
    module, _, name = str(path).rpartition(".")
    if not module or not name:
        raise ConfigError(f"{what} {path!r} is not a dotted class path such as lit_cert.models.CNN7")
    try:
        mod = importlib.import_module(module)
    except ImportError as err:
        raise ConfigError(f"cannot import the {what} {path!r}: {err}") from None
    cls = getattr(mod, name, None)
    if not isinstance(cls, type):
        raise ConfigError(f"{module} has no {what} named {name!r}")
    if base is not None and not issubclass(cls, base):
        raise ConfigError(f"{path} is not a {base.__module__}.{base.__qualname__}")
    return cls
