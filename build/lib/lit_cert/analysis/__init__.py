"""Analyses that reproduce the science: tightness of deep linear networks at initialisation
(``dln``), box reconstruction through a bottleneck (``box_reconstruction``), continuity of
relaxations along a parameter direction (``landscape``), validity of expected bounds
(``expected_validity``), tightness and CR curves of trained checkpoints. ``python -m lit_cert
analyze <name> ...`` (``command``) writes CSV + PNG."""
