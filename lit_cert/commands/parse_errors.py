"""One line for everything the config parser (jsonargparse) rejects, with a "did you mean".

jsonargparse reports a bad value as a usage block plus a nested report of every type it tried
(~100 lines for a misspelt key). :func:`summarize` turns that report into the one cause a user
needs -- which key, what was expected, what was given, and the closest valid name when the
input looks like a typo -- so the CLI can print it as ``lit_cert: error: <cause>`` (exit 2) like
every other bad input. The report's structure is the parser's, not ours, so the summariser only
recognises its stable phrases and falls back to the report's own lines, joined.
"""

from __future__ import annotations

import importlib
import inspect
import re
from typing import Any, Callable, Iterable, Sequence

from lit_cert.errors import did_you_mean

_NOISE = (
    "Does not validate against any of the Union subtypes",
    "Subtypes:",
    "Errors:",
    "Given value type:",
    "Expected a <class 'NoneType'>",
)


def class_parameters(class_path: str) -> list[str]:
    """Constructor argument names of ``class_path`` (our methods pass their base class's
    arguments through ``**kwargs``: :func:`lit_cert.options.constructor_parameters` follows them)."""
    from lit_cert.options import constructor_parameters

    try:
        module, _, name = class_path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return []
    if not inspect.isclass(cls):
        return []
    return [name for name, _, _ in constructor_parameters(cls)]


def module_classes(module_name: str) -> list[str]:
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return []
    return [f"{module_name}.{n}" for n in dir(module) if not n.startswith("_") and inspect.isclass(getattr(module, n))]


def _key_path(lines: Sequence[str], upto: int) -> list[str]:
    """The nested ``Parser key "..."`` names above line ``upto``, outermost first (only those
    whose indentation encloses the line)."""
    path: list[tuple[int, str]] = []
    for line in lines[: upto + 1]:
        m = re.match(r'(\s*)(?:- )?Parser key "([^"]+)"', line)
        if m:
            indent = len(m.group(1))
            path = [(i, k) for i, k in path if i < indent] + [(indent, m.group(2))]
    return [k for _, k in path]


def _dotted(keys: Sequence[str], leaf: str | None = None) -> str:
    """``["model", "network"]`` + ``widht`` -> ``model.init_args.network.init_args.widht``."""
    parts = list(keys) + ([leaf] if leaf else [])
    return ".init_args.".join(parts) if len(parts) > 1 else (parts[0] if parts else "?")


def _config_files(argv: Sequence[str]) -> list[str]:
    files = []
    for i, arg in enumerate(argv):
        if arg in ("--config", "-c") and i + 1 < len(argv):
            files.append(argv[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files


def summarize(message: str, argv: Sequence[str] = (), known_options: Iterable[str] = (), commands: Iterable[str] = ()) -> str:
    """The one-line cause of a jsonargparse error ``message`` (the text after ``error:``).

    ``argv`` is the command line (to name config files), ``known_options`` the option strings of
    the subcommand's parser and ``commands`` the subcommand names (for "did you mean")."""
    text = message.strip()
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    known = list(known_options)

    m = re.match(r"unrecognized arguments: (.*)", text)
    if m:
        tokens = [t for t in m.group(1).split() if t not in set(commands)]
        if not tokens:  # only the subcommand itself: it is unknown to the main parser
            word = m.group(1).split()[0]
            if word in set(commands):
                return f"could not parse the arguments of '{word}'"
            return f"unknown command '{word}'{did_you_mean(word, commands)}; commands: {', '.join(commands)}"
        flags = [t.split("=", 1)[0] for t in tokens if t.startswith("-")]
        if flags:
            hints = [f"{f}{did_you_mean(f, known)}" for f in flags]
            return f"unknown option{'s' if len(hints) > 1 else ''} {', '.join(hints)}"
        return f"unexpected argument{'s' if len(tokens) > 1 else ''} {' '.join(tokens)}"

    m = re.search(r"argument subcommand: invalid choice: '([^']*)'", text)
    if m:
        word = m.group(1)
        return f"unknown command '{word}'{did_you_mean(word, commands)}; commands: {', '.join(commands)}"

    m = re.search(r"the following arguments are required: (.*)", text)
    if m:
        names = [n.split(".", 1)[-1] for n in m.group(1).split(", ")]
        return (f"missing required setting{'s' if len(names) > 1 else ''}: {', '.join(names)} -- give a config "
                "file (--config configs/quickstart.yaml) or set them on the command line")

    m = re.search(r"File does not exist: '([^']*)'", text) or re.search(r'Parser key "config".*does not exist', text)
    if m:
        return f"config file '{m.group(1) if m.groups() else '?'}' does not exist"

    m = re.search(r"Group '([^']+)' does not accept option '([^']+)'", text)
    if m:
        group, option = m.groups()
        key = f"--{group}.{option}"
        return f"{key}: unknown setting{did_you_mean(key, known)}"

    files = _config_files(argv)
    named = f" {files[-1]}" if files else ""
    if text.startswith("Problems parsing config"):
        detail = " ".join(line.strip() for line in lines[:2]).replace("Problems parsing config: ", "")
        return f"config file{named} is not valid YAML: {detail}"
    if text.startswith("Unexpected config"):
        return f"config file{named} is not a mapping of settings (got {text.split(':', 1)[1].strip()!r})"

    for i, line in enumerate(lines):
        m = re.search(r"Option '([^']+)' is not accepted", line)
        if m:
            option = m.group(1)
            classes = [re.search(r"class_path '([^']+)'", lines[j]).group(1) for j in range(i) if "class_path '" in lines[j]]
            owner = classes[-1] if classes else None
            hint = did_you_mean(option, class_parameters(owner)) if owner else ""
            where = f" of {owner}" if owner else ""
            return f"{_dotted(_key_path(lines, i), option)}: unknown argument '{option}'{where}{hint}"

    for i, line in enumerate(lines):
        m = re.search(r"module '([^']+)' has no attribute '([^']+)'", line) or re.search(r"No module named '([^']+)'()", line)
        if m:
            classes = [re.search(r"class_path '([^']+)'", lines[j]).group(1) for j in range(i + 1) if "class_path '" in lines[j]]
            given = classes[-1] if classes else f"{m.group(1)}.{m.group(2)}"
            module = given.rpartition(".")[0]
            candidates = module_classes(module) or module_classes(module.rpartition(".")[0])
            return f"{_dotted(_key_path(lines, i))}: no class {given}{did_you_mean(given, candidates)}"

    for i, line in enumerate(lines):
        m = re.search(r"Expected a (.+?)\. Got value: (.*)$", line.strip())
        if m:
            expected, value = m.group(1), m.group(2)
            key = _dotted(_key_path(lines, i))
            options = _literal_options(expected)
            if options:
                return f"{key}: must be one of {', '.join(options)}, got {value!r}{did_you_mean(value, options)}"
            kind = re.sub(r"<class '([^']+)'>", r"\1", expected)
            if kind == "float" and value.lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
                return f"{key}: must be a finite number, got {value}"
            return f"{key}: expected {kind}, got {value!r}"

    deepest = max((i for i, line in enumerate(lines) if 'Parser key "' in line), default=None)
    if deepest is not None:
        after = lines[deepest + 1:]
        end = next((j for j, line in enumerate(after) if "Given value:" in line), None)
        if end is not None:
            given = after[end].split("Given value:", 1)[1].strip()
            expected = [_expected_kind(line) for line in after[:end] if "Expected a" in line and "NoneType" not in line]
            options = list(dict.fromkeys(o for kind in expected for o in _literal_options(kind)))
            key = _dotted(_key_path(lines, deepest))
            if options and len(options) == sum(len(_literal_options(k)) for k in expected) and all(_literal_options(k) for k in expected):
                return f"{key}: must be one of {', '.join(options)}, got {given!r}{did_you_mean(given, options)}"
            if expected == ["float"] and given.lower() in ("nan", "inf", "-inf", "+inf", "infinity", "-infinity"):
                return f"{key}: must be a finite number, got {given}"
            if expected:
                return f"{key}: expected {' or '.join(expected)}, got {given!r}"
    kept = [line.strip(" -") for line in lines if not any(n in line for n in _NOISE)]
    return "; ".join(kept) or text


def _expected_kind(line: str) -> str:
    return re.sub(r"<class '([^']+)'>", r"\1", line.split("Expected a", 1)[1]).strip(" .")


def _literal_options(kind: str) -> list[str]:
    lit = re.match(r"typing\.Literal\[(.*)\]$", kind)
    return [o.strip().strip("'\"") for o in lit.group(1).split(",")] if lit else []


def one_line_errors(parse: Callable[[], Any], argv: Sequence[str], known_options: Callable[[], Iterable[str]],
                    commands: Iterable[str] = ()):
    """Run ``parse()`` (a jsonargparse parse), turning what it rejects into one
    :class:`~lit_cert.errors.ConfigError` line (:func:`summarize`) instead of its usage block and
    nested report; ``--help`` and ``--print_config`` print and exit as usual."""
    import contextlib
    import io
    import sys

    from lit_cert.errors import ConfigError

    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            result = parse()
    except SystemExit as stop:
        text = captured.getvalue()
        if stop.code in (0, None) or "error:" not in text:
            sys.stderr.write(text)
            raise
        message = summarize(text[text.rindex("error:") + len("error:"):], argv, known_options(), list(commands))
        raise ConfigError(message) from None
    sys.stderr.write(captured.getvalue())
    return result


def parse_one_line(parser, argv: Sequence[str], commands: Iterable[str] = ()):
    """``parser.parse_args(argv)`` of a jsonargparse parser through :func:`one_line_errors`."""
    return one_line_errors(lambda: parser.parse_args(list(argv)), argv,
                           lambda: [o for a in parser._actions for o in a.option_strings], commands)
