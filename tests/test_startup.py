"""Commands that do not train start without Lightning or W&B: ``certify``, ``export``,
``analyze``, ``sweep`` and their ``--help`` read checkpoints and data through Lightning-free code
(lit_cert.runs, the plain dataset classes), so a fresh interpreter running them never imports
``lightning`` or ``wandb`` (issue #24: most of their start-up time was those imports)."""

import json
import os
import subprocess
import sys
from pathlib import Path

from .helpers import trained_run

PROBE = """
import json, sys
from lit_cert.commands import main
for argv in json.loads(sys.argv[1]):
    try:
        main(argv)
    except SystemExit as stop:
        if stop.code not in (0, None):
            raise
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("lightning", "pytorch_lightning", "wandb"))
print("HEAVY=" + json.dumps(heavy))
"""


def test_commands_that_do_not_train_import_neither_lightning_nor_wandb(workdir):
    ckpt = str(trained_run(workdir))
    (workdir / "s.yaml").write_text("method: grid\nparameters: {a: {values: [1]}}\ncommand:\n  - ${interpreter}\n  - -c\n  - pass\n")
    commands = [
        ["certify", "--help"], ["export", "--help"], ["analyze", "--help"], ["analyze", "cr-curve", "--help"], ["sweep", "--help"],
        ["certify", "--ckpt", ckpt, "--limit", "6", "--stages", "[pgd,ibp,crown]", "--progress=false", "--out", "c"],
        ["export", "--ckpt", ckpt, "--out", "e", "--limit", "2"],
        ["analyze", "tightness", "--ckpt", ckpt, "--limit", "8", "--out", "a"],
        ["analyze", "cr-curve", "--ckpt", ckpt, "--limit", "8", "--points", "2", "--out", "a"],
        ["analyze", "dln-init", "--widths", "4", "--depths", "2", "--samples", "2", "--out", "a"],
        ["sweep", "s.yaml", "--out", "sw"],
    ]
    env = {**os.environ, "WANDB_MODE": "disabled"}
    proc = subprocess.run([sys.executable, "-c", PROBE, json.dumps(commands)], cwd=workdir, env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    heavy = json.loads(proc.stdout.split("HEAVY=")[-1])
    assert heavy == [], heavy
    assert (Path(workdir) / "c" / "summary.json").is_file() and (Path(workdir) / "e" / "model.onnx").is_file()


HELP_PROBE = """
import sys
from lit_cert.commands import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print("TORCH=" + str("torch" in sys.modules))
"""


def test_help_and_bad_flags_answer_without_importing_torch(workdir):
    """``--help`` and a misspelt flag of certify/export/analyze/sweep are answered by the torch-free
    settings modules (lit_cert.certify.settings, lit_cert.commands.*): torch is imported only once
    the work starts. A wrong flag still gets the one-line error."""
    env = {**os.environ, "WANDB_MODE": "disabled"}
    for argv in (["certify", "--help"], ["export", "--help"], ["analyze", "--help"], ["sweep", "--help"],
                 ["certify", "--ckpt", "x.ckpt", "--stagez", "ibp"], ["export", "--limt", "3"]):
        proc = subprocess.run([sys.executable, "-c", HELP_PROBE, *argv], cwd=workdir, env=env, capture_output=True, text=True,
                              timeout=120)
        assert "TORCH=False" in proc.stdout, (argv, proc.stdout[-500:], proc.stderr[-1000:])
        if argv[-1] != "--help":
            assert proc.stderr.strip().startswith("lit_cert: error:") and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
