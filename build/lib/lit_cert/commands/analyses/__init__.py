"""The analyses of ``lit_cert analyze``: one module each, owning its settings and its report.

A module here declares ``NAME`` (the subcommand), ``Settings`` (a dataclass of its options, each
with its constraint: :mod:`lit_cert.options`) and ``run(settings) -> rows`` (compute through
:mod:`lit_cert.analysis`, print the summary lines, write ``<name>.csv`` and ``.png`` into
``settings.out``). :func:`registry` finds every such module, so a new analysis is one new file:
the parser, ``--help``, the hostile harness and the docs pick it up.
"""

from __future__ import annotations

import importlib
import pkgutil


def registry() -> dict:
    """``{name: module}`` of every analysis module in this package, in name order."""
    found = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_") or info.name == "common":
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        found[module.NAME] = module
    return dict(sorted(found.items()))
