"""Certification: the PGD -> IBP -> CROWN -> alpha-CROWN -> MILP cascade, and ONNX / VNN-LIB export."""

from lit_cert.certify.cascade import STAGES, Cascade, CascadeConfig, Stage, Verdict, summarize
from lit_cert.bounds.affine import dense_affine_blocks
from lit_cert.certify.milp import verify_milp

__all__ = ["STAGES", "Cascade", "CascadeConfig", "Stage", "Verdict", "summarize", "dense_affine_blocks", "verify_milp"]
