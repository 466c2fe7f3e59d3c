"""torchmetrics for certified training (states are summed across DDP ranks)."""

from lit_cert.metrics.accuracy import CertifiedAccuracy, NaturalAccuracy, RateMetric

__all__ = ["RateMetric", "NaturalAccuracy", "CertifiedAccuracy"]
