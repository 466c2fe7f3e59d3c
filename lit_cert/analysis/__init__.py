"""Analyses that reproduce the science: tightness of deep linear networks at initialisation,
loss-landscape continuity of relaxations, validity of expected bounds, tightness and CR curves
of trained checkpoints. ``python -m lit_cert analyze <name> ...`` writes CSV + PNG."""
