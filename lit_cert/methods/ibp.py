"""IBP training (Gowal et al., 2018) with the warm-up regularisers of Shi et al. (2021)."""

from __future__ import annotations

from lit_cert.bounds.box import margin_bounds_ibp
from lit_cert.errors import ConfigError
from lit_cert.methods.base import CertifiedMethod, RobustLoss
from lit_cert.methods.regularizers import shi_regularizers


class IBP(CertifiedMethod):
    """Robust loss = CE on IBP lower bounds of the margins over the full eps-ball.

    Args (in addition to :class:`CertifiedMethod`'s):
        shi_reg: weight lambda_0 of Shi et al.'s tightness + ReLU-balance regularisers. They are
            applied only while eps ramps up, with weight ``lambda_0 * (1 - eps / eps_train)``.
            0 disables them (0.5 in Shi et al.'s and CTBench's settings).
        shi_tol: their tolerance tau (0.5).
    """

    def __init__(self, *args, shi_reg: float = 0.0, shi_tol: float = 0.5, **kwargs):
        super().__init__(*args, **kwargs)
        if shi_reg < 0 or not 0 < shi_tol:
            raise ConfigError(f"shi_reg must be >= 0 and shi_tol > 0, got {shi_reg}, {shi_tol}")
        self.shi_reg, self.shi_tol = shi_reg, shi_tol

    def propagate(self, lb, ub, spec, record):
        return margin_bounds_ibp(self.net, lb, ub, spec, record=record)

    def regularizer_weight(self, eps: float) -> float:
        if self.shi_reg <= 0 or not 0 < eps < self.eps_train:
            return 0.0
        return self.shi_reg * (1.0 - eps / self.eps_train)

    def wants_record(self, eps: float) -> bool:
        return self.regularizer_weight(eps) > 0

    def bound_penalty(self, out: RobustLoss, record: dict, eps: float) -> None:
        weight = self.regularizer_weight(eps)
        tight, relu = shi_regularizers(record, self.shi_tol)
        out.penalty = out.penalty + weight * (tight + relu)
        out.logs.update(reg_tightness=tight.detach(), reg_relu=relu.detach(), reg_weight=weight)
