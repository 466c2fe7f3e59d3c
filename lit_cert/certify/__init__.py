"""Certification as a library: the PGD -> IBP -> CROWN-IBP -> CROWN -> alpha-CROWN -> branch and
bound -> MILP cascade (:mod:`.cascade`, :mod:`.bab`, :mod:`.milp`), sharded resumable runs over a
dataset (:mod:`.shards`), and ONNX / VNN-LIB writing for external verifiers (:mod:`.export`).
``python -m lit_cert certify`` / ``export`` (:mod:`lit_cert.commands`) are the surfaces."""

from lit_cert.bounds.affine import dense_affine_blocks
from lit_cert.certify.bab import BaBConfig, BranchAndBound
from lit_cert.certify.cascade import (STAGES, AlphaSettings, Cascade, CascadeConfig, CascadeSettings, MILPSettings, PGDSettings,
                                      check_verdict,
                                      Stage, Verdict, summarize)
from lit_cert.certify.milp import verify_milp

__all__ = ["STAGES", "AlphaSettings", "BaBConfig", "BranchAndBound", "Cascade", "CascadeConfig", "CascadeSettings", "MILPSettings",
           "PGDSettings", "Stage", "Verdict", "check_verdict", "summarize", "dense_affine_blocks", "verify_milp"]
