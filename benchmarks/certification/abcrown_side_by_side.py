"""lit_cert's branch and bound beside alpha-beta-CROWN on the same samples (issue #38 item 4).

alpha-beta-CROWN runs *outside* the project, in its own virtual environment (``--python``; torch
2.8: with torch >= 2.9 auto_LiRPA's alpha optimisation silently returns plain CROWN bounds, so
``--check-alpha`` first proves on a toy that its alpha-CROWN is strictly above CROWN), on
``lit_cert export``'s ONNX + VNN-LIB of the run, unchanged (BatchNorm folded, normalisation in
the box), one process per sample, one thread, the same time limit. lit_cert runs the ``bab``
stage of its cascade in this process on one thread with the BaB settings of ``--lever``
(``hard_samples.LEVERS``). Per sample one JSON row per tool is appended to ``--out`` (a rerun
skips finished rows): verdict, seconds (alpha-beta-CROWN: its own ``Time:`` and the wall time
with start-up). A counterexample from either tool is checked on the network (in the box, the
label not strictly above every other class); a verdict pair certified / falsified is a
contradiction. The summary prints decided / open / contradictions and the median and total time
per tool, and the medians on the samples both decide.

    python benchmarks/certification/abcrown_side_by_side.py --ckpt RUN/checkpoints/last.ckpt \\
        --indices-from results/.../pgd003_levers.jsonl --timeout 120 --lever mn3 \\
        --abcrown /tmp/abc/src/complete_verifier --python /tmp/abc/venv/bin/python --out side_by_side.jsonl
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from hard_samples import LEVERS  # noqa: E402

from lit_cert.certify import BaBConfig, Cascade, CascadeConfig  # noqa: E402
from lit_cert.evaluation import batches  # noqa: E402
from lit_cert.reports import RowCache  # noqa: E402
from lit_cert.runs import load_run, split_dataset  # noqa: E402

ABCROWN_CONFIG = """general:
  device: cpu
  save_adv_example: true
  results_file: {result}
model:
  onnx_path: {onnx}
  input_shape: [-1, {shape}]
specification:
  vnnlib_path: {vnnlib}
attack:
  cex_path: {cex}
bab:
  timeout: {timeout}
"""

TOY_CHECK = """
import torch, torch.nn as nn
from auto_LiRPA import BoundedModule, BoundedTensor, PerturbationLpNorm
torch.manual_seed(0)
net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 3))
x = torch.rand(1, 4)
m = BoundedModule(net, torch.zeros(1, 4))
bx = BoundedTensor(x, PerturbationLpNorm(norm=float('inf'), eps=0.3))
crown = m.compute_bounds(x=(bx,), method='CROWN')[0]
m.set_bound_opts({'optimize_bound_args': {'iteration': 50}})
alpha = m.compute_bounds(x=(bx,), method='alpha-CROWN')[0]
print('torch', torch.__version__, 'alpha-crown minus crown', (alpha - crown).max().item())
assert (alpha - crown).max().item() > 1e-4, 'alpha-CROWN is not above CROWN: do not trust this install'
"""


def check_alpha(python: str, abcrown: str) -> None:
    out = subprocess.run([python, "-c", TOY_CHECK], cwd=abcrown, capture_output=True, text=True,
                         env={**os.environ, "OMP_NUM_THREADS": "1"})
    print(out.stdout.strip() or out.stderr.strip()[-2000:], flush=True)
    if out.returncode != 0:
        sys.exit("alpha-CROWN check failed")


def _address_space_limit(gb: float | None):
    """A ``preexec_fn`` capping the child's address space at ``gb`` GB (None: no cap), so that an
    alpha-beta-CROWN run that outgrows the machine fails alone with an allocation error instead of
    the kernel's OOM killer taking a neighbour (importing its CUDA build of torch maps ~4.4 GB)."""
    if gb is None:
        return None

    def limit():
        import resource

        cap = int(gb * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))

    return limit


def run_abcrown(python: str, abcrown: str, onnx: Path, vnnlib: Path, shape: tuple, timeout: float, work: Path,
                memory_gb: float | None = None) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    cfg = work / "config.yaml"
    cfg.write_text(ABCROWN_CONFIG.format(result=work / "result.txt", onnx=onnx, vnnlib=vnnlib, cex=work / "cex.txt",
                                         timeout=timeout, shape=", ".join(str(s) for s in shape)))
    start = time.perf_counter()
    proc = subprocess.run([python, "abcrown.py", "--config", str(cfg)], cwd=abcrown, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}, timeout=timeout * 3 + 300,
                          preexec_fn=_address_space_limit(memory_gb))
    wall = time.perf_counter() - start
    (work / "log.txt").write_text(proc.stdout + proc.stderr)
    result = re.findall(r"^Result: (\w+)", proc.stdout, re.M)
    seconds = re.findall(r"^Time: ([0-9.]+)", proc.stdout, re.M)
    status = {"unsat": "certified", "sat": "falsified", "timeout": "unknown"}.get(result[-1] if result else "", "error")
    if status == "error" and re.search(r"MemoryError|can't allocate memory|out of memory", proc.stderr):
        status = "out of memory"
    return {"status": status, "seconds": float(seconds[-1]) if seconds else None, "wall": round(wall, 2),
            "returncode": proc.returncode, "cex": (work / "cex.txt").read_text() if status == "falsified" and (work / "cex.txt").exists() else None}


def check_counterexample(net, x_pixels: torch.Tensor, label: int, eps: float, cex_text: str, stats) -> bool:
    """Whether alpha-beta-CROWN's counterexample (``(X_i value)`` lines, normalised space with the
    box normalisation) lies in the eps box of the image and scores another class >= the label."""
    values = [float(v) for v in re.findall(r"\(X_\d+\s+([-0-9.eE+]+)\)", cex_text)]
    if len(values) != x_pixels.numel():
        return False
    x = torch.tensor(values, dtype=torch.float64).view_as(x_pixels)
    if stats is not None:
        mean, std = (torch.as_tensor(s, dtype=torch.float64).view(-1, 1, 1) for s in stats)
        x = x * std + mean
    inside = bool(((x >= x_pixels.double() - eps - 1e-6) & (x <= x_pixels.double() + eps + 1e-6)).all())
    with torch.no_grad():
        logits = copy.deepcopy(net).double()(x.unsqueeze(0))[0]
    others = torch.cat([logits[:label], logits[label + 1:]])
    return inside and bool(others.max() >= logits[label])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ckpt", required=True)
    p.add_argument("--indices", default=None, help="comma-separated test indices")
    p.add_argument("--indices-from", default=None, help="a hard_samples.py JSONL: its open samples")
    p.add_argument("--timeout", type=float, default=120.0)
    p.add_argument("--eps", type=float, default=None)
    p.add_argument("--lever", default="default")
    p.add_argument("--abcrown", required=True, help="alpha-beta-CROWN's complete_verifier folder")
    p.add_argument("--python", required=True, help="the python of its virtual environment")
    p.add_argument("--tools", default="abcrown,lit_cert")
    p.add_argument("--work", default="/tmp/abcrown_work")
    p.add_argument("--out", required=True)
    p.add_argument("--abcrown-memory-gb", type=float, default=None,
                   help="cap alpha-beta-CROWN's address space (GB; its torch import maps ~4.4 GB): out of memory "
                        "is then its own verdict, not the OOM killer's choice of process")
    args = p.parse_args()
    torch.set_num_threads(1)
    if args.indices_from:
        head = next(json.loads(line) for line in open(args.indices_from) if '"run": "open"' in line)
        indices = head["open"]
    else:
        indices = [int(i) for i in args.indices.split(",")]
    model, dm = load_run(args.ckpt, None)
    net = model.net.eval()
    eps = model.eps_test if args.eps is None else args.eps
    ds = split_dataset(dm, "test")
    n = max(indices) + 1
    x, y = next(batches(ds, n, batch_size=n))
    work = Path(args.work)
    export = work / "export"
    if "abcrown" in args.tools:
        check_alpha(args.python, args.abcrown)
        needed = [export / f"vnnlib/test_{i:05d}_eps{eps:g}.vnnlib" for i in indices]
        if not all(f.exists() for f in needed):
            subprocess.run([sys.executable, "-m", "lit_cert", "export", "--ckpt", args.ckpt, "--out", str(export),
                            "--limit", str(n), "--eps", str(eps), "--timeout", str(args.timeout)], check=True)
    from lit_cert.certify.export import verifier_network

    _, stats = verifier_network(net, "box")
    cache = RowCache(Path(args.out))
    for i in indices:
        for tool in args.tools.split(","):
            key = f"{tool}/{args.lever if tool == 'lit_cert' else 'abcrown'}/{args.timeout:g}/{i}"
            if cache.get(key) is not None:
                continue
            if tool == "abcrown":
                vnnlib = export / f"vnnlib/test_{i:05d}_eps{eps:g}.vnnlib"
                row = run_abcrown(args.python, args.abcrown, (export / "model.onnx").resolve(), vnnlib.resolve(),
                                  tuple(x.shape[1:]), args.timeout, work / f"abcrown_{i}", args.abcrown_memory_gb)
                if row["status"] == "falsified":
                    row["cex_checked"] = check_counterexample(net, x[i], int(y[i]), eps, row.pop("cex") or "", stats)
                row.pop("cex", None)
            else:
                c = Cascade(net, CascadeConfig(eps=eps, stages=("bab",), bab=BaBConfig(timeout=args.timeout, **LEVERS[args.lever])))
                start = time.perf_counter()
                v = c.run(x[i : i + 1], y[i : i + 1], [i])[0]
                row = {"status": v.status, "seconds": round(time.perf_counter() - start, 2), "reason": v.reason,
                       **v.details.get("bab", {})}
            row = {"run": key, "tool": tool, "index": i, "timeout": args.timeout, **row}
            cache.add(row)
            print(json.dumps(row), flush=True)
    summary(cache, indices, args)


def summary(cache: RowCache, indices: list[int], args) -> None:
    rows = {tool: {i: cache.get(f"{tool}/{args.lever if tool == 'lit_cert' else 'abcrown'}/{args.timeout:g}/{i}")
                   for i in indices} for tool in args.tools.split(",")}
    for tool, by in rows.items():
        done = [r for r in by.values() if r is not None]
        decided = [r for r in done if r["status"] in ("certified", "falsified")]
        times = [r["seconds"] for r in decided if r.get("seconds") is not None]
        print(f"{tool}: {len(done)} samples, decided {len(decided)} (certified {sum(r['status'] == 'certified' for r in decided)}, "
              f"falsified {sum(r['status'] == 'falsified' for r in decided)}), open {len(done) - len(decided)}; "
              f"median {statistics.median(times) if times else float('nan'):.2f} s, total {sum(r['seconds'] or 0 for r in done):.0f} s")
    if len(rows) == 2:
        a, b = rows.values()
        both = [i for i in indices if a[i] and b[i] and a[i]["status"] in ("certified", "falsified")
                and b[i]["status"] in ("certified", "falsified")]
        contradictions = sum(a[i]["status"] != b[i]["status"] for i in both)
        names = list(rows)
        for name, by in rows.items():
            med = statistics.median([by[i]["seconds"] for i in both]) if both else float("nan")
            print(f"  on the {len(both)} both decide: {name} median {med:.2f} s")
        print(f"contradictions: {contradictions}; decided by {names[0]} only: "
              f"{[i for i in indices if a[i] and a[i]['status'] in ('certified', 'falsified') and not (b[i] and b[i]['status'] in ('certified', 'falsified'))]}; "
              f"by {names[1]} only: {[i for i in indices if b[i] and b[i]['status'] in ('certified', 'falsified') and not (a[i] and a[i]['status'] in ('certified', 'falsified'))]}")


if __name__ == "__main__":
    main()
