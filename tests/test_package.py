"""The package as a user installs it: a wheel of this tree in a fresh virtual environment (which
sees this environment's installed dependencies, not its editable lit_cert), and the installed ``lit_cert`` command running every
command. Before 0.2 the script pointed at a module that no longer existed and no test ran it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
COMMANDS = ["fit", "validate", "test", "certify", "export", "predict", "analyze", "sweep", "reproduce"]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """A venv with this tree installed as a wheel (not editable); its ``lit_cert`` script."""
    venv = tmp_path_factory.mktemp("venv")
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    # the dependencies are this environment's: its site-packages joins the new venv's path through a .pth
    # file (appended after the venv's own site-packages, and its own .pth files -- this tree's editable
    # install -- are not processed, so the wheel's copy is the one imported)
    import sysconfig

    site = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here = {sysconfig.get_paths()[k] for k in ("purelib", "platlib")}
    Path(site, "_lit_cert_test_deps.pth").write_text("".join(f"{p}\n" for p in sorted(here)))
    # built from a copy: a build never writes into the working tree (its build/ would go stale)
    import shutil

    source = tmp_path_factory.mktemp("source") / "lit_cert"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", ".venv", "build", "runs", "results", "site", "*.egg-info",
                                                                "__pycache__", "wandb"))
    # the wheel is built by this interpreter's setuptools (the dev extra's, >= 77 for the PEP 639 license
    # field), without isolation so no index is needed; the fresh venv only installs the wheel (its base
    # interpreter's own setuptools may be older)
    dist = tmp_path_factory.mktemp("dist")
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--disable-pip-version-check", "-w", str(dist), str(source)], capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    wheel = next(dist.glob("lit_cert-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True)
    return venv


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "WANDB_MODE": "disabled", "HOME": str(cwd)}
    return subprocess.run([str(venv / "bin" / "lit_cert"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_the_installed_command_runs_every_command(installed, tmp_path):
    where = subprocess.run([str(installed / "bin" / "python"), "-c", "import lit_cert; print(lit_cert.__file__)"],
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    assert str(installed) in where, f"the test must import the installed copy, not the tree: {where}"
    version = _run(installed, "--version", cwd=tmp_path)
    assert version.returncode == 0 and version.stdout.strip() == f"lit_cert {__import__('lit_cert').__version__}"
    listing = _run(installed, "--help", cwd=tmp_path)
    assert listing.returncode == 0 and all(f"\n  {c} " in listing.stdout for c in COMMANDS), listing.stdout
    for command in COMMANDS:
        shown = _run(installed, command, "--help", cwd=tmp_path)
        assert shown.returncode == 0 and "usage:" in shown.stdout and not shown.stderr.count("Traceback"), (command, shown.stderr)
    # reproduce outside a clone: it needs the repository's configs, and says so in one line
    outside = _run(installed, "reproduce", "seed002-table14", "--dry-run", cwd=tmp_path)
    assert outside.returncode == 2 and outside.stderr.strip().startswith("lit_cert: error: seed002-table14 trains with"), outside.stderr
    assert _run(installed, "reproduce", "--list", cwd=tmp_path).returncode == 0
    refused = _run(installed, "certify", "--ckpt", "missing.ckpt", cwd=tmp_path)
    assert refused.returncode == 2 and refused.stderr.strip().startswith("lit_cert: error: --ckpt: does not exist")
    # a command that works exits 0 and prints only its own lines (not the rows it returns to Python)
    done = _run(installed, "analyze", "dln-init", "--widths", "[4]", "--depths", "[2]", "--samples", "2", "--out", "an",
                cwd=tmp_path)
    assert done.returncode == 0 and (tmp_path / "an" / "dln-init.csv").is_file(), done.stderr[-2000:]
    assert "{" not in done.stderr and "tau_closed_form" not in done.stdout + done.stderr


def test_the_dockerfile_copies_what_exists_and_installs_the_tested_versions():
    """No docker daemon or registry here, so the image is checked statically: a CUDA base image
    with a pinned tag, every COPY source exists, the install applies constraints.txt, apt lines
    clean up, and the entry point is the installed command."""
    import json
    import shlex

    lines, current = [], ""
    for raw in (ROOT / "Dockerfile").read_text().splitlines():
        if raw.strip().startswith("#") or not raw.strip():
            continue
        current += " " + raw.strip().rstrip("\\")
        if not raw.rstrip().endswith("\\"):
            lines.append(current.strip())
            current = ""
    instructions = [(line.split(None, 1)[0], line.split(None, 1)[1]) for line in lines]
    assert all(op.isupper() for op, _ in instructions), "instructions in upper case"
    base = [arg for op, arg in instructions if op == "FROM"]
    assert len(base) == 1 and "cuda" in base[0] and ":" in base[0] and not base[0].endswith(":latest")
    copied = [src for op, arg in instructions if op == "COPY" for src in shlex.split(arg)[:-1]]
    assert copied and all((ROOT / src).exists() for src in copied), [s for s in copied if not (ROOT / s).exists()]
    for needed in ("lit_cert", "configs", "sweeps", "scripts", "constraints.txt", "pyproject.toml"):
        assert needed in copied, needed
    runs = [arg for op, arg in instructions if op == "RUN"]
    assert any("pip install" in r and "-c constraints.txt" in r for r in runs)
    for r in runs:
        if "apt-get install" in r:
            assert "--no-install-recommends" in r and "rm -rf /var/lib/apt/lists" in r, r
    entry = [json.loads(arg) for op, arg in instructions if op == "ENTRYPOINT"]
    assert entry == [["lit_cert"]]
