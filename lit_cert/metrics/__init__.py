"""torchmetrics for certified training (states are summed across DDP ranks)."""

from lit_cert.metrics.accuracy import CertifiedAccuracy, NaturalAccuracy, RateMetric
from lit_cert.metrics.robustness import CRCurve, PGDAccuracy, PGDRobustness, ReLUStability, relu_stability_trace, trapezoid_auc
from lit_cert.metrics.tightness import PropagationTightness, local_tightness

__all__ = ["RateMetric", "NaturalAccuracy", "CertifiedAccuracy", "PropagationTightness", "local_tightness",
           "PGDAccuracy", "PGDRobustness", "CRCurve", "ReLUStability", "relu_stability_trace", "trapezoid_auc"]
