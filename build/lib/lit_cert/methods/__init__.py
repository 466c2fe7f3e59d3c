"""Certified-training methods as LightningModules (one small subclass per method)."""

from lit_cert.methods.base import CERTIFIERS, CertifiedMethod, RobustLoss, load_method
from lit_cert.methods.colt import COLT
from lit_cert.methods.crown_ibp import CROWNIBP
from lit_cert.methods.expected import ExpectedTightBounds
from lit_cert.methods.ibp import IBP
from lit_cert.methods.mtl_ibp import MTLIBP
from lit_cert.methods.pgd import PGDTraining
from lit_cert.methods.relaxations import LPRelaxationTraining, RelaxationTraining
from lit_cert.methods.sabr import SABR
from lit_cert.methods.standard import Standard
from lit_cert.methods.taps import STAPS, TAPS

__all__ = [
    "CERTIFIERS",
    "CertifiedMethod",
    "RobustLoss",
    "load_method",
    "Standard",
    "PGDTraining",
    "IBP",
    "CROWNIBP",
    "RelaxationTraining",
    "LPRelaxationTraining",
    "SABR",
    "TAPS",
    "STAPS",
    "MTLIBP",
    "ExpectedTightBounds",
    "COLT",
]
