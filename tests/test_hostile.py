"""The hostile harness: generated from the declarations, so it covers a new option, a new
command, a new analysis, a new persisted file kind or a new bound method without being edited.

* **Options.** Every option of every command's settings (:func:`lit_cert.options.declared_options`
  of the certify, export, predict and sweep dataclasses and of each analysis module) is given
  each value its declared constraints refuse (:meth:`Constraint.hostile`: NaN, inf, below or
  above a range, an empty list, a missing file, an unwritable folder, an unknown name) and a
  value of the wrong kind. The command must exit with status 2 and exactly one
  ``lit_cert: error:`` line that names the option, print no traceback, and leave every file of
  its output folder as it was. ``fit``'s options -- every method, network, dataset and the
  schedule -- go through the same validation path on a parsed config, and a sample of them
  through the whole command line.
* **Declarations.** Every numeric, list or path option declares a constraint (or ``Free``);
  every option the parsers accept is a declared one.
* **Files.** An example of every registered file kind (:data:`lit_cert.persist.FILE_TYPES`) is
  written, read back equal, then truncated, filled with garbage, replaced by another kind's
  file and by unrelated valid JSON/YAML: every read answers with one
  :class:`~lit_cert.persist.DamagedFile` naming the file, never a traceback or a silent value.
* **Bound entry points.** Every registered bound method is called with a swapped box, NaN,
  wrong shapes, dtypes and devices, a wrong specification and a layer without a rule: each is
  a :class:`~lit_cert.bounds.inputs.BoundInputError`, never a number.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import lit_cert.files  # noqa: F401 - registers the file kinds
from lit_cert.commands import main
from lit_cert.commands.analyses import registry as analysis_registry
from lit_cert.commands.analyses.common import Checkpoints
from lit_cert.commands.certify import CertifyCommand
from lit_cert.commands.export import ExportCommand
from lit_cert.commands.predict import PredictCommand
from lit_cert.commands.reproduce import ReproduceCommand
from lit_cert.commands.sweep import SweepCommand
from lit_cert.errors import ConfigError, UserError
from lit_cert.options import Free, declared_options, unconstrained
from lit_cert.persist import FILE_TYPES, DamagedFile, parse_record, stamp

from .helpers import write_config


# --------------------------------------------------------------------------- the commands
def _commands() -> dict[str, tuple[list[str], type, dict]]:
    """command name -> (argv prefix, settings class, base options: name -> kind of placeholder)."""
    out = {
        "certify": (["certify"], CertifyCommand, {"ckpt": "file", "out": "dir"}),
        "export": (["export"], ExportCommand, {"ckpt": "file", "out": "dir"}),
        "predict": (["predict"], PredictCommand, {"ckpt": "file", "out": "csv"}),
        "sweep": (["sweep"], SweepCommand, {"sweep": "positional", "out": "dir"}),
        "reproduce": (["reproduce"], ReproduceCommand, {"experiment": "positional-id", "out": "dir", "work": "dir"}),
    }
    for name, module in analysis_registry().items():
        base = {"out": "dir"}
        if issubclass(module.Settings, Checkpoints):
            base["ckpt"] = "files"
        out[f"analyze {name}"] = (["analyze", name], module.Settings, base)
    return out


COMMANDS = _commands()


def _text(value) -> str:
    """A value as the command line gives it."""
    if isinstance(value, list):
        return "[" + ",".join(_text(v) for v in value) + "]"
    if isinstance(value, float) and not math.isfinite(value):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    return str(value)


def _cases():
    for command, (_, cls, _) in COMMANDS.items():
        for option in declared_options(cls):
            for i, value in enumerate(option.hostile_values()):
                yield pytest.param(command, option.name, value, id=f"{command}--{option.name}-{i}")


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.stat().st_mtime_ns, hashlib.sha256(p.read_bytes()).hexdigest())
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def placeholders(tmp_path_factory):
    """Existing files where a path is only checked to exist, and an output folder that already
    holds a result (which no refused command may touch)."""
    root = tmp_path_factory.mktemp("hostile")
    (root / "a.ckpt").write_bytes(b"placeholder: never read, the options are refused first")
    (root / "s.yaml").write_text("method: grid\nparameters: {a: {values: [1]}}\n")
    out = root / "out"
    out.mkdir()
    (out / "result.csv").write_text("a,b\n1,2\n")
    return root


def _argv(command: str, option: str, value, root: Path) -> list[str]:
    prefix, _, base = COMMANDS[command]
    argv = list(prefix)
    values = {"file": str(root / "a.ckpt"), "files": f"[{root / 'a.ckpt'}]", "dir": str(root / "out"),
              "csv": str(root / "out" / "p.csv"), "positional": str(root / "s.yaml"), "positional-id": "seed002-continuity"}
    for name, kind in base.items():
        if name == option:
            continue
        if kind.startswith("positional"):
            argv.append(values[kind])
        else:
            argv += [f"--{name}", values[kind]]
    if str(base.get(option)).startswith("positional"):
        argv.insert(len(prefix), _text(value))
    else:
        argv.append(f"--{option}={_text(value)}")
    return argv


@pytest.mark.parametrize("command,option,value", list(_cases()))
def test_every_option_refuses_what_its_declaration_refuses(command, option, value, placeholders, capsys, monkeypatch):
    monkeypatch.chdir(placeholders)
    before = _snapshot(placeholders / "out")
    with pytest.raises(SystemExit) as stop:
        main(_argv(command, option, value, placeholders))
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert stop.value.code == 2, err
    assert "Traceback" not in err and len(lines) == 1 and lines[0].startswith("lit_cert: error:"), err
    assert option in lines[0], f"the message does not name {option}: {lines[0]}"
    assert _snapshot(placeholders / "out") == before


def test_the_harness_covers_every_command_and_many_cases():
    """Not an empty parametrisation: every command contributes cases (a command whose options
    declare nothing would be caught by the declaration test below)."""
    cases = list(_cases())
    per_command = {c: sum(1 for p in cases if p.values[0] == c) for c in COMMANDS}
    assert all(n >= 3 for n in per_command.values()), per_command
    assert len(cases) > 300


# --------------------------------------------------------------------------- declarations
def _fit_classes() -> dict[str, type]:
    import inspect

    import lit_cert.data.modules as data
    import lit_cert.methods as methods
    import lit_cert.models as models
    from lit_cert.callbacks import CertifiedSchedule
    from lit_cert.data import ImageData
    from lit_cert.methods import CertifiedMethod
    from lit_cert.models.architectures import Architecture

    found = {"schedule": CertifiedSchedule}
    for module, base in ((methods, CertifiedMethod), (models, Architecture), (data, ImageData)):
        for name in dir(module):
            obj = getattr(module, name)
            if inspect.isclass(obj) and issubclass(obj, base) and obj.__module__.startswith("lit_cert"):
                found[f"{obj.__module__}.{obj.__qualname__}"] = obj
    return found


FIT_CLASSES = _fit_classes()


@pytest.mark.parametrize("name", sorted([*COMMANDS, *FIT_CLASSES]))
def test_every_numeric_list_or_path_option_declares_its_constraint(name):
    cls = COMMANDS[name][1] if name in COMMANDS else FIT_CLASSES[name]
    skip = {"network", "data_info", "certifier_options"}  # a class of its own / linked / checked by the registry
    missing = [o for o in unconstrained(declared_options(cls)) if o not in skip]
    assert not missing, f"{name}: options without a declared constraint (or Free): {missing}"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_parser_accepts_only_declared_options(command):
    """Every option the command line accepts is one of the settings' declared fields (nothing
    bypasses the schema), and every declared field is accepted."""
    prefix, cls, _ = COMMANDS[command]
    from lit_cert.commands import analyze, certify, export, predict, reproduce, sweep

    if prefix[0] == "analyze":
        parser = [a for a in analyze.build_parser()._actions if getattr(a, "choices", None)][0].choices[prefix[1]]
    else:
        parser = {"certify": certify, "export": export, "predict": predict, "sweep": sweep,
                  "reproduce": reproduce}[prefix[0]].build_parser()
    accepted = {o[2:] for a in parser._actions for o in a.option_strings if o.startswith("--")}
    accepted |= {a.dest for a in parser._actions if not a.option_strings and a.dest not in ("help",)}  # positionals
    accepted = {a for a in accepted if not a.endswith("+")}  # jsonargparse's append form of a list option
    accepted -= {"help", "config", "print_config"}
    accepted = {a for a in accepted if not any(a == s or a.startswith(s + ".") for s in ("pgd", "alpha", "bab", "milp"))
                or "." in a}
    declared = {o.name for o in declared_options(cls)}
    assert accepted == declared, (accepted ^ declared)


# --------------------------------------------------------------------------- fit
def _fit_cases():
    from lit_cert.options import declared_options as opts

    for key, cls in sorted(FIT_CLASSES.items()):
        for option in opts(cls):
            for i, value in enumerate(option.hostile_values()):
                if isinstance(value, str):  # wrong kinds are the parser's: see the command-line sample
                    continue
                yield pytest.param(key, option.name, value, id=f"{key.rpartition('.')[2]}.{option.name}-{i}")


def _config_with(key: str, option: str, value):
    from jsonargparse import Namespace

    model_args = {"network": {"class_path": "lit_cert.models.FC", "init_args": {"hidden": [8]}}, "eps_train": 0.1,
                  "eps_test": 0.1}
    cfg = {"model": {"class_path": "lit_cert.methods.IBP", "init_args": model_args},
           "data": {"class_path": "lit_cert.data.SyntheticImages", "init_args": {}}, "schedule": {}}
    cls = FIT_CLASSES[key]
    from lit_cert.data import ImageData
    from lit_cert.methods import CertifiedMethod
    from lit_cert.models.architectures import Architecture

    if key == "schedule":
        cfg["schedule"][option] = value
        return Namespace(cfg), f"schedule.{option}"
    path = f"{cls.__module__}.{cls.__qualname__}"
    if issubclass(cls, CertifiedMethod):
        cfg["model"] = {"class_path": path, "init_args": {**model_args, option: value}}
        return Namespace(cfg), f"model.init_args.{option}"
    if issubclass(cls, Architecture):
        model_args["network"] = {"class_path": path, "init_args": {option: value}}
        return Namespace(cfg), f"model.init_args.network.init_args.{option}"
    assert issubclass(cls, ImageData)
    cfg["data"] = {"class_path": path, "init_args": {option: value}}
    return Namespace(cfg), f"data.init_args.{option}"


@pytest.mark.parametrize("key,option,value", list(_fit_cases()))
def test_fit_validation_refuses_what_each_declaration_refuses(key, option, value):
    from lit_cert.commands.fit import validate_run_config

    cfg, dotted = _config_with(key, option, value)
    with pytest.raises(ConfigError) as err:
        validate_run_config(cfg)
    assert str(err.value).startswith(dotted + ":"), str(err.value)


FIT_CLI_SAMPLE = [
    "--model.init_args.eps_train=nan", "--model.init_args.lr=0", "--model.init_args.milestones=[-1]",
    "--model.init_args.certifier=Crown", "--model.init_args.tightness_samples=0",
    "--model.init_args.network.init_args.width=-2", "--data.init_args.batch_size=0", "--data.init_args.val_size=1.5",
    "--data.init_args.noise=-1", "--schedule.kappa_start=2", "--schedule.smooth_mid=1", "--schedule.ramp_epochs=inf",
    "--model=lit_cert.methods.Sabr", "--model.init_args.relu_shrinkage=1.5",
]


@pytest.mark.parametrize("arg", FIT_CLI_SAMPLE)
def test_fit_command_line_sample(arg, workdir, capsys):
    """The whole fit command on a sample of the declared options: one line naming the option,
    nothing printed before it (no Lightning banner, no seed line), no run directory."""
    with pytest.raises(SystemExit) as stop:
        main(["fit", "--config", write_config(workdir), arg])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("lit_cert: error:"), err
    key = arg[2:].split("=")[0].replace("init_args.", "")
    assert key.split(".")[-1] in lines[0] or "SABR" in lines[0], lines[0]
    assert not (workdir / "runs").exists()


# --------------------------------------------------------------------------- files
def _foreign(kind: str) -> list[str]:
    others = [k for k in FILE_TYPES if k != kind and FILE_TYPES[k].fmt == "json"]
    out = [json.dumps(stamp(others[0], FILE_TYPES[others[0]].example()))] if others else []
    out.append(json.dumps({"unrelated": [1, 2, {"x": None}]}))
    out.append(json.dumps([1, 2, 3]))
    return out


def _valid_text(kind: str) -> str:
    import yaml

    ft = FILE_TYPES[kind]
    return yaml.safe_dump(ft.example()) if ft.fmt == "yaml" else json.dumps(stamp(kind, ft.example()))


def _damaged(kind: str) -> list[tuple[str, bytes]]:
    text = _valid_text(kind).encode()
    cases = [("truncated", text[: len(text) // 2]), ("empty", b""), ("garbage", bytes(range(256)) * 3)]
    if FILE_TYPES[kind].fmt == "json":
        cases += [(f"foreign-{i}", t.encode()) for i, t in enumerate(_foreign(kind))]
        cases.append(("newer", json.dumps({**json.loads(text), "lit_cert_file": {"kind": kind, "version": 99}}).encode()))
    else:
        cases += [("a-list", b"- a\n- b\n"), ("wrong-sections", b"model: 3\ndata: {class_path: x}\n")]
    return cases


def test_every_file_kind_reads_its_example_back():
    assert len(FILE_TYPES) >= 8
    for kind, ft in FILE_TYPES.items():
        assert parse_record(_valid_text(kind), kind, f"example.{ft.fmt}") == ft.example(), kind


@pytest.mark.parametrize("kind,how,data", [pytest.param(k, h, d, id=f"{k}-{h}") for k in FILE_TYPES for h, d in _damaged(k)])
def test_every_file_kind_refuses_damage_with_one_named_error(kind, how, data, tmp_path):
    from lit_cert.persist import read_record

    path = tmp_path / f"file.{FILE_TYPES[kind].fmt}"
    path.write_bytes(data)
    with pytest.raises(DamagedFile) as err:
        read_record(path, kind)
    assert isinstance(err.value, UserError) and str(path) in str(err.value) and "\n" not in str(err.value)


def test_line_logs_skip_damaged_lines_and_keep_the_rest(tmp_path):
    from lit_cert.persist import append_line, read_lines

    for kind, ft in FILE_TYPES.items():
        if not ft.lines:
            continue
        path = tmp_path / f"{kind}.jsonl"
        append_line(path, kind, ft.example())
        with open(path, "ab") as f:
            f.write(b'{"torn": ')  # an interrupted append
        append_line(path, kind, ft.example())  # closes the torn line off first
        with open(path, "ab") as f:
            f.write(bytes(b for b in range(1, 200) if b not in b"\r\n") + b"\n")  # garbage, one line
        skipped = []
        records = read_lines(path, kind, lambda n, e: skipped.append(n))
        assert records == [ft.example(), ft.example()] and skipped == [2, 4], (kind, skipped)


# --------------------------------------------------------------------------- bound entry points
def _net(extra=None):
    torch.manual_seed(0)
    layers = [nn.Flatten(), nn.Linear(4, 6), nn.ReLU()] + ([extra] if extra is not None else []) + [nn.Linear(6, 3)]
    return nn.Sequential(*layers).eval()


def _bad_calls():
    from lit_cert.bounds import margin_spec

    x = torch.rand(2, 1, 2, 2)
    spec = margin_spec(torch.tensor([0, 1]), 3)
    lb, ub = x - 0.05, x + 0.05
    return {
        "swapped": (_net(), ub, lb, spec),
        "nan": (_net(), lb.masked_fill(lb > 0.5, float("nan")), ub, spec),
        "inf": (_net(), lb - float("inf"), ub, spec),
        "shapes-differ": (_net(), lb, ub[:, :, :1], spec),
        "no-batch": (_net(), lb[0, 0, 0], ub[0, 0, 0], spec),
        "wrong-input-shape": (_net(), torch.zeros(2, 1, 3, 3), torch.ones(2, 1, 3, 3), spec),
        "dtype-box-vs-net": (_net(), lb.double(), ub.double(), spec.double()),
        "dtypes-differ": (_net(), lb, ub.double(), spec),
        "integer-box": (_net(), lb.long(), ub.long(), spec),
        "device": (_net(), lb.to("meta"), ub.to("meta"), spec.to("meta")),
        "spec-rows-of-other-width": (_net(), lb, ub, spec[:, :, :2]),
        "spec-batch": (_net(), lb, ub, spec[:1]),
        "spec-2d": (_net(), lb, ub, spec[0]),
        "tanh": (_net(nn.Tanh()), lb, ub, spec),
        "not-tensors": (_net(), lb.tolist(), ub.tolist(), spec),
    }


@pytest.mark.parametrize("method", sorted(__import__("lit_cert.bounds", fromlist=["BOUND_METHODS"]).BOUND_METHODS))
@pytest.mark.parametrize("case", sorted(_bad_calls()))
def test_every_bound_method_refuses_bad_inputs_at_the_door(method, case):
    from lit_cert.bounds import compute_bounds
    from lit_cert.bounds.inputs import BoundInputError

    net, lb, ub, spec = _bad_calls()[case]
    with pytest.raises(BoundInputError):
        compute_bounds(net, lb, ub, spec, method)


@pytest.mark.parametrize("layer", [nn.MaxPool2d(1), nn.Tanh(), nn.Sigmoid(), nn.Dropout(0.0)])
def test_layers_without_a_rule_are_named(layer):
    """MaxPool has an interval rule but no back-substitution rule: CROWN names it, IBP bounds it."""
    from lit_cert.bounds import compute_bounds, margin_spec
    from lit_cert.bounds.inputs import UnsupportedLayer

    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), layer, nn.Flatten(), nn.Linear(8, 3)).eval()
    x = torch.rand(2, 1, 2, 2)
    spec = margin_spec(torch.tensor([0, 1]), 3)
    with pytest.raises(UnsupportedLayer, match=type(layer).__name__):
        compute_bounds(net, x - 0.1, x + 0.1, spec, "crown")
    if isinstance(layer, nn.MaxPool2d):
        compute_bounds(net, x - 0.1, x + 0.1, spec, "ibp")  # a rule exists: a bound, no error


def test_the_cascade_refuses_bad_samples():
    from lit_cert.bounds.inputs import BoundInputError
    from lit_cert.certify import Cascade, CascadeConfig

    cascade = Cascade(_net(), CascadeConfig(eps=0.05, stages=("ibp",)))
    x, y = torch.rand(2, 1, 2, 2), torch.tensor([0, 1])
    for bad in ((x * 3, y, [0, 1]), (x.masked_fill(x > 0.5, float("nan")), y, [0, 1]), (x, torch.tensor([0, 7]), [0, 1]),
                (x, y.float(), [0, 1]), (x, y, [0])):
        with pytest.raises(BoundInputError):
            cascade.run(*bad)
    assert [v.index for v in cascade.run(x, y, [4, 5])] == [4, 5]
    with pytest.raises(BoundInputError, match="Tanh"):
        Cascade(_net(nn.Tanh()), CascadeConfig(eps=0.05, stages=("crown",))).run(x, y, [0, 1])


def test_a_negative_radius_never_makes_a_box():
    from lit_cert.bounds import certified_box, linf_box
    from lit_cert.bounds.inputs import BoundInputError

    x = torch.rand(2, 3)
    for eps in (-0.1, float("nan"), float("inf")):
        for make in (linf_box, certified_box):
            with pytest.raises(BoundInputError):
                make(x, eps)


def test_free_options_are_rare():
    """``Free`` says "any value is meaningful": seeds and shifts, not a way around the harness."""
    free = [f"{name}.{o.name}" for name, (_, cls, _) in COMMANDS.items() for o in declared_options(cls)
            if any(isinstance(c, Free) for c in o.constraints)]
    assert len(free) <= 3, free


@pytest.mark.parametrize("name", sorted([*COMMANDS, *FIT_CLASSES]))
def test_every_option_has_a_help_description(name):
    """``--help`` describes every option, from the docstring where the option is declared."""
    import warnings

    from jsonargparse import ArgumentParser

    cls = COMMANDS[name][1] if name in COMMANDS else FIT_CLASSES[name]
    parser = ArgumentParser()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser.add_class_arguments(cls, "x", skip={"data_info"})
    bare = [a.dest[2:] for a in parser._actions
            if a.dest.startswith("x.") and not (a.help or "").strip() and a.dest[2:] not in ("network", "help")]
    assert not bare, f"{name}: options without a description in --help: {bare}"
