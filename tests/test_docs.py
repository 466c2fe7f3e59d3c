"""The documentation does not go stale: every ``lit_cert`` command line in a bash block of the
README or of ``docs/`` is parsed and validated by the real command (its options, values and
files), up to the point where work would start; placeholders (``<id>``, ``...``, ``CKPT``,
``DIR``) become a tiny real run. The site itself is built with ``mkdocs build --strict`` in CI.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
import shutil
from pathlib import Path

import pytest

from .helpers import trained_run_in

ROOT = Path(__file__).resolve().parents[1]
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


def documented_commands() -> list[tuple[str, int, str]]:
    """(file, block number, command line) of every lit_cert line of a bash block, in order."""
    found = []
    for path in DOC_FILES:
        text = path.read_text()
        for number, block in enumerate(re.findall(r"```bash\n(.*?)```", text, re.S)):
            for line in block.replace("\\\n", " ").splitlines():
                if "lit_cert" in line and not line.strip().startswith("#"):
                    found.append((str(path.relative_to(ROOT)), number, line.strip()))
    return found


def lit_cert_arguments(line: str, ckpt: str, folder: str) -> tuple[list[str], str | None]:
    """The arguments after ``lit_cert`` with placeholders filled in, and a file that stdout is
    redirected to (``> FILE``), if any."""
    line = re.sub(r"\[--\w+ [A-Z]+\]", "", line)  # optional arguments shown as [--count N]
    line = line.replace("<id>", "docsrun")
    tokens = shlex.split(line, comments=True)
    if tokens and tokens[0] == "sbatch":  # --wrap "python -m lit_cert ..."
        tokens = shlex.split(tokens[tokens.index(next(t for t in tokens if t.startswith("--wrap"))) + 1])
    redirect = None
    if ">" in tokens:
        redirect = tokens[tokens.index(">") + 1]
        tokens = tokens[: tokens.index(">")]
    tokens = [t for t in tokens if t != "&"]
    start = next(i for i, t in enumerate(tokens) if t.endswith("lit_cert")) + 1
    args = tokens[start:]
    replace = {"...": ckpt, "CKPT": ckpt, "A.ckpt": ckpt, "B.ckpt": ckpt, "DIR": folder}
    return [replace.get(a, a) for a in args], redirect


class _Parsed(Exception):
    """Raised where fit would start building classes: the command line was accepted."""


def parse_only(args: list[str]) -> None:
    """Run the command's parsing and validation, not its work."""
    from lit_cert.commands import COMMANDS, main

    command = args[0]
    if "--help" in args or "--print_config" in args:
        with pytest.raises(SystemExit) as stop:
            main(args)
        assert stop.value.code in (0, None)
        return
    if COMMANDS.get(command) == "fit":
        from lit_cert.commands import fit

        original = fit.LitCertCLI.instantiate_classes

        def stop(self):
            raise _Parsed

        fit.LitCertCLI.instantiate_classes = stop
        try:
            with pytest.raises(_Parsed):
                fit.run(args)
        finally:
            fit.LitCertCLI.instantiate_classes = original
        return
    if command == "analyze":
        from lit_cert.commands.analyze import parse
    else:
        import importlib

        parse = importlib.import_module(f"lit_cert.commands.{COMMANDS[command]}").parse
    parse(args[1:])


@pytest.fixture(scope="module")
def docs_folder(tmp_path_factory):
    """A working folder like a user's clone: configs/ and sweeps/ beside a run whose id is
    ``docsrun`` (a tiny trained run, with last.ckpt and best-epoch004.ckpt)."""
    root = tmp_path_factory.mktemp("docs")
    ckpt = trained_run_in(root)
    run = root / "runs" / "lit_cert" / "docsrun"
    shutil.move(str(ckpt.parent.parent), str(run))
    shutil.copy(run / "checkpoints" / "last.ckpt", run / "checkpoints" / "best-epoch004.ckpt")
    for name in ("configs", "sweeps"):
        (root / name).symlink_to(ROOT / name)
    return root


COMMAND_LINES = documented_commands()


def test_the_docs_show_commands():
    assert len(COMMAND_LINES) > 30
    assert {Path(f).name for f, _, _ in COMMAND_LINES} >= {"README.md", "certify.md", "fit.md", "analyze.md", "sweeps.md"}


@pytest.mark.parametrize("where,block,line", COMMAND_LINES, ids=[f"{f}:{b}:{i}" for i, (f, b, _) in enumerate(COMMAND_LINES)])
def test_every_documented_command_is_accepted(where, block, line, docs_folder, monkeypatch, capsys):
    monkeypatch.chdir(docs_folder)
    ckpt = str(docs_folder / "runs" / "lit_cert" / "docsrun" / "checkpoints" / "last.ckpt")
    args, redirect = lit_cert_arguments(line, ckpt, str(docs_folder / "out"))
    if redirect:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            parse_only(args)
        (docs_folder / redirect).write_text(out.getvalue())
    else:
        parse_only(args)
    assert "lit_cert: error" not in capsys.readouterr().err
