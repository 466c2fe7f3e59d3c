"""Lightning callbacks: the eps / kappa / beta schedules."""

from lit_cert.callbacks.schedules import CertifiedSchedule, linear_ramp, smooth_ramp

__all__ = ["CertifiedSchedule", "linear_ramp", "smooth_ramp"]
