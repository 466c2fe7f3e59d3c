"""lit_cert's own certification table: the complete cascade on CNN7s (no paper: the numbers the
project states about its verifier, kept reproducible like the papers' tables)."""

from __future__ import annotations

from lit_cert.reproduce.spec import Claim, Column, Experiment, Measure, Row, Scale

FMNIST_CNN7 = ("--data.class_path=lit_cert.data.FashionMNIST", "--data.init_args.val_size=1000", "--trainer.max_epochs=4",
               "--schedule.ramp_epochs=2", "--model.milestones=[3]", "--trainer.logger=false", "--test_after_fit=false")

CNN7 = Experiment(
    id="lit_cert-cnn7-certify", paper="lit_cert", seed_file="", target="the CNN7 certification table",
    title="The complete cascade on CNN7s at eps 0.1: what stays unknown",
    columns=(Column("natural_cascade", "natural %", 100, 1), Column("certified_complete", "certified %", 100, 1),
             Column("unknown", "unknown %", 100, 1)),
    claims=(Claim("the complete cascade leaves at most 2% of the samples unknown (IBP CNN7)", "issue #29 goal", "unknown",
                  at_most=("IBP CNN7", 0.02)),),
    scales={"cpu": Scale(
        "cpu", (Row("IBP CNN7", "configs/mnist/cnn7_ibp_eps0.1.yaml", FMNIST_CNN7 + ("--data.init_args.train_size=20000",)),
                Row("SABR CNN7", "configs/mnist/cnn7_sabr_eps0.1.yaml",
                    FMNIST_CNN7 + ("--data.init_args.train_size=10000", "--model.pgd_steps=5", "--model.pgd_restarts=1"))),
        (Measure("cascade", {"limit": 1000, "stages": ["pgd", "ibp", "crown-ibp", "crown", "alpha-crown", "bab"],
                             "bab_timeout": 30, "extra": ["--memory_gb", "4", "--shard_size", "20"]}),),
        seeds=1, minutes_per_run=90.0, hardware="this 2-core machine, one thread per run",
        cost_source="measured: 1 h 21 min training and 9 min certification for the IBP CNN7 (2026-12-07)",
        differences=("CTBench's MNIST CNN7 recipe on Fashion-MNIST cut to 4 epochs on 10-20k images",))},
)
