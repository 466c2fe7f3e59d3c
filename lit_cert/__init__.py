"""lit_cert: certified training with PyTorch Lightning.

Layers of the package (each usable without the ones above it):

* :mod:`lit_cert.layers`, :mod:`lit_cert.bounds`, :mod:`lit_cert.attacks` -- pure PyTorch:
  the network building blocks, sound bound propagation and attacks.
* :mod:`lit_cert.models`, :mod:`lit_cert.data` -- architectures and datasets.
* :mod:`lit_cert.methods`, :mod:`lit_cert.metrics`, :mod:`lit_cert.callbacks` -- Lightning pieces.
* :mod:`lit_cert.commands` -- ``lit_cert fit|validate|test|certify|export|predict|analyze|sweep``
  (also ``python -m lit_cert ...``).
* :mod:`lit_cert.options`, :mod:`lit_cert.persist`, :mod:`lit_cert.files` -- every option declared
  with its constraint, every file written atomically and read back checked.
"""

__version__ = "0.2.0"
