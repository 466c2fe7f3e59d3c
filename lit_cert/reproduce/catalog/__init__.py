"""Every reproduction lit_cert knows, by id (:data:`EXPERIMENTS`): one module per paper
(``seed000``, ``seed001``, ``seed002``) and lit_cert's own certification table (``cascade``)."""

from __future__ import annotations

from lit_cert.reproduce.catalog import cascade, seed000, seed001, seed002

EXPERIMENTS = {e.id: e for e in (
    seed000.FIG4, seed000.FIG5, seed000.FIG6, seed000.FIG9, seed000.TABLE2, seed000.THM39,
    seed001.FIG5, seed001.TABLE1, seed001.COVERAGE, seed001.FIG3CD, seed001.FIG4,
    seed002.TABLE2, seed002.TABLE8, seed002.TABLE14, seed002.APPI_BOX, seed002.K4_TRAIN, seed002.K4_CR,
    seed002.CONTINUITY, seed002.SENSITIVITY, seed002.DYNAMICS,
    cascade.CNN7,
)}
