"""The README's multi-GPU command lines, as users start them, build the intended Trainer.

Each line of the block in docs/guide/sweeps.md after ``<!-- multi-gpu-commands -->`` is split into its launcher
(plain ``python -m``, ``torchrun``, ``srun``) and lit_cert's arguments; the launcher's
environment is recreated (torchrun's RANK/WORLD_SIZE/..., SLURM's SLURM_*), CUDA is reported
present with the documented device count, and the CLI builds the Trainer without running it. A
typo in a key, a path or a number in the docs fails here."""

from __future__ import annotations

import os
import shlex
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

import pytest
from lightning.pytorch.strategies import DDPStrategy

from lit_cert.commands.fit import PARSER_KWARGS, LitCertCLI

ROOT = Path(__file__).resolve().parents[1]


def documented_commands() -> list[str]:
    text = (ROOT / "docs" / "guide" / "sweeps.md").read_text()
    block = text.split("<!-- multi-gpu-commands -->", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]


def _option(tokens: list[str], name: str, default=None):
    for i, tok in enumerate(tokens):
        if tok == name and i + 1 < len(tokens):
            return tokens[i + 1]
        if tok.startswith(name + "="):
            return tok.split("=", 1)[1]
    return default


def launch(line: str) -> tuple[list[str], dict[str, str], int, str]:
    """(lit_cert arguments, the launcher's environment for one rank, GPUs per node, launcher)."""
    tokens = shlex.split(line)
    launcher = "python" if tokens[0].endswith("lit_cert") else tokens[0]  # the installed command or python -m
    if launcher == "srun":
        tokens = tokens[1:]
    args = tokens[tokens.index("lit_cert") + 1:]
    nodes = int(_option(args, "--trainer.num_nodes", 1))
    gpus = int(_option(args, "--trainer.devices", 4))
    env: dict[str, str] = {}
    if launcher == "torchrun":
        assert int(_option(tokens, "--nnodes")) == nodes and int(_option(tokens, "--nproc_per_node")) == gpus, line
        env = {"WORLD_SIZE": str(nodes * gpus), "RANK": str(gpus + 1), "LOCAL_RANK": "1", "GROUP_RANK": "1",
               "LOCAL_WORLD_SIZE": str(gpus), "TORCHELASTIC_RUN_ID": "docs", "MASTER_ADDR": "HOST", "MASTER_PORT": "29500"}
    elif launcher == "srun":
        env = {"SLURM_NTASKS": str(nodes * gpus), "SLURM_NTASKS_PER_NODE": str(gpus), "SLURM_JOB_ID": "1",
               "SLURM_PROCID": str(gpus + 1), "SLURM_LOCALID": "1", "SLURM_NODEID": "1", "SLURM_JOB_NAME": "train",
               "SLURM_NODELIST": "node[1-2]"}
    return args, env, gpus, launcher


@contextmanager
def built_trainer(args: list[str], env: dict[str, str], gpus: int):
    """The Trainer the CLI builds from ``args`` under the launcher's environment (kept while the
    caller inspects it: the cluster environments read it lazily)."""
    from lit_cert.data import ImageDataModule
    from lit_cert.methods import CertifiedMethod

    clean = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "TORCHELASTIC", "LOCAL_RANK", "RANK", "WORLD_SIZE",
                                                                          "GROUP_RANK", "MASTER_"))}
    with mock.patch.dict(os.environ, {**clean, **env, "WANDB_MODE": "disabled"}, clear=True), \
            mock.patch("torch.cuda.is_available", return_value=True), mock.patch("torch.cuda.device_count", return_value=gpus), \
            mock.patch("lightning.fabric.accelerators.cuda.num_cuda_devices", return_value=gpus), \
            mock.patch("lightning.fabric.accelerators.cuda.CUDAAccelerator.is_available", return_value=True), \
            mock.patch("lightning.pytorch.accelerators.cuda.CUDAAccelerator.is_available", return_value=True):
        cli = LitCertCLI(CertifiedMethod, ImageDataModule, subclass_mode_model=True, subclass_mode_data=True,
                         parser_kwargs=PARSER_KWARGS,
                         trainer_defaults={"logger": False}, auto_configure_optimizers=False, run=False,
                         args=[a for a in args if a != "fit"])
        yield cli.trainer


def test_the_readme_documents_every_launcher():
    launchers = {launch(line)[3] for line in documented_commands()}
    assert launchers == {"python", "torchrun", "srun"}


@pytest.mark.parametrize("line", documented_commands())
def test_documented_multi_gpu_command_builds_its_trainer(workdir, monkeypatch, line):
    monkeypatch.chdir(ROOT)
    args, env, gpus, launcher = launch(line)
    with built_trainer(args, env, gpus) as trainer:
        check(trainer, args, gpus, launcher, line)


def check(trainer, args, gpus, launcher, line):
    nodes = int(_option(args, "--trainer.num_nodes", 1))
    assert isinstance(trainer.strategy, DDPStrategy), line
    assert trainer.num_nodes == nodes
    if "ddp_cpu" in line:
        assert trainer.num_devices == 2 and trainer.world_size == 2 and trainer.strategy._layer_sync is None
        return
    assert type(trainer.accelerator).__name__ == "CUDAAccelerator"
    assert trainer.num_devices == gpus and trainer.world_size == nodes * gpus
    assert trainer.strategy._layer_sync is not None  # BatchNorm statistics synchronised across GPUs
    env_name = type(trainer.strategy.cluster_environment).__name__
    assert env_name == {"torchrun": "TorchElasticEnvironment", "srun": "SLURMEnvironment", "python": "LightningEnvironment"}[launcher]
    if launcher != "python":
        assert trainer.global_rank == gpus + 1 and trainer.local_rank == 1  # rank read from the launcher
