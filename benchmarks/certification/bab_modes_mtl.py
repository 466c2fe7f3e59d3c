"""Branch and bound on the MTL-IBP samples that 30 s root-mode BaB left open (results/fashion_mnist_conv_eps0.1_20epochs/bab_vs_milp/bab_vs_milp_mtl.json):
recompute mode at 30 s, root mode at 120 s. Writes results/fashion_mnist_conv_eps0.1_20epochs/bab_vs_milp/bab_modes_mtl.json.

    python benchmarks/certification/bab_modes_mtl.py
"""
import json, time, torch
from lit_cert.certify import BaBConfig, Cascade, CascadeConfig
from lit_cert.runs import load_run, split_dataset
d = json.load(open("results/fashion_mnist_conv_eps0.1_20epochs/bab_vs_milp/bab_vs_milp_mtl.json"))
idx = [r["index"] for r in d["records"] if r["bab"]["status"] == "unknown"]
model, dm = load_run(d["summary"]["ckpt"], None)
net = model.net.eval(); ds = split_dataset(dm, "test")
out = []
for mode, timeout in (("recompute", 30.0), ("root", 120.0)):
    for i in idx:
        x, y = ds[i][0].unsqueeze(0), torch.tensor([int(ds[i][1])])
        c = Cascade(net, CascadeConfig(eps=model.eps_test, stages=("bab",), bab=BaBConfig(timeout=timeout, intermediate=mode)))
        t = time.perf_counter(); v = c.run(x, y, [i])[0]
        row = {"index": i, "mode": mode, "timeout": timeout, "status": v.status, "reason": v.reason, "seconds": round(time.perf_counter() - t, 1), **v.details.get("bab", {})}
        print(json.dumps(row), flush=True); out.append(row)
json.dump(out, open("results/fashion_mnist_conv_eps0.1_20epochs/bab_vs_milp/bab_modes_mtl.json", "w"), indent=1)
