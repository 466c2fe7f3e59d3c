"""Options declared once, with their constraint: the one validation path of every command.

An option's constraint lives in its type annotation, where the option is defined -- a field of a
command's dataclass (``certify``, ``export``, each analysis, ``sweep``) or a parameter of a
class that ``fit`` builds (methods, networks, datasets, the schedule)::

    timeout: Annotated[float, Range(0, lo_open=True)] = 30.0     # > 0, finite
    widths: Annotated[list[int], Range(1), NonEmpty()] = ...      # every item >= 1, not []
    ckpt: Annotated[Optional[str], ExistingFile()] = None

jsonargparse reads the type as usual (``Annotated`` is transparent to it, and ``--help`` shows
the constraint), so the parser checks the *kind* of value; :func:`validate` (dataclasses) and
:func:`validate_arguments` (a class's constructor arguments) then check every constraint and
report the first violation as one :class:`~lit_cert.errors.ConfigError` that names the option
by its dotted name (``--bab.timeout``, ``model.init_args.eps_train``). The commands call them
before any work starts; :func:`check_arguments` makes a constructor check its own arguments, so a
library user gets the same guard.

The test harness (``tests/test_hostile.py``) reads the same declarations through
:func:`declared_options` and :meth:`Constraint.hostile`, so a new option is attacked with wrong
values because it is declared, not because someone wrote a test for it; and
:func:`unconstrained` lists the numeric, list and path options that declare nothing (a test
keeps that list empty -- :class:`Free` marks an option that really takes any value).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import inspect
import math
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, Iterable, Literal, Optional, Union

from lit_cert.errors import ConfigError

_MISSING_PATH = "/nonexistent/lit_cert-missing"


class Constraint:
    """What a value of an option must satisfy. ``problem`` says what is wrong (None: fine);
    ``hostile`` lists values that must be refused (the harness tries each); ``per_item``:
    the constraint applies to every item of a list option."""

    per_item = True

    def problem(self, value: Any) -> Optional[str]:
        raise NotImplementedError

    def hostile(self, kind: type) -> list:
        return []

    def describe(self) -> str:
        raise NotImplementedError

    def __repr__(self) -> str:  # what jsonargparse's --help shows in the type
        return self.describe()


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True, repr=False)
class Range(Constraint):
    """A finite number in ``[lo, hi]`` (either end open, either end absent)."""

    lo: Optional[float] = None
    hi: Optional[float] = None
    lo_open: bool = False
    hi_open: bool = False
    what: str = ""  # what the number is, for messages ("a radius")

    def problem(self, value):
        if not _is_number(value):
            return "must be a number"
        if not math.isfinite(value):
            return f"must be finite, {self.describe()}"
        lo_bad = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
        hi_bad = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
        return f"must be {self.describe()}" if lo_bad or hi_bad else None

    def describe(self) -> str:
        return f"{self.what} {self._interval()}" if self.what else self._interval()

    def _interval(self) -> str:
        if self.lo is not None and self.hi is not None:
            return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"
        if self.lo is not None:
            return f"{'>' if self.lo_open else '>='} {self.lo:g}"
        if self.hi is not None:
            return f"{'<' if self.hi_open else '<='} {self.hi:g}"
        return "finite"

    def hostile(self, kind):
        integer = kind is int
        values: list = [] if integer else [float("nan"), float("inf"), float("-inf")]
        if self.lo is not None:
            values.append(self.lo if self.lo_open else (self.lo - 1 if integer else self.lo - max(1e-3, abs(self.lo))))
        if self.hi is not None:
            values.append(self.hi if self.hi_open else (self.hi + 1 if integer else self.hi + max(1e-3, abs(self.hi))))
        return values


class NonEmpty(Constraint):
    """A list with at least one item (an empty one would compute and write nothing)."""

    per_item = False

    def problem(self, value):
        return "must not be empty" if value is not None and len(value) == 0 else None

    def describe(self) -> str:
        return "non-empty"

    def hostile(self, kind):
        return [[]]


@dataclass(frozen=True, repr=False)
class OneOf(Constraint):
    """One of a set of names known at run time (``choices`` is a sequence or a function giving
    one: the bound registry, the analyses' relaxations), with a case-insensitive "did you mean"."""

    choices: Any

    def names(self) -> list[str]:
        return list(self.choices() if callable(self.choices) else self.choices)

    def problem(self, value):
        names = self.names()
        if value in names:
            return None
        from lit_cert.errors import did_you_mean

        return f"must be one of {', '.join(names)}{did_you_mean(str(value), names, case_insensitive=True)}"

    def describe(self) -> str:
        return "one of " + "|".join(self.names())

    def hostile(self, kind):
        return ["no-such-name"]


class _Existing(Constraint):
    """A path to something that exists: a file or a folder (``what``)."""

    what = "file"

    def problem(self, value):
        if value is None:
            return None
        p = Path(str(value))
        if (p.is_file() if self.what == "file" else p.is_dir()):
            return None
        return f"is not a {self.what}" if p.exists() else "does not exist"

    def describe(self) -> str:
        return f"an existing {self.what}"

    def hostile(self, kind):
        return [f"{_MISSING_PATH}-{self.what}"]


class ExistingFile(_Existing):
    """A path to a file that exists (a checkpoint, a run config, a sweep file)."""

    what = "file"


class ExistingDir(_Existing):
    """A path to a folder that exists (a data folder named by the user)."""

    what = "folder"


class WritableDir(Constraint):
    """A folder that exists and is writable, or can be made (its nearest existing parent is a
    writable folder). Nothing is created by the check."""

    def problem(self, value):
        if value is None:
            return None
        p = Path(str(value)).expanduser().absolute()
        if p.exists():
            if not p.is_dir():
                return "is a file, not a folder"
            return None if os.access(p, os.W_OK | os.X_OK) else "is not writable"
        parent = p.parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            return f"cannot be made: {parent} is a file"
        return None if os.access(parent, os.W_OK | os.X_OK) else f"cannot be made: {parent} is not writable"

    def describe(self) -> str:
        return "a writable folder"

    def hostile(self, kind):
        return ["/proc/version/lit_cert-out"]  # under a file: can never be made


@dataclass(frozen=True, repr=False)
class Check(Constraint):
    """A constraint given by a function (``problem(value) -> message or None``), with the values
    the harness should try and a description for ``--help``."""

    fn: Callable[[Any], Optional[str]]
    text: str
    bad: tuple = ()
    item_wise: bool = True

    @property
    def per_item(self):  # type: ignore[override]
        return self.item_wise

    def problem(self, value):
        return self.fn(value)

    def describe(self) -> str:
        return self.text

    def hostile(self, kind):
        return list(self.bad)


class Free(Constraint):
    """Any value of the option's type is meaningful (a seed, a shift, a signed number): declared
    so that the harness knows the option was not forgotten."""

    def problem(self, value):
        return None

    def describe(self) -> str:
        return "any"


# ---------------------------------------------------------------- the common kinds, by name
PositiveInt = Annotated[int, Range(1)]
NonNegativeInt = Annotated[int, Range(0)]
PositiveFloat = Annotated[float, Range(0, lo_open=True)]
NonNegativeFloat = Annotated[float, Range(0)]
#: an L∞ radius in pixel units of [0, 1] images
Radius = Annotated[float, Range(0, 1, what="a radius (pixel units)")]
UnitInterval = Annotated[float, Range(0, 1)]
Seed = Annotated[int, Range(0)]
AnyInt = Annotated[int, Free()]
AnyFloat = Annotated[float, Free()]


# ---------------------------------------------------------------- reading the declarations
def _split(annotation) -> tuple[Any, list[Constraint], bool]:
    """(base type, constraints, optional) of an annotation: ``Annotated`` and ``Optional`` peeled
    in either order."""
    constraints: list[Constraint] = []
    optional = False
    while True:
        origin = typing.get_origin(annotation)
        if origin is Annotated:
            base, *meta = typing.get_args(annotation)
            constraints += [m for m in meta if isinstance(m, Constraint)]
            annotation = base
            continue
        if origin is Union:
            args = [a for a in typing.get_args(annotation) if a is not type(None)]
            if len(args) < len(typing.get_args(annotation)):
                optional = True
            if len(args) == 1:
                annotation = args[0]
                continue
        break
    return annotation, constraints, optional


_LISTS = (list, tuple, set, collections.abc.Sequence, collections.abc.Set)


def _item_kind(base) -> type:
    """The number type an option's constraints are about (``int`` for ``list[int]``)."""
    origin = typing.get_origin(base)
    if origin in _LISTS:
        args = [a for a in typing.get_args(base) if a is not Ellipsis]
        return _split(args[0])[0] if args else Any
    return base


def _is_list(base) -> bool:
    return typing.get_origin(base) in _LISTS or base in (list, tuple)


def _item_constraints(base) -> list[Constraint]:
    """Constraints written on a list's item type (``list[Annotated[int, Range(1)]]``)."""
    if not _is_list(base):
        return []
    args = [a for a in typing.get_args(base) if a is not Ellipsis]
    return _split(args[0])[1] if args else []


def check_value(name: str, value: Any, annotation: Any) -> None:
    """Raise a ConfigError naming ``name`` if ``value`` breaks a constraint of ``annotation``."""
    base, constraints, optional = _split(annotation)
    if value is None:
        return
    if typing.get_origin(base) is Literal and value not in typing.get_args(base):
        choices = ", ".join(str(a) for a in typing.get_args(base))
        raise ConfigError(f"{name}: must be one of {choices}, got {_show(value)}")
    is_list = _is_list(base) and isinstance(value, (list, tuple))
    integer = _item_kind(base) is int
    for constraint in constraints + _item_constraints(base):
        items = value if (is_list and constraint.per_item) else [value]
        for item in items:
            problem = constraint.problem(item)
            if problem and integer and isinstance(constraint, Range) and problem.startswith("must be "):
                problem = "must be an integer " + problem[len("must be "):]
            if problem and items is value:
                raise ConfigError(f"{name}: item {_show(item)} {problem}")
            if problem:
                raise ConfigError(f"{name}: {problem}, got {_show(value)}")


def _show(value) -> str:
    return repr(value) if not isinstance(value, float) else f"{value:g}"


def _hints(obj) -> dict:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception:  # noqa: BLE001 - unresolvable forward references: no constraints to read
        return {}


def validate(obj: Any, prefix: str = "--") -> Any:
    """Check every declared constraint of the dataclass ``obj`` and, recursively, of its nested
    dataclass fields; the first violation is a ConfigError naming ``<prefix><field>``."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        name = f"{prefix}{f.name}"
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            validate(value, f"{name}.")
        elif f.name in hints:
            check_value(name, value, hints[f.name])
    return obj


def constructor_parameters(cls: type) -> list[tuple[str, inspect.Parameter, Any]]:
    """(name, parameter, annotation) of ``cls``'s constructor, following ``**kwargs`` up the MRO
    (our classes pass their base class's arguments through)."""
    out, seen = [], set()
    for klass in getattr(cls, "__mro__", (cls,)):
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        init = getattr(init, "__wrapped__", init)
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):
            break
        hints = _hints(init)
        for p in params.values():
            if p.name == "self" or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) or p.name in seen:
                continue
            seen.add(p.name)
            out.append((p.name, p, hints.get(p.name, p.annotation)))
        if not any(p.kind == p.VAR_KEYWORD for p in params.values()):
            break
    return out


def validate_arguments(cls: type, arguments: dict, prefix: str = "") -> None:
    """Check the constructor ``arguments`` of ``cls`` (a mapping of name -> value; absent names
    keep their defaults) against the declared constraints; errors name ``<prefix><name>``."""
    for name, _, annotation in constructor_parameters(cls):
        if name in arguments:
            check_value(f"{prefix}{name}", arguments[name], annotation)


def check_arguments() -> None:
    """Check the arguments of the constructor that calls this against that constructor's
    declared constraints (its first line: ``check_arguments()``). The CLI has already checked
    them with dotted names (:func:`validate_arguments`); this gives a library caller the same
    guard, without a wrapper that would hide the signature from jsonargparse or the frames
    Lightning's ``save_hyperparameters`` reads."""
    import sys

    frame = sys._getframe(1)
    try:
        owner = frame.f_locals.get("self")
        fn = None
        for klass in type(owner).__mro__:
            candidate = klass.__dict__.get("__init__")
            if getattr(candidate, "__code__", None) is frame.f_code:
                fn = candidate
                break
        if fn is None:
            return
        hints = _hints(fn)
        for name, annotation in hints.items():
            if name in frame.f_locals and name not in ("self", "return"):
                check_value(name, frame.f_locals[name], annotation)
    finally:
        del frame


# ---------------------------------------------------------------- what the harness reads
@dataclass
class DeclaredOption:
    """One option as declared: its dotted name, type, constraints and whether None is allowed."""

    name: str
    base: Any
    constraints: list
    optional: bool
    default: Any = None

    @property
    def kind(self):
        return _item_kind(self.base)

    @property
    def is_list(self) -> bool:
        return _is_list(self.base)

    def all_constraints(self) -> list:
        return self.constraints + _item_constraints(self.base)

    def hostile_values(self) -> list:
        """Values every one of which must be refused: each constraint's own, and wrong kinds
        (text for a number, a non-boolean for a switch, an unknown name for a choice)."""
        values = []
        for c in self.all_constraints():
            for v in c.hostile(self.kind):
                values.append([v] if self.is_list and c.per_item and not isinstance(v, list) else v)
        if self.kind in (int, float) and not self.is_list:
            values.append("not-a-number")
        if self.kind is bool and not self.is_list:
            values.append("maybe")
        if typing.get_origin(self.kind) is Literal:
            values.append("no-such-choice")
        return values


def declared_options(cls: type, prefix: str = "") -> list[DeclaredOption]:
    """Every option of the dataclass ``cls`` (nested dataclasses flattened with dots) or of the
    constructor of the class ``cls``."""
    out = []
    if dataclasses.is_dataclass(cls):
        hints = _hints(cls)
        for f in dataclasses.fields(cls):
            ann = hints.get(f.name, f.type)
            base, constraints, optional = _split(ann)
            if isinstance(base, type) and dataclasses.is_dataclass(base):
                out += declared_options(base, f"{prefix}{f.name}.")
                continue
            default = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else None)
            out.append(DeclaredOption(f"{prefix}{f.name}", base, constraints, optional, default))
        return out
    for name, p, ann in constructor_parameters(cls):
        base, constraints, optional = _split(ann)
        default = None if p.default is inspect.Parameter.empty else p.default
        out.append(DeclaredOption(f"{prefix}{name}", base, constraints, optional, default))
    return out


_NEEDS_DECLARATION = (int, float)


def unconstrained(options: Iterable[DeclaredOption]) -> list[str]:
    """Names of numeric, list-of-numbers and path-like options that declare no constraint (a
    forgotten guard); options marked :class:`Free` declare that any value is meaningful."""
    missing = []
    for o in options:
        if o.all_constraints():
            continue
        if o.kind in _NEEDS_DECLARATION or (o.is_list and o.kind in (str, int, float)):
            missing.append(o.name)
    return missing
