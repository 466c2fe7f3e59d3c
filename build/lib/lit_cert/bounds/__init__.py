"""Sound bounds on the outputs of sequential ReLU networks (pure PyTorch, no Lightning).

* :mod:`.region` -- input regions (the L∞ ball intersected with the image domain).
* :mod:`.spec` -- the margin specification ``C`` (rows e_y - e_i) and what to do with its bounds.
* :mod:`.trace` -- :class:`IntervalTrace`, what an IBP walk saw (pre-activation bounds, ...).
* :mod:`.box` -- interval bound propagation (IBP): one rule per layer type, one walk.
* :mod:`.backsub` -- linear relaxations by back-substitution (CROWN, DeepZ, hBox, CROWN-IBP).
* :mod:`.alpha_crown` -- CROWN with optimised lower slopes.
* :mod:`.registry` -- the one vocabulary of bound methods with their options (:func:`compute_bounds`),
  used by training, certification and the analyses.
* :mod:`.affine` -- the dense affine maps between ReLUs and other per-layer facts.
* :mod:`.expected`, :mod:`.fusion` -- training-only constructions (unsound expected bounds; a
  sound one-row CROWN-IBP bound of the cross-entropy).
"""

from lit_cert.bounds.box import flat_layers, interval_bounds, margin_bounds_ibp
from lit_cert.bounds.region import certified_box, linf_box
from lit_cert.bounds.registry import BOUND_METHODS, BoundMethod, BoundSpec, bound_method, bound_spec, compute_bounds
from lit_cert.bounds.spec import is_certified, margin_spec, robust_cross_entropy
from lit_cert.bounds.trace import IntervalTrace

__all__ = [
    "flat_layers",
    "interval_bounds",
    "margin_bounds_ibp",
    "linf_box",
    "certified_box",
    "BOUND_METHODS",
    "BoundMethod",
    "BoundSpec",
    "bound_spec",
    "bound_method",
    "compute_bounds",
    "is_certified",
    "margin_spec",
    "robust_cross_entropy",
    "IntervalTrace",
]
