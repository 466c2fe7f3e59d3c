"""Certification as a library: the IBP -> PGD -> CROWN-IBP -> CROWN -> alpha-CROWN -> branch and
bound -> MILP cascade (:mod:`.cascade`, :mod:`.bab`, :mod:`.milp`), sharded resumable runs over a
dataset (:mod:`.shards`), and ONNX / VNN-LIB writing for external verifiers (:mod:`.export`).
``python -m lit_cert certify`` / ``export`` (:mod:`lit_cert.commands`) are the surfaces.

The settings (:mod:`.settings`) import without torch, so ``lit_cert certify --help`` starts at
once; the engines are imported on first use of their names (PEP 562 ``__getattr__``)."""

from importlib import import_module

from lit_cert.certify.settings import (STAGE_NAMES, AlphaSettings, BaBConfig, CascadeConfig, CascadeSettings, MILPSettings,
                                       PGDSettings)

#: torch-heavy names -> the module that defines them
_LAZY = {
    "STAGES": "lit_cert.certify.cascade", "Cascade": "lit_cert.certify.cascade", "Stage": "lit_cert.certify.cascade",
    "Verdict": "lit_cert.certify.cascade", "check_verdict": "lit_cert.certify.cascade", "summarize": "lit_cert.certify.cascade",
    "BranchAndBound": "lit_cert.certify.bab", "verify_milp": "lit_cert.certify.milp",
    "dense_affine_blocks": "lit_cert.bounds.affine",
}


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["STAGE_NAMES", "AlphaSettings", "BaBConfig", "CascadeConfig", "CascadeSettings", "MILPSettings", "PGDSettings",
           *_LAZY]
