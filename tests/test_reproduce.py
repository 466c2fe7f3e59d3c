"""``lit_cert reproduce``: the specs are consistent and their paper numbers are the papers', the
verdict rule decides each case as documented, the runner resumes and refuses stale records, and
the report is computed from the records."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import pytest

from lit_cert.commands import main
from lit_cert.reproduce import claims as verdicts
from lit_cert.reproduce.catalog import EXPERIMENTS
from lit_cert.reproduce.claims import Summary, summarise, verdict
from lit_cert.reproduce.spec import Claim, Column, Experiment, Measure, Row, Scale, fingerprint

from .helpers import TRAINED_RUN


def seeds_folder() -> Path | None:
    """The papers' text (``shared/seeds``): $LIT_CERT_SEEDS, or a ``shared/seeds`` beside a folder
    above the checkout."""
    if os.environ.get("LIT_CERT_SEEDS"):
        return Path(os.environ["LIT_CERT_SEEDS"])
    for parent in Path(__file__).resolve().parents:
        if (parent / "shared" / "seeds").is_dir():
            return parent / "shared" / "seeds"
    return None


def normalised(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


# --------------------------------------------------------------------------- the catalog
def test_every_spec_is_consistent():
    assert len(EXPERIMENTS) >= 18
    problems = [p for e in EXPERIMENTS.values() for p in e.check()]
    assert not problems, problems


def test_the_issue_s_experiments_are_all_in_the_catalog():
    wanted = {"seed000-fig4", "seed000-fig5", "seed000-fig6", "seed000-fig9", "seed000-table2", "seed001-fig5",
              "seed001-table1", "seed001-coverage", "seed002-table2", "seed002-table14", "seed002-appI-box",
              "seed002-k4-train", "seed002-continuity", "seed002-sensitivity", "seed002-dynamics", "lit_cert-cnn7-certify",
              "seed001-fig3cd", "seed001-fig4", "seed002-table8"}
    assert wanted <= set(EXPERIMENTS)


@pytest.mark.parametrize("exp_id", sorted(i for i, e in EXPERIMENTS.items() if e.paper_numbers))
def test_paper_numbers_are_read_from_the_paper(exp_id):
    """Each number is in its source fragment, and the fragment is in the paper's text."""
    exp = EXPERIMENTS[exp_id]
    for p in exp.paper_numbers:
        assert any(math.isclose(float(t), p.value) for t in re.findall(r"\d+(?:\.\d+)?", p.source)), (p.value, p.source)
    folder = seeds_folder()
    if folder is None:
        pytest.skip("the papers' text (shared/seeds) is not on this machine; set LIT_CERT_SEEDS")
    text = normalised((folder / exp.seed_file).read_text())
    missing = [p.source for p in exp.paper_numbers if normalised(p.source) not in text]
    assert not missing, missing


def test_the_seed_files_named_exist():
    folder = seeds_folder()
    if folder is None:
        pytest.skip("the papers' text (shared/seeds) is not on this machine")
    for exp in EXPERIMENTS.values():
        if exp.seed_file:
            assert (folder / exp.seed_file).is_file(), exp.id


def test_fig5_pgd_and_fig4_follow_the_authors_scripts():
    """Seed 000's authors' train_cifar_eps.sh (PGD, Fig. 5) and train_cifar_arch.sh (Fig. 4),
    transcribed: CNN3 without BatchNorm, 20 steps, no ramp, 9 eps values; robust loss only, no L1."""
    import yaml

    from lit_cert.reproduce.spec import repo_root

    cfg = yaml.safe_load((repo_root() / "configs/cifar10/cnn3_pgd.yaml").read_text())
    args = cfg["model"]["init_args"]
    assert args["network"]["init_args"]["bn"] is False and args["pgd_steps"] == 20
    assert cfg["schedule"]["warmup_epochs"] == 0 and cfg["schedule"]["ramp_epochs"] == 0
    assert cfg["trainer"]["max_epochs"] == 160 and args["milestones"] == [120, 140] and args["lr"] == 5e-4
    paper = EXPERIMENTS["seed000-fig5"].scale("paper")
    assert sorted({r.values["eps"] for r in paper.rows}) == [1e-5, 5e-5, 1e-4, 5e-4, 1e-3, 5e-3, 1e-2, 5e-2, 1e-1]
    for row in EXPERIMENTS["seed000-fig4"].scale("paper").rows:
        assert {"--schedule.kappa_start=0.0", "--schedule.kappa_end=0.0", "--model.init_args.l1=0.0"} <= set(row.args)


def test_convmed_sabr_configs_state_their_pgd_steps():
    """The authors' SABR wrapper runs a 10-step PGD from one start: the CIFAR-10 configs follow it,
    the CPU one says where it differs."""
    import yaml

    from lit_cert.reproduce.spec import repo_root

    for name in ("configs/cifar10/convmed_sabr_2_255.yaml", "configs/cifar10/convmed_sabr_8_255.yaml"):
        args = yaml.safe_load((repo_root() / name).read_text())["model"]["init_args"]
        assert (args["pgd_steps"], args["pgd_restarts"]) == (10, 1), name
    text = (repo_root() / "configs/fashion_mnist/convmed_sabr.yaml").read_text()
    assert yaml.safe_load(text)["model"]["init_args"]["pgd_steps"] == 8 and "DIFFERS" in text and "10 steps" in text


# --------------------------------------------------------------------------- the verdict rule
def _claim(**kw):
    return Claim("c", "here", "m", **kw)


def _of(table: dict):
    return lambda row, metric: table.get((row, metric), summarise([]))


@pytest.mark.parametrize("a,b,expected", [
    ([0.1, 0.11, 0.12], [0.5, 0.52, 0.51], verdicts.REPRODUCED),
    ([0.1, 0.3, 0.2], [0.25, 0.35, 0.3], verdicts.SEEN),          # gap within the spread
    ([0.1, 0.11], [0.5, 0.52], verdicts.SEEN),                    # two seeds
    ([0.1], [0.5], verdicts.SEEN),                                # one seed
    ([0.5, 0.52, 0.51], [0.1, 0.11, 0.12], verdicts.NOT_SEEN),    # the other way
    ([0.3, 0.3, 0.3], [0.3, 0.3, 0.3], verdicts.NOT_SEEN),        # equal is not "less"
    ([0.1, 0.1, 0.1], [], verdicts.NOT_TESTED),
])
def test_order_verdicts(a, b, expected):
    table = {("A", "m"): summarise(a), ("B", "m"): summarise(b)}
    assert verdict(_claim(order=("A", "B")), _of(table))[0] == expected


def test_a_claim_over_two_metrics_of_one_row():
    table = {("A", "x"): summarise([0.1, 0.12, 0.11]), ("A", "y"): summarise([0.9, 0.91, 0.92])}
    assert verdict(_claim(order=(("A", "x"), ("A", "y"))), _of(table))[0] == verdicts.REPRODUCED
    assert verdict(_claim(order=(("A", "y"), ("A", "x"))), _of(table))[0] == verdicts.NOT_SEEN


def test_bound_verdicts():
    table = {("A", "m"): summarise([0.01, 0.02, 0.015])}
    assert verdict(_claim(at_most=("A", 0.05)), _of(table))[0] == verdicts.REPRODUCED
    assert verdict(_claim(at_most=("A", 0.016)), _of(table))[0] == verdicts.SEEN    # mean below, spread above
    assert verdict(_claim(at_most=("A", 0.001)), _of(table))[0] == verdicts.NOT_SEEN
    assert verdict(_claim(at_least=("A", 0.001)), _of(table))[0] == verdicts.REPRODUCED
    assert verdict(_claim(at_least=("A", 0.05)), _of(table))[0] == verdicts.NOT_SEEN


def test_an_exact_measurement_is_decided_by_one_run():
    table = {("A", "m"): summarise([0.1]), ("B", "m"): summarise([0.5])}
    assert verdict(_claim(order=("A", "B")), _of(table), exact=True)[0] == verdicts.REPRODUCED
    assert verdict(_claim(order=("B", "A")), _of(table), exact=True)[0] == verdicts.NOT_SEEN


def test_summary_text_and_nan():
    assert summarise([0.5, float("nan"), None]).n == 1
    assert Summary(3, 0.5, 0.01).text(100, 1) == "50.0 ± 1.0"
    assert summarise([]).text() == "-"


def test_a_claim_needs_exactly_one_form():
    with pytest.raises(ValueError):
        Claim("c", "w", "m")
    with pytest.raises(ValueError):
        Claim("c", "w", "m", order=("A", "B"), at_most=("A", 1.0))
    with pytest.raises(ValueError):
        Claim("c", "w", "m", order=("A",))


# --------------------------------------------------------------------------- the runner
def _tiny(config: str, unrun_row: bool = True) -> Experiment:
    measures = (Measure("certified", {"relaxations": ["ibp"], "limit": 48}),)
    return Experiment(
        id="test-tiny", paper="seed 002", seed_file="002_46c4a2b04d3c2ad8.txt", target="a test", title="tiny",
        columns=(Column("natural", "natural %", 100, 1), Column("certified_ibp", "IBP-certified %", 100, 1)),
        claims=(Claim("IBP certifies no more than the network classifies", "test", "certified_ibp",
                      order=(("IBP", "certified_ibp"), ("IBP", "natural"))),)
        + ((Claim("a row without runs", "test", "natural", order=("IBP", "never run")),) if unrun_row else ()),
        scales={"cpu": Scale("cpu", (Row("IBP", config),) + ((Row("never run", config, ("--trainer.max_epochs=1",)),)
                                                             if unrun_row else ()), measures,
                             seeds=2, minutes_per_run=0.2, hardware="test", cost_source="test")},
    )


def test_fingerprint_ignores_comments_but_not_settings(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(TRAINED_RUN)
    scale = _tiny(str(cfg)).scale("cpu")
    row = scale.rows[0]
    before = fingerprint(row, scale, 0)
    cfg.write_text("# a new comment\n" + TRAINED_RUN)
    assert fingerprint(row, scale, 0) == before
    assert fingerprint(row, scale, 1) != before
    cfg.write_text(TRAINED_RUN.replace("lr: 3.0e-3", "lr: 1.0e-3"))
    assert fingerprint(row, scale, 0) != before


def test_reproduce_trains_measures_records_and_resumes(tmp_path, monkeypatch, capsys):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TRAINED_RUN)
    monkeypatch.setitem(EXPERIMENTS, "test-tiny", _tiny(str(cfg)))
    monkeypatch.setenv("WANDB_MODE", "disabled")
    out, work = tmp_path / "out", tmp_path / "work"
    base = ["reproduce", "test-tiny", "--out", str(out), "--work", str(work)]
    # shard 1/2 of [IBP s0, IBP s1, never s0, never s1]: IBP seed 0 and never-run seed 0
    main(base + ["--seeds", "2", "--shard", "1/2", "--dry-run"])
    assert "2 runs planned, 0 recorded, 2 to run" in capsys.readouterr().out
    monkeypatch.setitem(EXPERIMENTS, "test-tiny", _tiny(str(cfg), unrun_row=False))  # train only the IBP row
    main(base + ["--seeds", "2"])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert [(r["row"], r["seed"], r["status"]) for r in records] == [("IBP", 0, "finished"), ("IBP", 1, "finished")]
    assert all(0 <= r["metrics"]["certified_ibp"] <= r["metrics"]["natural"] <= 1 for r in records)
    assert records[0]["command"].startswith("lit_cert fit --config") and "--seed_everything=0" in records[0]["command"]
    table = (out / "table.md").read_text()
    assert "| IBP | 2 |" in table and verdicts.NOT_TESTED not in table  # the unrun row was dropped above
    # a second run trains nothing
    capsys.readouterr()
    main(base + ["--seeds", "2", "--dry-run"])
    assert "2 recorded, 0 to run" in capsys.readouterr().out
    # a changed setting makes the records stale: seed 0 runs again; seed 1's old record is left out
    cfg.write_text(TRAINED_RUN.replace("max_epochs: 6", "max_epochs: 2"))
    main(base + ["--seeds", "1"])
    records = [json.loads(line) for line in (out / "records.jsonl").read_text().splitlines()]
    assert len(records) == 3 and records[2]["fingerprint"] != records[0]["fingerprint"]
    table = (out / "table.md").read_text()
    assert "1 stale record(s)" in table and "| IBP | 1 |" in table


def test_render_only_writes_the_report_from_records_alone(tmp_path, monkeypatch):
    """No training: the report of a spec whose rows have no runs says so per claim."""
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TRAINED_RUN)
    exp = _tiny(str(cfg))
    monkeypatch.setitem(EXPERIMENTS, exp.id, exp)
    main(["reproduce", exp.id, "--out", str(tmp_path / "o"), "--render_only"])
    table = (tmp_path / "o" / "table.md").read_text()
    assert table.count(verdicts.NOT_TESTED) == 2 and not (tmp_path / "o" / "records.jsonl").exists()


def test_list_names_every_experiment_and_its_cost(capsys):
    main(["reproduce", "--list"])
    text = capsys.readouterr().out
    for exp_id, exp in EXPERIMENTS.items():
        assert exp_id in text
        for scale in exp.scales:
            assert re.search(rf"{scale}\s*: \d+ rows x \d+ seeds = \d+ runs, ~[\d.]+ h", text)


@pytest.mark.parametrize("argv,message", [
    (["reproduce"], "needs an experiment id"),
    (["reproduce", "seed002-tabel14"], "must be one of"),
    (["reproduce", "seed000-fig4", "--scale", "cpu"], "has no 'cpu' scale"),
    (["reproduce", "seed002-table14", "--seeds", "0"], "--seeds"),
    (["reproduce", "seed002-table14", "--shard", "3/2"], "--shard"),
    (["reproduce", "seed002-table14", "--dry-run", "--render_only"], "choose one"),
])
def test_bad_input_gets_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert stop.value.code == 2 and err.startswith("lit_cert: error:") and message in err and "\n" not in err
    assert not (tmp_path / "reproduce").exists()


def test_committed_tables_are_the_command_s_output():
    """Each committed results/<id>/table.md is what --render_only writes from its records today
    (ignoring the command line it names)."""
    import tempfile

    from lit_cert.reproduce.render import markdown
    from lit_cert.reproduce.runner import read_records
    from lit_cert.reproduce.spec import repo_root

    results = repo_root() / "results"
    checked = 0
    for exp_id, exp in EXPERIMENTS.items():
        folder = results / exp_id
        if not (folder / "table.md").is_file():
            continue
        committed = (folder / "table.md").read_text()
        scale = "paper" if "Scale **paper**" in committed else "cpu"
        command = re.search(r"Written by `([^`]*)`", committed).group(1)
        assert markdown(exp, exp.scale(scale), read_records(folder), command) == committed, exp_id
        checked += 1
    assert checked >= 12


def test_the_docs_verdict_table_matches_the_committed_tables():
    """docs/reproducing.md's verdict counts are the ones the records give today."""
    from lit_cert.reproduce.render import verdict_counts
    from lit_cert.reproduce.runner import read_records
    from lit_cert.reproduce.spec import repo_root

    text = (repo_root() / "docs" / "reproducing.md").read_text()
    rows = re.findall(r"^\| `([\w.-]+)` \| [^|]+ \| ([^|]+) \|$", text, flags=re.M)
    assert len(rows) >= 12
    for exp_id, counts in rows:
        exp = EXPERIMENTS[exp_id]
        records = read_records(repo_root() / "results" / exp_id)
        assert counts.strip() == verdict_counts(exp, exp.scale("cpu"), records), exp_id
