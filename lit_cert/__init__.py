"""lit_cert: certified training with PyTorch Lightning.

Layers of the package (each usable without the ones above it):

* :mod:`lit_cert.layers`, :mod:`lit_cert.bounds`, :mod:`lit_cert.attacks` -- pure PyTorch:
  the network building blocks, sound bound propagation and attacks.
* :mod:`lit_cert.models`, :mod:`lit_cert.data` -- architectures and datasets.
* :mod:`lit_cert.methods`, :mod:`lit_cert.metrics`, :mod:`lit_cert.callbacks` -- Lightning pieces.
* :mod:`lit_cert.cli` -- ``python -m lit_cert fit|validate|test --config FILE``.
"""

__version__ = "0.1.0"
