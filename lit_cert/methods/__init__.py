"""Certified-training methods as LightningModules (one small subclass per method)."""

from lit_cert.methods.base import CERTIFIERS, CertifiedMethod, RobustLoss, load_method
from lit_cert.methods.ibp import IBP
from lit_cert.methods.standard import Standard

__all__ = ["CERTIFIERS", "CertifiedMethod", "RobustLoss", "load_method", "IBP", "Standard"]
