"""Where a CNN7 sample's peak memory goes: RSS (now and peak) after each cascade stage and around BaB's verify/replay.

    python benchmarks/certification/cnn7_sample465_memory.py <IBP CNN7 run>/checkpoints/best-epoch003.ckpt OUT.json

Test sample 465 through the cascade (PGD .. BaB, 30 s, memory_gb 4), one thread; prints one line per
stage and writes them to OUT.json (here: sample465_rss_by_stage.json). Its final verdict and the
float64 re-check's record are in sample465_replay.json (the same cascade without the RSS probes)."""
import dataclasses, json, resource, sys, time
import torch
torch.set_num_threads(1)
from lit_cert.runs import load_run, split_dataset
import lit_cert.certify.cascade as C
from lit_cert.certify.bab import BranchAndBound
from lit_cert.certify.settings import BaBConfig

def rss():
    with open("/proc/self/statm") as f:
        now = int(f.read().split()[1]) * 4096 / 2**30
    return round(now, 2), round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)

log = []
for name, st in list(C.STAGES.items()):
    def wrap(run, name=name):
        def inner(*a, **k):
            before = rss(); t = time.perf_counter(); out = run(*a, **k)
            log.append({"stage": name, "rss_before": before, "rss_after": rss(), "s": round(time.perf_counter() - t, 1)}); print(log[-1], flush=True)
            return out
        return inner
    C.STAGES[name] = dataclasses.replace(st, run=wrap(st.run))
for meth in ("verify", "replay"):
    orig = getattr(BranchAndBound, meth)
    def wrapped(self, *a, _o=orig, _m=meth, **k):
        before = rss(); out = _o(self, *a, **k)
        log.append({"bab": _m, "dtype": str(a[0].dtype), "rss_before": before, "rss_after": rss()}); print(log[-1], flush=True)
        return out
    setattr(BranchAndBound, meth, wrapped)
ckpt = sys.argv[1]
model, dm = load_run(ckpt, None)
print("loaded", rss(), flush=True)
ds = split_dataset(dm, "test")
x, y = ds[465][0].unsqueeze(0), torch.tensor([int(ds[465][1])])
cfg = C.CascadeConfig(eps=model.eps_test, stages=("pgd", "ibp", "crown-ibp", "crown", "alpha-crown", "bab"), bab=BaBConfig(timeout=30), memory_gb=4)
v = C.Cascade(model.net.eval(), cfg).run(x, y, [465])[0]
print(v.status, v.details)
json.dump(log, open(sys.argv[2], "w"), indent=1)
