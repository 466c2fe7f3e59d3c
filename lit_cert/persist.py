"""Everything lit_cert writes and later reads back goes through here.

* **Atomic writes.** :func:`atomic_path` hands out a temporary name beside the target and renames
  it into place only when the block finished without an exception, so a crash, a Ctrl-C or a
  failing computation never leaves a torn file or an emptied good one. :func:`write_text`,
  :func:`write_json` and :func:`staged` (a whole set of outputs: all renamed into place at the
  end, or none) are built on it.
* **Typed, versioned JSON.** Each kind of file the tool reads back is registered once
  (:data:`FILE_TYPES`: its kind, version, schema, what happens when it is damaged, and a small
  valid example). :func:`write_record` stamps the kind and version into the file;
  :func:`read_record` checks both and the schema, and raises :class:`DamagedFile` -- a
  :class:`~lit_cert.errors.UserError`, so the CLI prints one line naming the file -- for a
  missing-but-expected, truncated, garbage or foreign file. Callers that can recompute catch it
  and say so (:func:`damage_notice`); the others let the one line through.
* **Append-only logs** (:func:`append_line`, :func:`read_lines`): one JSON record per line; a
  damaged line is reported and skipped, never fatal.

The hostile harness (``tests/test_hostile.py``) damages an example of every registered kind in
three ways and checks that the reader answers with :class:`DamagedFile`; a new kind is covered
because it is registered here.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Optional

from lit_cert.errors import UserError

#: the key that carries a file's kind and version inside a JSON object
HEADER = "lit_cert_file"


class DamagedFile(UserError):
    """A file the tool wrote earlier is unreadable, of another kind, of a newer version, or does
    not match its schema. ``path``/``kind``/``reason`` say which and why."""

    def __init__(self, path: Path | str, kind: str, reason: str, remedy: str = ""):
        self.path, self.kind, self.reason = Path(path), kind, reason
        super().__init__(f"{path} is not a valid {kind} file ({reason})" + (f"; {remedy}" if remedy else ""))


# ------------------------------------------------------------------------------- atomic writes
_STAGE: contextvars.ContextVar[Optional[list]] = contextvars.ContextVar("lit_cert_stage", default=None)


def _tmp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def atomic_path(path: Path | str) -> Iterator[Path]:
    """A temporary path to write ``path``'s new contents to; renamed into place when the block
    ends normally, removed when it raises. Inside :func:`staged`, the rename waits for the end
    of the whole stage."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _tmp_name(path)
    try:
        yield tmp
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    stage = _STAGE.get()
    if stage is not None:
        stage.append((tmp, path))
    else:
        os.replace(tmp, path)


@contextlib.contextmanager
def staged() -> Iterator[None]:
    """Every :func:`atomic_path` inside the block is renamed into place only when the whole block
    succeeded; on an exception none is, and the temporary files are removed. An analysis that
    fails half-way leaves the previous results untouched."""
    outer = _STAGE.get()
    pending: list = []
    token = _STAGE.set(pending)
    try:
        yield
    except BaseException:
        for tmp, _ in pending:
            tmp.unlink(missing_ok=True)
        raise
    finally:
        _STAGE.reset(token)
    if outer is not None:
        outer.extend(pending)
    else:
        for tmp, path in pending:
            os.replace(tmp, path)


def write_text(path: Path | str, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def _finite(value):
    """JSON without NaN/Infinity tokens (not JSON; other readers choke): non-finite -> None."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_json(path: Path | str, payload: Any, indent: int | None = 2) -> Path:
    return write_text(path, json.dumps(_finite(payload), indent=indent))


def flatten(record: dict, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as ``{dotted key: value}`` (leaves only): how records are compared and
    how a config is logged."""
    out: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


# ------------------------------------------------------------------------------- schemas
class Opt:
    """A schema entry for a key that may be absent (or null)."""

    def __init__(self, spec):
        self.spec = spec


class AnyOf:
    def __init__(self, *specs):
        self.specs = specs


def schema_problem(value: Any, spec: Any, where: str = "") -> Optional[str]:
    """What is wrong with ``value`` against ``spec`` (None: nothing). A spec is a type (``int``
    accepts no bools, ``float`` accepts ints), a dict of key -> spec (``Opt`` for optional keys;
    other keys are allowed), a one-item list (every item), :class:`AnyOf`, ``None`` (null) or a
    function returning a problem or None."""
    at = where or "the top level"
    if spec is Any:
        return None
    if spec is None:
        return None if value is None else f"{at}: expected null"
    if isinstance(spec, AnyOf):
        problems = [schema_problem(value, s, where) for s in spec.specs]
        return None if any(p is None for p in problems) else problems[0]
    if isinstance(spec, Opt):
        return None if value is None else schema_problem(value, spec.spec, where)
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return f"{at}: expected an object, got {type(value).__name__}"
        for key, sub in spec.items():
            if key not in value:
                if isinstance(sub, Opt):
                    continue
                return f"{at}: missing {key!r}"
            problem = schema_problem(value[key], sub, f"{where}.{key}" if where else key)
            if problem:
                return problem
        return None
    if isinstance(spec, list):
        if not isinstance(value, list):
            return f"{at}: expected a list, got {type(value).__name__}"
        for i, item in enumerate(value):
            problem = schema_problem(item, spec[0], f"{where}[{i}]")
            if problem:
                return problem
        return None
    if spec is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{at}: expected a number, got {value!r}"[:200]
    if spec is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{at}: expected an integer, got {value!r}"[:200]
    if isinstance(spec, type):
        return None if isinstance(value, spec) else f"{at}: expected {spec.__name__}, got {type(value).__name__}"
    if callable(spec):
        return spec(value)
    raise TypeError(f"not a schema: {spec!r}")


@dataclass(frozen=True)
class FileType:
    """A kind of file the tool writes and reads back.

    ``schema``: what its payload holds (:func:`schema_problem`); ``on_damage``: what the tool
    does when it finds one damaged (for messages and the docs); ``example``: a minimal valid
    payload (the harness damages it; the docs show it); ``legacy``: turns a payload of an
    earlier, unversioned format into today's (None: unversioned files are refused)."""

    kind: str
    version: int
    schema: Any
    on_damage: str
    example: Callable[[], Any]
    legacy: Optional[Callable[[Any], Any]] = None
    lines: bool = False  # one record per line (an append-only log) instead of one JSON document
    #: "json" (stamped with kind and version) or "yaml" (a file users edit and other tools read,
    #: such as a run's config.yaml: not stamped, checked by its schema only)
    fmt: str = "json"


FILE_TYPES: dict[str, FileType] = {}


def register(file_type: FileType) -> FileType:
    if file_type.kind in FILE_TYPES and FILE_TYPES[file_type.kind] != file_type:
        raise ValueError(f"file kind {file_type.kind!r} registered twice")
    FILE_TYPES[file_type.kind] = file_type
    return file_type


def stamp(kind: str, payload: dict) -> dict:
    """``payload`` with the kind and version of its registered file type in :data:`HEADER`."""
    ft = FILE_TYPES[kind]
    problem = schema_problem(payload, ft.schema)
    if problem:  # a bug of ours, never the user's input
        raise ValueError(f"refusing to write a {kind} file that does not match its schema: {problem}")
    return {HEADER: {"kind": kind, "version": ft.version}, **payload}


def write_record(path: Path | str, kind: str, payload: dict, indent: int | None = 2) -> Path:
    """Write ``payload`` (a dict) atomically as a ``kind`` file, stamped with kind and version."""
    return write_json(path, stamp(kind, payload), indent)


def parse_record(text: str | bytes, kind: str, where: Path | str) -> dict:
    """The payload of a ``kind`` file's contents, checked (a :class:`DamagedFile` otherwise)."""
    ft = FILE_TYPES[kind]
    if ft.fmt == "yaml":
        return _parse_yaml(text, ft, where)
    try:
        value = json.loads(text)
    except (ValueError, UnicodeDecodeError) as err:
        raise DamagedFile(where, kind, f"not JSON: {' '.join(str(err).split())[:120]}") from None
    return check_record(value, kind, where)


def _parse_yaml(text, ft: FileType, where) -> dict:
    import yaml

    try:
        value = yaml.safe_load(text)
    except (yaml.YAMLError, UnicodeDecodeError, ValueError) as err:
        raise DamagedFile(where, ft.kind, f"not YAML: {' '.join(str(err).split())[:160]}") from None
    if not isinstance(value, dict):
        raise DamagedFile(where, ft.kind, f"not a mapping of settings (it holds a {type(value).__name__})")
    problem = schema_problem(value, ft.schema)
    if problem:
        raise DamagedFile(where, ft.kind, problem)
    return value


def check_record(value: Any, kind: str, where: Path | str) -> dict:
    """The payload of an already parsed ``kind`` record (e.g. metadata stored inside a
    checkpoint), checked like a file's (a :class:`DamagedFile` otherwise)."""
    ft = FILE_TYPES[kind]
    header = value.get(HEADER) if isinstance(value, dict) else None
    if header is None:
        if ft.legacy is None:
            raise DamagedFile(where, kind, "no lit_cert header: another program's file, or damaged")
        try:
            value = ft.legacy(value)
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise DamagedFile(where, kind, f"neither today's format nor an earlier one ({err})") from None
    elif not isinstance(header, dict) or header.get("kind") != kind:
        got = header.get("kind") if isinstance(header, dict) else header
        raise DamagedFile(where, kind, f"it is a {got!r} file")
    elif not isinstance(header.get("version"), int) or header["version"] > ft.version:
        raise DamagedFile(where, kind, f"format version {header.get('version')!r}, this lit_cert reads up to {ft.version}: "
                                       "written by a newer lit_cert?")
    payload = {k: v for k, v in value.items() if k != HEADER}
    problem = schema_problem(payload, ft.schema)
    if problem:
        raise DamagedFile(where, kind, problem)
    return payload


def read_record(path: Path | str, kind: str) -> dict:
    """The checked payload of the ``kind`` file at ``path`` (a :class:`DamagedFile` if it is
    unreadable, foreign, newer or off-schema; FileNotFoundError if it is absent)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise
    except OSError as err:
        raise DamagedFile(path, kind, f"unreadable: {err.strerror or err}") from None
    return parse_record(data, kind, path)


def damage_notice(err: DamagedFile, action: str, program: str = "lit_cert") -> None:
    """One line on stderr: which file was damaged and what is done about it."""
    print(f"{program}: notice: {err.path} was damaged ({err.reason}); {action}", file=sys.stderr)


# ------------------------------------------------------------------------------- line logs
def append_line(path: Path | str, kind: str, record: dict) -> None:
    """Append one record as one line; a damaged last line (no newline: an interrupted write) is
    closed off first, so the new record never joins it."""
    line = json.dumps(_finite(stamp(kind, record))) + "\n"
    with open(path, "a+b") as f:
        f.seek(0, os.SEEK_END)
        if f.tell() > 0:
            f.seek(-1, os.SEEK_END)
            if f.read(1) != b"\n":
                f.write(b"\n")
        f.write(line.encode())


def read_lines(path: Path | str, kind: str, warn: Optional[Callable[[int, DamagedFile], None]] = None) -> list[dict]:
    """The checked records of a line log (absent file: none). A line that is not a valid record
    -- a torn append, garbage, another kind -- is passed to ``warn`` and skipped."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise DamagedFile(path, kind, f"unreadable: {err.strerror or err}") from None
    records = []
    for number, line in enumerate(raw.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(parse_record(line, kind, f"{path} line {number}"))
        except DamagedFile as err:
            if warn is not None:
                warn(number, err)
    return records
