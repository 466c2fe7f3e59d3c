"""Attacks (pure PyTorch): lower bounds on the worst case, the counterpart of :mod:`lit_cert.bounds`."""

from lit_cert.attacks.pgd import pgd_attack, pgd_maximize

__all__ = ["pgd_attack", "pgd_maximize"]
