"""``python -m lit_cert fit|validate|test --config FILE`` -- LightningCLI with our conventions.

(The other commands, and the one place that prints user errors, are :mod:`lit_cert.commands`.)

* ``model`` is any :class:`~lit_cert.methods.CertifiedMethod` subclass, ``data`` any
  :class:`~lit_cert.data.ImageDataModule` subclass (``class_path``/``init_args`` in YAML).
* The dataset's :class:`~lit_cert.data.DataInfo` is linked into the method (a derived value).
* ``schedule`` (eps/kappa/beta), ``checkpoint`` (best by ``val/cert_acc``) and
  ``last_checkpoint`` (``last.ckpt`` after every epoch and on interruption) are always-present
  callbacks with their own config sections.
* YAML may use omegaconf interpolation (``${model.init_args.eps_train}``); it is resolved
  *after* command-line overrides, so sweep overrides propagate into interpolated values.
* Each run writes its full config (including the seed) into its own run directory
  ``<save_dir>/<project>/<run id>/config.yaml`` next to its ``checkpoints/``; without a logger
  the run directory is ``<default_root_dir>/runs/lit_cert/<run id>/``.
* ``fit --test_after_fit true`` evaluates the best checkpoint on the test split at the end.
* Bad input -- a config value, a checkpoint that is missing, corrupt or does not fit, data that
  is missing or corrupt, an unwritable output directory -- raises a
  :class:`~lit_cert.errors.UserError` where it is read; :func:`lit_cert.commands.main` prints it as one line
  ``lit_cert: error: ...`` and exits with status 2, before any run directory is made.
* SIGTERM (a cluster scheduler's stop): ``last.ckpt`` is saved, then the process exits with
  status 143, never 0.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Optional

import yaml
from jsonargparse import set_parsing_settings
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.callbacks import ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI, SaveConfigCallback
from lightning.pytorch.loggers import WandbLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from lit_cert.callbacks import CertifiedSchedule
from lit_cert.checkpoints import check_state_fits, read_checkpoint
from lit_cert.data import ImageDataModule
from lit_cert.errors import ConfigError
from lit_cert.methods import CertifiedMethod
from lit_cert.commands.parse_errors import one_line_errors
from lit_cert.commands.registry import COMMANDS
from lit_cert.persist import flatten
from lit_cert.rundir import ensure_writable_dir, new_run_id


def run_directory(trainer: Trainer) -> str:
    """The directory of this run: where Lightning's ModelCheckpoint puts ``checkpoints/``."""
    explicit = getattr(trainer, "lit_cert_run_dir", None)
    if explicit:
        return explicit
    if trainer.loggers:
        logger = trainer.loggers[0]
        save_dir = logger.save_dir or trainer.default_root_dir
        version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
        return os.path.join(save_dir, str(logger.name), version)
    return trainer.default_root_dir


class RunConfigSaver(SaveConfigCallback):
    """Saves each run's config into its own run directory and logs it to W&B.

    Lightning's default writes to ``trainer.log_dir``, which WandbLogger shares between runs."""

    def save_config(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        run_dir = str(ensure_writable_dir(run_directory(trainer), "run directory"))
        path = os.path.join(run_dir, self.config_filename)
        self.parser.save(self.config, path, skip_none=False, overwrite=True, multifile=False)
        for logger in trainer.loggers:
            if isinstance(logger, WandbLogger):
                flat = flatten(self.config.clone().as_dict())
                logger.experiment.config.update({k: v for k, v in flat.items() if v is not None}, allow_val_change=True)
        print(f"lit_cert: run directory {run_dir}", file=sys.stderr)


DEFAULT_MONITOR = "val/cert_acc"


class RunCheckpoint(ModelCheckpoint):
    """Lightning's ModelCheckpoint, whose best/top-k state a resumed run gets back when its folder
    is the same folder however it is spelt (relative or absolute, through a symlink): Lightning
    compares the two paths as strings. Its state key is ModelCheckpoint's, so checkpoints of
    either class load into the other."""

    @property
    def state_key(self) -> str:
        return super().state_key.replace(type(self).__qualname__, ModelCheckpoint.__qualname__, 1)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        saved = state_dict.get("dirpath")
        if saved and self.dirpath and os.path.realpath(saved) == os.path.realpath(self.dirpath):
            state_dict = {**state_dict, "dirpath": self.dirpath}
        super().load_state_dict(state_dict)


class LitCertCLI(LightningCLI):
    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_lightning_class_args(CertifiedSchedule, "schedule")
        # best by validation certified accuracy ...
        parser.add_lightning_class_args(RunCheckpoint, "checkpoint")
        # ... and the latest, every epoch and on exceptions (Lightning's save_last only follows
        # epochs that also saved a best checkpoint, which would lose training on resume)
        parser.add_lightning_class_args(RunCheckpoint, "last_checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": DEFAULT_MONITOR,
                "checkpoint.mode": "max",
                "checkpoint.save_last": False,
                "checkpoint.filename": "best-epoch{epoch:03d}",
                "checkpoint.auto_insert_metric_name": False,
                "last_checkpoint.monitor": None,
                "last_checkpoint.save_top_k": 1,
                "last_checkpoint.filename": "last",
                "last_checkpoint.save_last": False,
                "last_checkpoint.save_on_exception": True,
                "last_checkpoint.enable_version_counter": False,
            }
        )
        parser.link_arguments("data.info", "model.init_args.data_info", apply_on="instantiate")
        parser.add_argument(
            "--test_after_fit", type=bool, default=False, help="After fit, test the best checkpoint (fit only)."
        )
        parser.add_argument(
            "--fork", type=bool, default=False,
            help="fit --ckpt_path: start a new run (directory, W&B run, best-checkpoint tracking) from the checkpoint "
                 "instead of continuing the run it belongs to.")
        parser.add_argument(
            "--allow_other_data", type=bool, default=False,
            help="test/validate (or resume) a checkpoint on data other than it was trained on (refused otherwise).")

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """fit, validate and test (``predict`` is lit_cert's own command: logits and verdicts)."""
        return {k: v for k, v in LightningCLI.subcommands().items() if k != "predict"}

    def parse_arguments(self, parser: LightningArgumentParser, args) -> None:
        """What jsonargparse rejects becomes one ConfigError line (``--help``/``--print_config``
        output passes through unchanged); then the checks of a run that would train nothing or
        report untrained weights."""
        argv = sys.argv[1:] if args is None else [str(a) for a in args]
        subparsers = getattr(self, "_subcommand_parsers", {})  # none when built with run=False

        def known_options():
            sub = next((a for a in argv if a in subparsers), None)
            chosen = subparsers[sub] if sub else parser
            return [o for a in chosen._actions for o in a.option_strings]

        one_line_errors(lambda: super(LitCertCLI, self).parse_arguments(parser, args), argv, known_options,
                        dict.fromkeys([*subparsers, *COMMANDS]))
        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        if sub in ("fit", "validate", "test"):
            check_precision((config.get("trainer") or {}).get("precision"))
        if sub == "fit":
            check_trains_something(config.get("trainer") or {})
        elif sub in ("test", "validate") and not config.get("ckpt_path"):
            raise ConfigError(
                f"{sub} needs --ckpt_path (a checkpoint of a trained run): without one it would report "
                "the metrics of untrained weights")
        validate_run_config(config)

    def _set_seed(self) -> None:
        """Seed as LightningCLI does, without its "Seed set" line: nothing is printed before the
        configuration and the data were checked (the seed is in the run's config.yaml)."""
        from lightning.fabric.utilities.seed import seed_everything

        sub = self.config.get("subcommand")
        config = self.config[sub] if sub else self.config
        seed = config.get("seed_everything")
        if seed is False:
            return
        config["seed_everything"] = seed_everything(None if seed is True else seed, workers=True, verbose=False)

    def instantiate_classes(self) -> None:
        """LightningCLI's order, with the checks that read files -- the checkpoint fits the model,
        the data are there and readable, the data are those the checkpoint was trained on -- done
        before the Trainer is built: a bad input is the only output, no Lightning banner first."""
        self.config_init = self.parser.instantiate_classes(self.config)
        self.datamodule = self._get(self.config_init, "data")
        self.model = self._get(self.config_init, "model")
        if self.subcommand in ("fit", "validate", "test"):
            self.early_checks(self.subcommand)
        self._add_configure_optimizers_method_to_model(self.subcommand)
        self.trainer = self.instantiate_trainer()

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        check_dropped_interpolations(config)
        root = os.environ.get(ROOT_DIR_ENV)
        trainer_cfg = config.get("trainer")
        if root and trainer_cfg is not None and not trainer_cfg.get("default_root_dir"):
            trainer_cfg["default_root_dir"] = root  # a sweep run: its files under the sweep's --out
        place_logger_dirs_under_root(config.get("trainer") or {})
        self.continued_run_dir = continue_run(config) if self.subcommand == "fit" else None

    def _parse_ckpt_path(self) -> None:
        # LightningCLI reads the checkpoint's hyper-parameters before anything is built: check
        # that the file exists and is readable first, so a bad path is one clear error
        sub = self.config.get("subcommand")
        ckpt_path = self.config[sub].get("ckpt_path") if sub else None
        if ckpt_path and str(ckpt_path) not in ("last", "best", "hpc", "registry"):
            read_checkpoint(ckpt_path)
        super()._parse_ckpt_path()

    def instantiate_trainer(self, **kwargs: Any) -> Trainer:
        trainer = super().instantiate_trainer(**kwargs)
        if not trainer.loggers:  # every run its own directory, logger or not
            run_dir = getattr(self, "continued_run_dir", None) or os.path.join(trainer.default_root_dir, "runs", "lit_cert",
                                                                               new_run_id())
            trainer.lit_cert_run_dir = run_dir
            for cb in trainer.checkpoint_callbacks:
                if cb.dirpath is None:
                    cb.dirpath = os.path.realpath(os.path.join(run_dir, "checkpoints"))
        return trainer

    def early_checks(self, stage: str) -> None:
        """Problems a run would otherwise meet only after it made its run directory (or mid-way
        through training): the checkpoint to resume from or test -- its weights fit, and it was
        trained on these data -- the data files, and a training epoch of at least one batch."""
        config = self.config[self.subcommand]
        ckpt_path = config.get("ckpt_path")
        state = None
        if ckpt_path and str(ckpt_path) not in ("last", "best", "hpc", "registry"):
            state = read_checkpoint(ckpt_path)
            check_state_fits(self.model, state["state_dict"], str(ckpt_path))
        schedule = self._get(self.config_init, "schedule", default=None)
        if stage == "fit" and isinstance(schedule, CertifiedSchedule):
            schedule.check_method(self.model)
        dm = self.datamodule
        if dm is not None:
            dm.defer_report = True  # printed once everything below held: an error is the only output
            if int(os.environ.get("LOCAL_RANK", 0)) == 0:
                dm.prepare_data()
            if dm.locate() is not None:
                dm.setup(stage)
        if state is not None and dm is not None and hasattr(dm, "identity"):
            # test/validate: the split evaluated; resume: the dataset and its transforms
            from lit_cert.runs import check_same_data, recorded_data

            check_same_data(recorded_data(state, str(ckpt_path)), dm, str(ckpt_path),
                            {"test": ("test",), "validate": ("val",)}.get(stage, ()), bool(config.get("allow_other_data")),
                            fix="use the run's data settings")
        if stage == "fit" and dm is not None and getattr(dm, "train_set", None) is not None:
            check_epoch_has_batches(config.get("trainer") or {}, dm)
        if dm is not None and getattr(dm, "train_set", None) is not None and hasattr(dm, "report"):
            dm.report()

    def before_fit(self) -> None:
        # the default monitor suits certified training; Standard/PGD pick theirs (see
        # CertifiedMethod.checkpoint_monitor) unless the user chose another one explicitly
        ckpt = self.trainer.checkpoint_callback
        if ckpt is not None and getattr(self.datamodule, "val_size", None) == 0 and ckpt.monitor is not None:
            # no validation split: nothing to select by; the last checkpoint is the result
            ckpt.monitor, ckpt.save_top_k = None, 0
            print("lit_cert: no validation split (data.val_size 0): the last checkpoint is the result", file=sys.stderr)
        wanted = getattr(self.model, "checkpoint_monitor", None)
        if ckpt is not None and ckpt.monitor == DEFAULT_MONITOR and wanted and wanted != ckpt.monitor:
            ckpt.monitor = wanted
            print(f"lit_cert: best checkpoint by {wanted} ({type(self.model).__name__})", file=sys.stderr)

    def after_fit(self) -> None:
        if self.trainer.global_step == 0:  # neither trained nor resumed: nothing to report
            raise ConfigError(
                "fit ran no training step (is the training loader empty? "
                f"{self.trainer.num_training_batches} training batches per epoch); no checkpoint was trained "
                "and no test metrics are reported")
        ckpt = self.trainer.checkpoint_callback
        extra = {}
        if ckpt is not None and getattr(ckpt, "best_model_score", None) is not None:
            extra[f"best/{ckpt.monitor}"] = float(ckpt.best_model_score)
        write_result_file(self.trainer, extra)
        if not self.config[self.subcommand].get("test_after_fit"):
            return
        ckpt_path = "best" if ckpt is not None and getattr(ckpt, "best_model_path", "") else None
        results = self.trainer.test(self.model, datamodule=self.datamodule, ckpt_path=ckpt_path)
        print_summary(self.model, results)
        write_result_file(self.trainer, extra)

    def after_test(self) -> None:
        print_summary(self.model, self.trainer.callback_metrics)


RESULT_FILE_ENV = "LIT_CERT_RESULT_FILE"
#: the default of ``trainer.default_root_dir`` (the sweep runner sets it per run, so that every
#: artefact of a sweep -- run directories, checkpoints, W&B files -- stays under its --out)
ROOT_DIR_ENV = "LIT_CERT_ROOT_DIR"


def write_result_file(trainer: Trainer, extra: dict | None = None) -> None:
    """If ``$LIT_CERT_RESULT_FILE`` is set, write the run's final metrics there as JSON (rank 0).

    The offline sweep runner reads it; values are the last logged ones (W&B's summary
    convention) plus ``best/<monitor>`` of the best checkpoint and the final eps/kappa."""
    path = os.environ.get(RESULT_FILE_ENV)
    if not path or not trainer.is_global_zero:
        return
    from lit_cert.files import RUN_RESULT
    from lit_cert.persist import DamagedFile, damage_notice, read_record, write_record

    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    module = trainer.lightning_module
    metrics.update({f"final/{k}": float(getattr(module, k)) for k in ("eps", "kappa", "beta") if hasattr(module, k)})
    metrics.update(extra or {})
    metrics["run_dir"] = run_directory(trainer)
    previous = {}
    try:
        previous = read_record(path, RUN_RESULT.kind)
    except FileNotFoundError:
        pass
    except DamagedFile as err:
        damage_notice(err, "rewritten with this run's metrics")
    write_record(path, RUN_RESULT.kind, {**previous, **metrics})


def print_summary(model: LightningModule, results: Any) -> None:
    metrics = results[0] if isinstance(results, list) and results else results
    if not metrics or "test/nat_acc" not in metrics:
        return
    nat, cert = float(metrics["test/nat_acc"]), float(metrics["test/cert_acc"])
    certifier = getattr(model, "hparams", {}).get("certifier", "?")
    eps = getattr(model, "eps_test", float("nan"))
    print(
        f"lit_cert: test natural accuracy {100 * nat:.2f}% | certified accuracy ({certifier.upper()}, "
        f"eps={eps:g}) {100 * cert:.2f}%"
    )


#: loggers whose runs a resumed fit continues (their ``id`` is the run directory's name)
CONTINUABLE_LOGGERS = ("lit_cert.loggers.AutoWandbLogger", "lightning.pytorch.loggers.WandbLogger",
                       "lightning.pytorch.loggers.wandb.WandbLogger")


def continue_run(cfg) -> Optional[str]:
    """``fit --ckpt_path <run dir>/checkpoints/X.ckpt`` continues *that* run: the same run
    directory (so Lightning restores the best-checkpoint and top-k state, which it keeps only for
    the same folder) and the same W&B run (its id, ``resume="allow"``). ``--fork true`` starts a
    new run from the checkpoint instead. Returns the run directory for a run without a logger."""
    ckpt = cfg.get("ckpt_path")
    if not ckpt or str(ckpt) in ("last", "best", "hpc", "registry") or cfg.get("fork"):
        return None
    path = Path(os.path.normpath(str(ckpt)))  # as given: the run's checkpoint folder is compared as a path string
    run_dir = path.parent.parent
    if path.parent.name != "checkpoints" or not (run_dir / "config.yaml").is_file():
        print(f"lit_cert: {ckpt} is not inside a lit_cert run directory: resuming into a new run", file=sys.stderr)
        return None
    trainer_cfg = cfg.get("trainer") or {}
    logger = trainer_cfg.get("logger")
    if logger in (None, False):
        print(f"lit_cert: continuing the run in {run_dir} (--fork true starts a new one)", file=sys.stderr)
        return str(run_dir)
    entries = logger if isinstance(logger, list) else [logger]
    first = entries[0]
    class_path = first.get("class_path") if hasattr(first, "get") else None
    if class_path not in CONTINUABLE_LOGGERS:
        print(f"lit_cert: the logger {class_path} cannot continue a run: resuming into a new run directory", file=sys.stderr)
        return None
    init_args = first.get("init_args")
    init_args["save_dir"] = str(run_dir.parent.parent)
    init_args["project"] = run_dir.parent.name
    init_args["id"] = run_dir.name
    print(f"lit_cert: continuing the run in {run_dir} and its W&B run {run_dir.name} (--fork true starts a new one)",
          file=sys.stderr)
    return None


def check_dropped_interpolations(cfg) -> None:
    """Refuse a run that silently lost an interpolated model argument.

    When the command line switches the method class (``--model=lit_cert.methods.SABR``),
    jsonargparse carries the old init_args over, but drops those still written as ``${...}``
    (they are resolved only at the end in omegaconf+ mode): the new method would silently get its
    default instead. Name them and the fix before anything is built."""
    model = cfg.get("model")
    init_args = (model.get("init_args") if model is not None else None) or {}
    dropped = []
    for path in cfg.get("config") or []:
        try:
            text = yaml.safe_load(Path(str(path)).read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        file_args = ((text.get("model") or {}).get("init_args") or {}) if isinstance(text, dict) else {}
        for key, value in file_args.items():
            if isinstance(value, str) and "${" in value and init_args.get(key) is None:
                dropped.append(f"{key} ({value} in {path})")
    if dropped:
        raise ConfigError(
            "the method class was changed on the command line and these interpolated model arguments were "
            f"dropped: {', '.join(dropped)}. Give them explicitly, e.g. --model.{dropped[0].split(' ')[0]}=VALUE, "
            "or change the class_path in the config file."
        )


def validate_run_config(config) -> None:
    """The one validation path of ``fit``/``test``/``validate``: every declared constraint
    (:mod:`lit_cert.options`) of the model, its network, the data and the schedule, checked on
    the parsed config before anything is built, each violation named by its dotted key
    (``model.init_args.network.init_args.width``)."""
    from lit_cert.classpath import import_class
    from lit_cert.options import validate_arguments

    def plain(node):
        return node.as_dict() if hasattr(node, "as_dict") else dict(node)

    def visit(node, key: str) -> None:
        if node is None or not hasattr(node, "get") or not node.get("class_path"):
            return
        try:
            cls = import_class(node["class_path"])
        except ConfigError:
            return  # the parser reports unknown classes itself
        init_args = plain(node.get("init_args") or {})
        validate_arguments(cls, init_args, f"{key}.init_args.")
        for name, value in init_args.items():
            if isinstance(value, dict) and value.get("class_path"):
                visit(value, f"{key}.init_args.{name}")

    visit(config.get("model"), "model")
    visit(config.get("data"), "data")
    if config.get("schedule") is not None:
        validate_arguments(CertifiedSchedule, plain(config["schedule"]), "schedule.")


def check_epoch_has_batches(trainer_cfg, dm) -> None:
    """A fractional ``limit_train_batches`` / ``limit_val_batches`` that leaves no batch of an
    epoch is refused before anything is built (Lightning would raise mid-way)."""
    import math

    loaders = {"limit_train_batches": (dm.train_set, dm.batch_size, True),
               "limit_val_batches": (dm.val_set, dm.eval_batch_size, False)}
    for key, (dataset, batch_size, train) in loaders.items():
        limit = trainer_cfg.get(key)
        if dataset is None or not isinstance(limit, float) or isinstance(limit, bool) or len(dataset) == 0:
            continue
        if not (0 < limit <= 1) and not limit.is_integer():
            raise ConfigError(f"trainer.{key}={limit}: a fraction of an epoch must lie in (0, 1]")
        batches = (len(dataset) // batch_size if train else math.ceil(len(dataset) / batch_size))
        if 0 < limit < 1 and int(batches * limit) == 0:
            least = 1 / max(batches, 1)
            raise ConfigError(f"trainer.{key}={limit} of {batches} batches per epoch is no batch at all: give at least "
                              f"{least:.3g} (or an integer number of batches)")


def check_trains_something(trainer_cfg) -> None:
    """``fit`` that would run no training step -- ``max_epochs: 0``, ``max_steps: 0``,
    ``limit_train_batches: 0`` -- is refused like every other size < 1, before anything is made:
    it would exit 0, save no checkpoint and (with ``--test_after_fit``) report untrained weights."""
    for key in ("max_epochs", "max_steps", "limit_train_batches"):
        value = trainer_cfg.get(key)
        if value is not None and not isinstance(value, bool) and value == 0:
            raise ConfigError(f"trainer.{key}={value} would train nothing: give a value >= 1 "
                              "(fractions of an epoch: limit_train_batches in (0, 1])")


#: trainer precisions that store the *weights* in half precision: every bound (and so every
#: certified accuracy) would be computed in it
HALF_WEIGHT_PRECISIONS = ("16-true", "bf16-true", "transformer-engine", "transformer-engine-float16")


def check_precision(precision) -> None:
    """Mixed precision (``16-mixed``/``bf16-mixed``) keeps float32 weights and is fine: training
    losses may use it, certified metrics run in float32 regardless (lit_cert.numerics). True half
    precision is refused."""
    if precision is not None and str(precision) in HALF_WEIGHT_PRECISIONS:
        raise ConfigError(
            f"trainer.precision={precision} keeps the weights in half precision, so no bound (and no certified "
            "accuracy) could be computed in full precision: use 16-mixed or bf16-mixed (float32 weights, "
            "half-precision training arithmetic) or 32-true")


def place_logger_dirs_under_root(trainer_cfg) -> None:
    """``trainer.default_root_dir`` holds the whole run: a logger configured with a *relative*
    ``save_dir`` (the default logger's ``runs``) writes under it instead of the working directory.
    Paths are made absolute, so a saved config reused later does not nest them twice."""
    root = trainer_cfg.get("default_root_dir")
    logger = trainer_cfg.get("logger")
    if not root or logger in (None, False, True):
        return
    for entry in logger if isinstance(logger, list) else [logger]:
        init_args = entry.get("init_args") if hasattr(entry, "get") else None
        save_dir = init_args.get("save_dir") if init_args is not None and hasattr(init_args, "get") else None
        if isinstance(save_dir, str) and not os.path.isabs(save_dir):
            init_args["save_dir"] = os.path.join(os.path.abspath(root), save_dir)


def _default_logger():
    from jsonargparse import lazy_instance

    from lit_cert.loggers import AutoWandbLogger

    return lazy_instance(AutoWandbLogger, save_dir="runs", project="lit_cert")


def run(args: Optional[list[str]] = None) -> Any:
    """``fit`` / ``validate`` / ``test`` through LightningCLI (``args=None`` reads ``sys.argv``);
    SIGTERM exits with 143 after the last checkpoint was written. User errors propagate to
    :func:`lit_cert.commands.main`, which prints them as one line."""
    # configs write interpolations as absolute paths (${model.init_args.eps_train}); omegaconf+
    # resolves them after command-line overrides once they are made relative to their node
    set_parsing_settings(omegaconf_absolute_to_relative_paths=True)
    try:
        try:
            return LitCertCLI(
                CertifiedMethod,
                ImageDataModule,
                subclass_mode_model=True,
                subclass_mode_data=True,
                save_config_callback=RunConfigSaver,
                save_config_kwargs={"save_to_log_dir": False, "overwrite": True},
                parser_kwargs=PARSER_KWARGS,
                trainer_defaults={"logger": _default_logger()},
                auto_configure_optimizers=False,
                args=args,
            )
        finally:
            if "wandb" in sys.modules:
                import wandb

                if wandb.run is not None:
                    wandb.finish()
    except SIGTERMException:
        print("lit_cert: stopped by SIGTERM; the last checkpoint (last.ckpt) holds the progress so far", file=sys.stderr)
        raise SystemExit(143) from None


#: no abbreviated keys (--trainer.max_epoch is a typo with a "did you mean", not max_epochs)
PARSER_KWARGS = {"parser_mode": "omegaconf+", "default_env": False, "allow_abbrev": False}
