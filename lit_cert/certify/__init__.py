"""Certification: the IBP -> CROWN -> alpha-CROWN -> MILP cascade, and ONNX / VNN-LIB export."""

from lit_cert.certify.alpha_crown import alpha_crown_margins
from lit_cert.certify.cascade import STAGES, Cascade, CascadeConfig, summarize
from lit_cert.certify.milp import dense_affine_blocks, verify_milp

__all__ = ["alpha_crown_margins", "STAGES", "Cascade", "CascadeConfig", "summarize", "dense_affine_blocks", "verify_milp"]
