"""The commands -- the only package that parses arguments.

``python -m lit_cert <command>``:

* ``fit`` / ``validate`` / ``test`` -- :mod:`.fit` (LightningCLI: one config for every method);
* ``certify`` -- :mod:`.certify` (the cascade over a dataset split, sharded and resumable);
* ``export`` -- :mod:`.export` (ONNX + VNN-LIB for external verifiers);
* ``analyze`` -- :mod:`.analyze` (the seeds' analyses, CSV + PNG);
* ``sweep`` -- :mod:`.sweep` (W&B sweep files without a W&B server);
* ``predict`` -- :mod:`.predict` (predictions of a trained network, each with its certificate);
* ``reproduce`` -- :mod:`.reproduce` (a paper's table with one command: the paper beside ours).

Every option of every command is declared once with its constraint (:mod:`lit_cert.options`)
and checked before any work, naming the option; every file a command writes and reads back goes
through :mod:`lit_cert.persist`.

Each command module is imported only when its command runs. Everything a user can get wrong
raises a :class:`~lit_cert.errors.UserError` where it is read; :func:`main` -- the one place --
prints it as ``lit_cert: error: <message>`` and exits with status 2, no traceback.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, Optional

from lit_cert.commands.registry import COMMANDS, SUMMARIES
from lit_cert.errors import UserError


def top_level_help() -> str:
    from lit_cert import __version__

    width = max(map(len, SUMMARIES))
    lines = ["usage: lit_cert <command> [options]   (or: python -m lit_cert <command> ...)", "",
             f"lit_cert {__version__}: certified training with PyTorch Lightning.", "", "commands:"]
    lines += [f"  {name:<{width}}  {text}" for name, text in SUMMARIES.items()]
    lines += ["", "lit_cert <command> --help shows a command's options; lit_cert --version prints the version."]
    return "\n".join(lines)


def _user_error(err: BaseException) -> BaseException | None:
    """Our UserError, possibly wrapped by jsonargparse or Lightning while instantiating -- or
    Lightning's own MisconfigurationException, which is a configuration error by definition."""
    seen = set()
    while err is not None and id(err) not in seen:
        if isinstance(err, UserError) or type(err).__name__ == "MisconfigurationException":
            return err
        seen.add(id(err))
        err = err.__cause__ or err.__context__
    return None


def cli() -> None:
    """The installed ``lit_cert`` command: :func:`main` on ``sys.argv``, exit status 0 on success
    (a console script passes what its function returns to ``sys.exit``: the summaries :func:`main`
    returns to Python callers would otherwise be printed and exit with status 1)."""
    main()


def main(args: Optional[list[str]] = None) -> Any:
    """Run a command (``args=None`` reads ``sys.argv``); bad input exits with status 2 and one
    line on stderr. Called from Python inside an active W&B run, ``analyze`` logs to that run."""
    argv = sys.argv[1:] if args is None else list(args)
    if not argv or argv[0] in ("-h", "--help"):
        print(top_level_help())
        if not argv:
            raise SystemExit(2)
        return None
    if argv[0] in ("-V", "--version"):
        from lit_cert import __version__

        print(f"lit_cert {__version__}")
        return None
    try:
        if argv and argv[0] in COMMANDS and COMMANDS[argv[0]] != "fit":
            return importlib.import_module(f"lit_cert.commands.{COMMANDS[argv[0]]}").main(argv[1:])
        from lit_cert.commands.fit import run

        return run(args)
    except KeyboardInterrupt:  # commands that keep partial work say so themselves (certify, sweep, fit)
        name = argv[0] if argv and argv[0] in COMMANDS else "lit_cert"
        print(f"lit_cert {name}: interrupted (Ctrl-C); files are replaced only by finished work, so earlier results "
              "are intact", file=sys.stderr)
        raise SystemExit(130) from None
    except Exception as err:  # noqa: BLE001 - only our own user-facing errors are caught
        user_error = _user_error(err)
        if user_error is None:
            raise
        message = " ".join(str(user_error).split())  # one line, whatever the message held
        print(f"lit_cert: error: {message}", file=sys.stderr)
        raise SystemExit(2) from None
