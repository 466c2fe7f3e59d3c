"""Sound bounds on the outputs of sequential ReLU networks (pure PyTorch, no Lightning).

* :mod:`.region` -- input regions (the L∞ ball intersected with the image domain).
* :mod:`.spec` -- the margin specification ``C`` (rows e_y - e_i) and what to do with its bounds.
* :mod:`.box` -- interval bound propagation (IBP): one rule per layer type, one walk.
"""

from lit_cert.bounds.box import flat_layers, interval_bounds, margin_bounds_ibp
from lit_cert.bounds.region import linf_box
from lit_cert.bounds.spec import is_certified, margin_spec, robust_cross_entropy

__all__ = [
    "flat_layers",
    "interval_bounds",
    "margin_bounds_ibp",
    "linf_box",
    "is_certified",
    "margin_spec",
    "robust_cross_entropy",
]
