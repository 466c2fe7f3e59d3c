"""torchmetrics for certified training (states are summed across DDP ranks)."""

from lit_cert.metrics.accuracy import CertifiedAccuracy, NaturalAccuracy, RateMetric
from lit_cert.metrics.robustness import CRCurve, PGDAccuracy, PGDRobustness, ReLUStability, relu_stability_trace, trapezoid_auc
from lit_cert.metrics.tightness import TIGHTNESS_MODES, PropagationTightness, local_tightness, margin_rows

__all__ = ["RateMetric", "NaturalAccuracy", "CertifiedAccuracy", "PropagationTightness", "local_tightness", "margin_rows", "TIGHTNESS_MODES",
           "PGDAccuracy", "PGDRobustness", "CRCurve", "ReLUStability", "relu_stability_trace", "trapezoid_auc"]
