"""The commands of ``lit_cert`` and their one-line summaries, in one leaf module.

:mod:`lit_cert.commands` dispatches on them and prints them in ``lit_cert --help``; a command's
own parser (:mod:`lit_cert.commands.fit`) names them in its errors. Keeping them here, with no
imports, lets both read them without importing each other.
"""

#: command -> module of lit_cert.commands that runs it
COMMANDS = {"fit": "fit", "validate": "fit", "test": "fit", "predict": "predict",
            "certify": "certify", "export": "export", "analyze": "analyze", "sweep": "sweep",
            "reproduce": "reproduce"}

#: one line per command for ``lit_cert --help``
SUMMARIES = {
    "fit": "train a network with a certified-training method (LightningCLI: --config FILE, dotted overrides)",
    "validate": "validation metrics of a trained checkpoint (--ckpt_path)",
    "test": "test metrics of a trained checkpoint (--ckpt_path): natural and certified accuracy",
    "certify": "the cascade IBP -> PGD -> CROWN -> alpha-CROWN -> BaB -> MILP over a split, sharded and resumable",
    "export": "ONNX model and VNN-LIB properties for external verifiers",
    "predict": "predictions of a trained network, each with its certificate, as CSV",
    "analyze": "the seeds' analyses (tightness, CR curves, relaxation landscapes, ...), CSV + PNG",
    "sweep": "run a W&B sweep file without a W&B server (grid, random, bayes), resumable and shardable",
    "reproduce": "a paper's table or figure with one command: ours beside the paper's, a verdict per claim",
}
