"""The certification cascade: cheap stages first, each sample ends certified, falsified or unknown.

Order: clean prediction (a misclassified sample is not robust) -> PGD (a counterexample
*falsifies*, with its margin) -> IBP -> CROWN-IBP -> CROWN -> alpha-CROWN -> MILP (complete, under
a per-sample time limit). A sample leaves the cascade at the first stage that decides it; one
that no stage decides is reported as *unknown* with the reason (time limit, network too large
for the MILP, stage disabled) -- never silently as "not certified".
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from lit_cert.attacks import pgd_attack
from lit_cert.bounds.backsub import LinearBounds, margin_bounds_crown, margin_bounds_crown_ibp
from lit_cert.bounds.box import flat_layers, interval_bounds, margin_bounds_ibp
from lit_cert.bounds.region import linf_box
from lit_cert.bounds.spec import is_certified, margin_spec
from lit_cert.certify.alpha_crown import alpha_crown_margins
from lit_cert.certify.milp import dense_affine_blocks, verify_milp

STAGES = ("pgd", "ibp", "crown-ibp", "crown", "alpha-crown", "milp")
BOUND_STAGES = {"ibp": margin_bounds_ibp, "crown-ibp": margin_bounds_crown_ibp, "crown": margin_bounds_crown}


@dataclass
class CascadeConfig:
    eps: float
    stages: tuple[str, ...] = STAGES
    pgd_steps: int = 50
    pgd_restarts: int = 3
    alpha_steps: int = 20
    milp_timeout: float = 30.0
    milp_max_neurons: int = 5000

    def __post_init__(self):
        unknown = [s for s in self.stages if s not in STAGES]
        if unknown:
            raise ValueError(f"unknown stages {unknown}; available: {list(STAGES)}")
        self.stages = tuple(s for s in STAGES if s in self.stages)  # always in cascade order


@dataclass
class Cascade:
    net: nn.Module
    config: CascadeConfig
    _blocks: list | None = field(default=None, init=False)

    def hidden_neurons(self, in_shape) -> int:
        if self._blocks is None:
            self._blocks = dense_affine_blocks(self.net, tuple(in_shape))
        return sum(w.shape[0] for w, _ in self._blocks[:-1])

    def run(self, x: torch.Tensor, y: torch.Tensor, indices: list[int]) -> list[dict]:
        net, cfg = self.net.eval(), self.config
        with torch.no_grad():
            logits = net(x)
        k = logits.shape[1]
        res = [
            {"index": int(i), "label": int(t), "pred": int(p), "status": None, "stage": None, "margin": None, "reason": None, "seconds": {}}
            for i, t, p in zip(indices, y.tolist(), logits.argmax(1).tolist())
        ]
        for r in res:
            if r["pred"] != r["label"]:
                r.update(status="misclassified", stage="clean")
        lb, ub = linf_box(x, cfg.eps)
        spec = margin_spec(y, k, x.dtype)
        for stage in cfg.stages:
            todo = [i for i, r in enumerate(res) if r["status"] is None]
            if not todo:
                break
            t0 = time.perf_counter()
            sel = torch.tensor(todo)
            if stage == "pgd":
                self._pgd(res, todo, x[sel], y[sel], spec[sel])
            elif stage == "milp":
                self._milp(res, todo, x, lb, ub, spec)
            else:
                with torch.no_grad():
                    if stage == "alpha-crown":
                        margins = alpha_crown_margins(net, lb[sel], ub[sel], spec[sel], steps=cfg.alpha_steps)
                    else:
                        margins = BOUND_STAGES[stage](net, lb[sel], ub[sel], spec[sel])
                for j, ok, m in zip(todo, is_certified(margins, y[sel]).tolist(), _min_other(margins, y[sel]).tolist()):
                    if ok:
                        res[j].update(status="certified", stage=stage, margin=float(m))
            per = (time.perf_counter() - t0) / len(todo)
            for j in todo:
                res[j]["seconds"][stage] = per
        for r in res:
            if r["status"] is None:
                r["status"] = "unknown"
                r["reason"] = r["reason"] or ("MILP not run" if "milp" not in cfg.stages else "undecided")
        return res

    def _pgd(self, res, todo, x, y, spec):
        cfg = self.config
        x_adv = pgd_attack(self.net, x, y, cfg.eps, steps=cfg.pgd_steps, restarts=cfg.pgd_restarts, loss="margin")
        with torch.no_grad():
            margins = torch.einsum("bmk,bk->bm", spec, self.net(x_adv))
        for j, m in zip(todo, _min_other(margins, y).tolist()):
            if m <= 0:
                res[j].update(status="falsified", stage="pgd", margin=float(m))

    def _milp(self, res, todo, x, lb, ub, spec):
        cfg = self.config
        if self.hidden_neurons(x.shape[1:]) > cfg.milp_max_neurons:
            for j in todo:
                res[j]["reason"] = f"network too large for the MILP ({self.hidden_neurons(x.shape[1:])} > {cfg.milp_max_neurons} hidden neurons)"
            return
        relu_idx = [i for i, m in enumerate(flat_layers(self.net)) if isinstance(m, nn.ReLU)]
        for j in todo:
            with torch.no_grad():
                pre = self._pre_bounds(lb[j : j + 1], ub[j : j + 1], relu_idx)
            rows = np.delete(spec[j].double().numpy(), res[j]["label"], axis=0)
            out = verify_milp(self._blocks, lb[j].flatten().double().numpy(), ub[j].flatten().double().numpy(), pre, rows, cfg.milp_timeout)
            if out.status == "certified":
                res[j].update(status="certified", stage="milp", margin=out.min_margin)
            elif out.status == "falsified":
                cex = torch.from_numpy(out.counterexample).to(x.dtype).view_as(x[j : j + 1])
                cex = torch.min(torch.max(cex, lb[j : j + 1]), ub[j : j + 1])
                with torch.no_grad():
                    m = _min_other(torch.einsum("bmk,bk->bm", spec[j : j + 1], self.net(cex)), torch.tensor([res[j]["label"]])).item()
                if m <= 0:
                    res[j].update(status="falsified", stage="milp", margin=float(m))
                else:
                    res[j]["reason"] = f"MILP counterexample not confirmed in float32 (margin {m:.2e})"
            else:
                res[j]["reason"] = f"MILP time limit ({cfg.milp_timeout:g}s)"

    def _pre_bounds(self, lb, ub, relu_idx):
        """Sound pre-activation bounds for the big-M constants: CROWN intersected with IBP."""
        eng = LinearBounds(self.net, lb, ub, "crown", "same")
        record: dict = {}
        interval_bounds(self.net, lb, ub, record=record)
        out = []
        for idx, (il, iu) in zip(relu_idx, record.get("relu_inputs", [])):
            cl, cu = eng.relu_input_bounds(idx)
            out.append((torch.max(il, cl).flatten().double().numpy(), torch.min(iu, cu).flatten().double().numpy()))
        return out


def _min_other(margins: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Smallest margin to another class (the true class's own margin, 0, is excluded)."""
    masked = margins.clone()
    masked[torch.arange(len(y)), y] = float("inf")
    return masked.min(dim=1).values


def summarize(results: list[dict], stages: tuple[str, ...]) -> dict:
    """Counts and rates: natural, PGD and certified accuracy, decisions and time per stage."""
    n = len(results)
    count = lambda **kw: sum(all(r.get(k) == v for k, v in kw.items()) for r in results)  # noqa: E731
    certified_by = {s: count(status="certified", stage=s) for s in stages if s != "pgd"}
    falsified_by = {s: count(status="falsified", stage=s) for s in ("pgd", "milp")}
    seconds = {s: sum(r["seconds"].get(s, 0.0) for r in results) for s in stages}
    ran = {s: sum(s in r["seconds"] for r in results) for s in stages}
    misclassified = count(status="misclassified")
    return {
        "samples": n,
        "natural_accuracy": (n - misclassified) / n if n else 0.0,
        "pgd_accuracy": (n - misclassified - falsified_by["pgd"]) / n if n else 0.0,
        "certified_accuracy": sum(certified_by.values()) / n if n else 0.0,
        "misclassified": misclassified,
        "falsified": falsified_by,
        "certified": certified_by,
        "unknown": count(status="unknown"),
        "stage_seconds": seconds,
        "stage_samples": ran,
        "stage_samples_per_second": {s: (ran[s] / seconds[s] if seconds[s] > 0 else None) for s in stages},
    }
