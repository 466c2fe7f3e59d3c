"""The files lit_cert keeps and reads back, each declared once (:mod:`lit_cert.persist`).

=====================  ==========================================  ==============================
kind                   where                                       when damaged
=====================  ==========================================  ==============================
``certify-settings``   ``OUT/settings.json`` of ``certify``         rewritten from this run; every
                                                                    shard is then checked by its own
                                                                    settings fingerprint
``certify-shard``      ``OUT/shards/shard_NNNNN.json``             recomputed, with a notice
``certify-summary``    ``OUT/summary.json``                        rewritten by every run
``sweep-record``       ``OUT/results.jsonl`` of ``sweep``          the line is skipped, that run
                                                                    runs again
``sweep-identity``     ``OUT/sweep.json`` of ``sweep``             rewritten from this sweep file
``run-result``         ``$LIT_CERT_RESULT_FILE`` (one sweep run)   the run counts as failed
``data-identity``      inside every checkpoint (``lit_cert_data``) one line; pass
                                                                    ``--allow_other_data``
``run-config``         a run's ``config.yaml``                     one line naming it
``reproduce-run``      ``OUT/records.jsonl`` of ``reproduce``       the line is skipped, that run
                                                                    runs again
=====================  ==========================================  ==============================
"""

from __future__ import annotations

from lit_cert.persist import AnyOf, FileType, Opt, register

VERDICT = {
    "index": int, "label": int, "pred": int, "status": Opt(str), "stage": Opt(str), "margin": Opt(float),
    "reason": Opt(str), "seconds": dict, "details": dict, "counterexample": Opt([float]),
}


def _legacy_shard(value):
    if not isinstance(value, list):
        raise ValueError("an earlier shard is a list of verdicts")
    return {"settings_sha256": None, "verdicts": value}


def _legacy_dict(*keys: str):
    def upgrade(value):
        if not isinstance(value, dict) or any(k not in value for k in keys):
            raise ValueError(f"an earlier file holds {', '.join(keys)}")
        return value

    return upgrade


CERTIFY_SETTINGS = register(FileType(
    "certify-settings", 1,
    {"ckpt_sha256": str, "split": str, "samples": int, "shard_size": int, "cascade": dict, "data": Opt(dict)},
    "rewritten from this run's settings; each shard is checked by its own settings fingerprint",
    lambda: {"ckpt_sha256": "0" * 64, "split": "test", "samples": 4, "shard_size": 2, "cascade": {"eps": 0.1},
             "data": {"dataset": "lit_cert.data.SyntheticImages", "split": "test", "size": 4, "fingerprint": "0" * 64}},
    legacy=_legacy_dict("ckpt_sha256", "split", "samples", "shard_size", "cascade"),
))

CERTIFY_SHARD = register(FileType(
    "certify-shard", 1, {"settings_sha256": Opt(str), "verdicts": [VERDICT]},
    "recomputed, with a notice",
    lambda: {"settings_sha256": "0" * 64,
             "verdicts": [{"index": 0, "label": 1, "pred": 1, "status": "certified", "stage": "ibp", "margin": 0.5,
                           "reason": None, "seconds": {"ibp": 0.01}, "details": {}, "counterexample": None}]},
    legacy=_legacy_shard,
))

CERTIFY_SUMMARY = register(FileType(
    "certify-summary", 1,
    {"samples": int, "natural_accuracy": float, "certified_accuracy": float, "pgd_accuracy": Opt(float),
     "complete": bool, "eps": float, "split": str},
    "rewritten by the next certify run of the folder",
    lambda: {"samples": 4, "natural_accuracy": 0.75, "certified_accuracy": 0.5, "pgd_accuracy": None, "complete": True,
             "eps": 0.1, "split": "test"},
))

SWEEP_RECORD = register(FileType(
    "sweep-record", 1,
    {"run_id": str, "params": dict, "status": str, "returncode": AnyOf(int, str, None), "seconds": float,
     "metrics": dict},
    "the line is skipped with a warning; that run runs again",
    lambda: {"run_id": "0123456789", "params": {"model.init_args.lr": 0.001}, "status": "finished", "returncode": 0,
             "seconds": 1.5, "metric": 0.5, "metrics": {"val/cert_acc": 0.5}},
    legacy=_legacy_dict("run_id", "params", "status"),
    lines=True,
))

SWEEP_IDENTITY = register(FileType(
    "sweep-identity", 1, {"sweep": str, "sha256": str, "definition": dict},
    "rewritten from this sweep file",
    lambda: {"sweep": "sweeps/example.yaml", "sha256": "0" * 64, "definition": {"method": "grid", "parameters": {}}},
))

def _flat_metrics(value) -> str | None:
    bad = [k for k, v in value.items() if not (v is None or isinstance(v, (int, float, str)))]
    return f"metric {bad[0]!r} is not a number or text" if bad else None


def _plain_metrics(value):
    """Any program a sweep runs may write its metrics as a plain JSON object (the documented
    ``$LIT_CERT_RESULT_FILE`` protocol); lit_cert's own runs stamp theirs."""
    if not isinstance(value, dict):
        raise ValueError("a result file is a JSON object of metrics")
    return value


RUN_RESULT = register(FileType(
    "run-result", 1, _flat_metrics,
    "the run is recorded as failed and runs again",
    lambda: {"run_dir": "runs/lit_cert/x", "val/cert_acc": 0.5},
    legacy=_plain_metrics,
))

DATA_IDENTITY = register(FileType(
    "data-identity", 1,
    {"dataset": str, "name": str, "in_shape": [int], "num_classes": int,
     "transforms": dict, "splits": {"train": Opt(dict), "val": Opt(dict), "test": Opt(dict)}},
    "refused with one line; --allow_other_data evaluates anyway",
    lambda: {"dataset": "lit_cert.data.SyntheticImages", "name": "synthetic", "in_shape": [1, 6, 6], "num_classes": 10,
             "transforms": {"downsample": None, "mean": [0.5], "std": [0.25]},
             "splits": {"train": {"size": 8, "fingerprint": "0" * 64}, "val": {"size": 2, "fingerprint": "1" * 64},
                        "test": {"size": 4, "fingerprint": "2" * 64}}},
))

RUN_CONFIG = register(FileType(
    "run-config", 1,
    {"model": {"class_path": str, "init_args": Opt(dict)}, "data": {"class_path": str, "init_args": Opt(dict)}},
    "one line naming it (pass --run_config with the run's config.yaml)",
    lambda: {"model": {"class_path": "lit_cert.methods.IBP", "init_args": {"eps_train": 0.1, "eps_test": 0.1}},
             "data": {"class_path": "lit_cert.data.SyntheticImages", "init_args": {"train_size": 8}}},
    fmt="yaml",
))


REPRODUCE_RUN = register(FileType(
    "reproduce-run", 1,
    {"experiment": str, "scale": str, "row": str, "seed": int, "fingerprint": str, "status": str, "metrics": dict,
     "seconds": dict, "command": str, "commit": Opt(str), "run_dir": Opt(str), "source": Opt(str)},
    "the line is skipped with a warning; that run runs again",
    lambda: {"experiment": "seed002-table14", "scale": "cpu", "row": "Box", "seed": 0, "fingerprint": "0" * 16,
             "status": "finished", "metrics": {"natural": 0.39}, "seconds": {"train": 20.0, "measure": 5.0},
             "command": "lit_cert fit --config configs/fashion_mnist/small_box.yaml --seed_everything=0",
             "commit": "5bbdf73", "run_dir": None, "source": None},
    lines=True,
))
