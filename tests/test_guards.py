"""Issue #34's findings, one test each: every one of these failed (a wrong number, lost data or
a traceback) before the guards came from the declarations (:mod:`lit_cert.options`,
:mod:`lit_cert.persist`, :mod:`lit_cert.bounds.inputs`)."""

from __future__ import annotations

import json
import os
import textwrap
from pathlib import Path

import lightning as L
import pytest
import torch

from lit_cert.commands import main

from .helpers import TRAINED_RUN, run_dirs, trained_run_in, write_config


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One tiny trained run (synthetic data, FC): its last.ckpt."""
    return trained_run_in(tmp_path_factory.mktemp("guards"))


def one_error(capsys, argv, code=2, alone=True) -> str:
    """The one ``lit_cert: error:`` line of a refused command (``alone``: and nothing else)."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("lit_cert: error:")]
    assert stop.value.code == code, err
    assert "Traceback" not in err and len(errors) == 1 and (len(lines) == 1 or not alone), err
    return errors[0]


#: the trained run's config with data of the same shape and another content
OTHER_DATA = TRAINED_RUN.replace("batch_size: 32}", "batch_size: 32, seed: 9}").split("trainer:")[0]


# ---------------------------------------------------------------- 1. data identity
def test_certify_refuses_another_dataset_and_a_worker_of_other_data(run, workdir, capsys):
    other = write_config(workdir, OTHER_DATA, "other.yaml")
    common = ["certify", "--ckpt", str(run), "--stages", "[ibp]", "--progress", "false", "--limit", "16", "--shard_size", "8"]
    line = one_error(capsys, [*common, "--out", "a", "--run_config", other])
    assert "trained on other data" in line and "--allow_other_data" in line
    # a first worker certifies the run's own data; a second worker with other data (allowed on
    # purpose) must not join that folder: the settings record the data's fingerprint
    main([*common, "--out", "shared", "--worker", "1/2"])
    line = one_error(capsys, [*common, "--out", "shared", "--worker", "2/2", "--run_config", other, "--allow_other_data", "true"],
                     alone=False)  # after the notice that other data was allowed
    assert "data.fingerprint" in line and "Resuming would mix them" in line and len(line) < 400
    summary = main([*common, "--out", "own", "--run_config", other, "--allow_other_data", "true"])
    assert summary["data"]["fingerprint"] != json.loads((Path("shared") / "settings.json").read_text())["data"]["fingerprint"]


def test_checkpoints_record_their_data(run):
    state = torch.load(run, weights_only=True)
    record = state["lit_cert_data"]
    assert record["dataset"] == "SyntheticImages" and set(record["splits"]) == {"train", "val", "test"}
    assert all(len(s["fingerprint"]) == 64 for s in record["splits"].values())


def test_test_refuses_other_data_unless_allowed(run, workdir, capsys):
    other = write_config(workdir, OTHER_DATA + "trainer: {enable_progress_bar: false}\n", "other.yaml")
    line = one_error(capsys, ["test", "--config", other, "--ckpt_path", str(run)])
    assert "trained on other data" in line and "test split" in line
    main(["test", "--config", other, "--ckpt_path", str(run), "--allow_other_data", "true"])
    assert "notice: other data" in capsys.readouterr().err


# ---------------------------------------------------------------- 3. outputs replaced only on success
def test_analyses_never_empty_or_replace_results_when_they_fail(workdir, capsys, monkeypatch):
    main(["analyze", "dln-init", "--widths", "[4]", "--depths", "[2]", "--samples", "2", "--out", "an"])
    good = (workdir / "an" / "dln-init.csv").read_text()
    assert "lit_cert: error: --widths: must not be empty" in one_error(capsys, ["analyze", "dln-init", "--widths", "[]", "--out", "an"])
    assert (workdir / "an" / "dln-init.csv").read_text() == good
    # a computation that fails after the CSV was made: the CSV and the plot stay the old ones
    import lit_cert.commands.analyses.dln_init as module

    real = module.save_plot

    def broken(*args, **kwargs):
        raise RuntimeError("plotting failed")

    monkeypatch.setattr(module, "save_plot", broken)
    with pytest.raises(RuntimeError):
        main(["analyze", "dln-init", "--widths", "[8]", "--depths", "[2]", "--samples", "2", "--out", "an"])
    monkeypatch.setattr(module, "save_plot", real)
    assert (workdir / "an" / "dln-init.csv").read_text() == good
    assert not [p for p in (workdir / "an").iterdir() if p.name.endswith(".tmp")]
    assert "--certifier: must not be empty" in one_error(
        capsys, ["analyze", "cr-curve", "--ckpt", "[an/dln-init.csv]", "--certifier", "[]", "--out", "an"])


# ---------------------------------------------------------------- 4. schedule across a changed epoch length
class EpsRecorder(L.Callback):
    def __init__(self):
        self.eps = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.eps.append(float(pl_module.eps))


def _fit(tmp_path, batch_size, max_epochs, ckpt=None):
    from lit_cert.callbacks import CertifiedSchedule
    from lit_cert.data import SyntheticImages
    from lit_cert.methods import IBP
    from lit_cert.models import FC

    torch.manual_seed(0)
    dm = SyntheticImages(in_shape=(1, 4, 4), train_size=64, val_size=16, test_size=16, batch_size=batch_size)
    model = IBP(network=FC(hidden=[8]), data_info=dm.info, eps_train=0.1, eps_test=0.1)
    rec = EpsRecorder()
    trainer = L.Trainer(max_epochs=max_epochs, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        callbacks=[CertifiedSchedule(warmup_epochs=1, ramp_epochs=4, shape="linear"), rec,
                                   L.pytorch.callbacks.ModelCheckpoint(dirpath=tmp_path, save_last=True)],
                        default_root_dir=tmp_path)
    trainer.fit(model, datamodule=dm, ckpt_path=ckpt)
    return rec.eps


def test_the_eps_schedule_continues_when_the_epoch_length_changes(tmp_path, capsys):
    """Warm-up 1 epoch, linear ramp over 4 epochs to 0.1. Three epochs of 4 steps, then resumed
    with half the batch size (8 steps per epoch): eps goes on from epoch 3 (0.05) in steps of
    0.1 / 32 -- before, it jumped to the value of global step 12 at the new length (epoch 1.5)."""
    first = _fit(tmp_path / "a", batch_size=16, max_epochs=3)
    assert len(first) == 12 and first[-1] == pytest.approx(0.1 * (11 / 4 - 1) / 4)
    halved = _fit(tmp_path / "b", batch_size=8, max_epochs=4, ckpt=str(tmp_path / "a" / "last.ckpt"))
    assert "the epoch length changed from 4 to 8" in capsys.readouterr().err
    assert len(halved) == 8 and halved[0] == pytest.approx(0.1 * (3 - 1) / 4)
    assert [b - a for a, b in zip(halved, halved[1:])] == pytest.approx([0.1 / 32] * 7)


# ---------------------------------------------------------------- 5, 6: what certify reports
def test_certify_refuses_an_empty_split_and_reports_only_what_ran(workdir, capsys):
    cfg = write_config(workdir, textwrap.dedent(OTHER_DATA).replace("val_size: 32", "val_size: 0")
                       + "trainer: {max_epochs: 1, enable_progress_bar: false, enable_model_summary: false}\n")
    main(["fit", "--config", cfg])
    ckpt = Path(run_dirs(workdir)[0]) / "checkpoints" / "last.ckpt"
    capsys.readouterr()
    assert "the val split of this run's data is empty" in one_error(capsys, ["certify", "--ckpt", str(ckpt), "--split", "val"])
    summary = main(["certify", "--ckpt", str(ckpt), "--stages", "[ibp]", "--progress", "false", "--out", "c"])
    out = capsys.readouterr().out
    assert summary["pgd_accuracy"] is None and "PGD accuracy" not in out
    assert summary["bound_methods"] == {"ibp": "ibp(relu_shrinkage=None)"} and "ibp(relu_shrinkage=None)" in out  # which variant ran
    assert json.loads((workdir / "c" / "summary.json").read_text())["pgd_accuracy"] is None


# ---------------------------------------------------------------- 7: workers
@pytest.mark.parametrize("env,expected", [
    ({"RANK": "1", "WORLD_SIZE": "2"}, (2, 2)),
    ({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_MAX": "4"}, (3, 3)),
    ({"SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "2"}, (2, 2)),
    ({"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}, (3, 4)),
])
def test_workers_from_the_environment(env, expected):
    from lit_cert.certify.shards import parse_worker

    assert parse_worker("auto", env) == expected


@pytest.mark.parametrize("env,message", [
    ({"RANK": "2", "WORLD_SIZE": "2"}, "is not a rank"),
    ({"RANK": "0", "WORLD_SIZE": "abc"}, "WORLD_SIZE='abc' is not an integer"),
    ({"RANK": "0"}, "set together"),
    ({"SLURM_ARRAY_TASK_ID": "1", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_MAX": "2"}, "not on the array"),
    ({"SLURM_ARRAY_TASK_ID": "9", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"}, "outside the array"),
])
def test_inconsistent_worker_environments_are_refused(env, message):
    from lit_cert.certify.shards import parse_worker
    from lit_cert.errors import ConfigError

    with pytest.raises(ConfigError, match=message):
        parse_worker("auto", env)


def test_world_size_abc_is_one_line(run, workdir, capsys, monkeypatch):
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "abc")
    assert "WORLD_SIZE='abc'" in one_error(capsys, ["certify", "--ckpt", str(run), "--out", "c"])


# ---------------------------------------------------------------- damaged files: recovered or one line
def test_damaged_shards_and_settings_are_recomputed_with_a_notice(run, workdir, capsys):
    common = ["certify", "--ckpt", str(run), "--stages", "[ibp,crown]", "--progress", "false", "--limit", "24",
              "--shard_size", "8", "--out", "c"]
    first = main(common)
    shards = sorted((workdir / "c" / "shards").glob("shard_*.json"))
    shards[0].write_bytes(shards[0].read_bytes()[:40])  # truncated
    shards[1].write_bytes(os.urandom(300))  # garbage
    shards[2].write_text(json.dumps({"unrelated": True}))  # foreign, valid JSON
    (workdir / "c" / "settings.json").write_text("{ not json")
    capsys.readouterr()
    again = main(common)
    err = capsys.readouterr().err
    assert err.count("notice:") == 4 and "Traceback" not in err and "settings.json was damaged" in err
    drop = lambda s: {k: v for k, v in s.items() if "second" not in k}  # noqa: E731
    assert drop(again) == drop(first)


@pytest.mark.parametrize("text,message", [
    ("bab: 5\n", "--bab: a section of settings"), ("milp: [1, 2]\n", "--milp: a section of settings"),
    ("bab: {timeot: 1}\n", "--bab.timeot: unknown setting (did you mean --bab.timeout?)"),
    ("- a\n- b\n", "is not a mapping"),
])
def test_certify_settings_files_of_the_wrong_shape(run, workdir, capsys, text, message):
    (workdir / "settings.yaml").write_text(text)
    assert message in one_error(capsys, ["certify", "--ckpt", str(run), "--config", "settings.yaml"])


def test_a_run_config_that_is_a_list_is_one_line(run, workdir, capsys):
    (workdir / "list.yaml").write_text("- model\n- data\n")
    line = one_error(capsys, ["certify", "--ckpt", str(run), "--run_config", "list.yaml"])
    assert "list.yaml is not a valid run-config file" in line


def test_tiny_limit_train_batches_is_one_line(workdir, capsys):
    line = one_error(capsys, ["fit", "--config", write_config(workdir), "--trainer.limit_train_batches=0.00001"])
    assert "trainer.limit_train_batches=1e-05" in line and "no batch at all" in line
    assert run_dirs(workdir) == []


def test_analysis_arguments_that_used_to_raise(run, workdir, capsys):
    assert "--eps: must not be empty" in one_error(capsys, ["analyze", "pgd-robustness", "--ckpt", f"[{run}]", "--eps", "[]"])
    assert "--output: the network has" in one_error(capsys, ["analyze", "landscape", "--output", "99", "--out", "l"])
    assert "--points: must be an integer >= 3" in one_error(capsys, ["analyze", "sgd-dynamics", "--points", "1"])


def test_predict_gives_logits_and_verdicts(run, workdir, capsys):
    rows = main(["predict", "--ckpt", str(run), "--out", "p.csv", "--limit", "10", "--certifier", "crown"])
    assert len(rows) == 10 and {"label", "pred", "certified", "min_margin_lower_bound", "logit_0"} <= set(rows[0])
    for r in rows:  # a certified prediction has a positive margin bound, and it is the argmax
        assert r["certified"] == (r["min_margin_lower_bound"] > 0)
        logits = [r[f"logit_{k}"] for k in range(4)]
        assert r["pred"] == logits.index(max(logits))
    assert "certified predictions" in capsys.readouterr().out and (workdir / "p.csv").is_file()


def test_bayes_sweeps_are_not_shadowed_by_a_sweeps_folder(workdir):
    from lit_cert.commands.sweep import import_sweeps_engine
    from lit_cert.errors import ConfigError

    (workdir / "sweeps").mkdir()
    (workdir / "sweeps" / "a.yaml").write_text("method: grid\n")
    __import__("importlib").invalidate_caches()
    try:
        engine = import_sweeps_engine()
    except ConfigError as err:
        assert "pip install sweeps" in str(err)
    else:
        assert hasattr(engine, "next_run") and getattr(engine, "__file__", None)


def test_two_sweep_files_do_not_share_an_output_folder(workdir, capsys):
    import sys

    prog = workdir / "prog.py"
    prog.write_text("import json, os, sys\njson.dump({'m': 1.0}, open(os.environ['LIT_CERT_RESULT_FILE'], 'w'))\n")
    for name, values in (("a.yaml", "[1, 2]"), ("b.yaml", "[3]")):
        (workdir / name).write_text(f"program: {prog}\nmethod: grid\nmetric: {{name: m}}\nparameters: {{x: {{values: {values}}}}}\n"
                                    f"command: [{sys.executable}, '${{program}}', '${{args}}']\n")
    main(["sweep", "a.yaml", "--out", "out"])
    line = one_error(capsys, ["sweep", "b.yaml", "--out", "out"])
    assert "holds the runs of another sweep" in line and "parameters.x.values" in line


# ---------------------------------------------------------------- unclear messages
def test_a_misspelt_class_suggests_the_same_name_in_other_case(workdir, capsys):
    line = one_error(capsys, ["fit", "--config", write_config(workdir), "--model=lit_cert.methods.Sabr"])
    assert "did you mean lit_cert.methods.SABR?" in line


def test_top_level_help_lists_every_command(capsys):
    main(["--help"])
    out = capsys.readouterr().out
    for command in ("fit", "test", "certify", "export", "predict", "analyze", "sweep", "reproduce"):
        assert f"\n  {command} " in out


def test_ctrl_c_in_an_analysis_is_one_line_and_keeps_earlier_results(workdir, capsys, monkeypatch):
    main(["analyze", "dln-init", "--widths", "[4]", "--depths", "[2]", "--samples", "2", "--out", "an"])
    good = (workdir / "an" / "dln-init.csv").read_text()
    import lit_cert.commands.analyses.dln_init as module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(module, "save_plot", interrupted)
    capsys.readouterr()
    with pytest.raises(SystemExit) as stop:
        main(["analyze", "dln-init", "--widths", "[8]", "--depths", "[2]", "--samples", "2", "--out", "an"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert stop.value.code == 130 and len(lines) == 1 and "interrupted (Ctrl-C)" in lines[0] and "Traceback" not in err
    assert (workdir / "an" / "dln-init.csv").read_text() == good
