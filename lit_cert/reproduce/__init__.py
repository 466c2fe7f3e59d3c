"""Reproductions as data: a paper's table or figure, its claims and numbers, and the runs that
test them (:mod:`.spec`, the specs in :mod:`.catalog`); one runner (:mod:`.runner`, measures in
:mod:`.measures`), one report (:mod:`.render`, verdicts in :mod:`.claims`). The command is
``lit_cert reproduce`` (:mod:`lit_cert.commands.reproduce`)."""
