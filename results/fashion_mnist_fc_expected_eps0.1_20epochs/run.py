"""PGD accuracy and PGD robustness (expected-bounds paper) on the first 1000 test samples."""
import sys, torch
from lit_cert.runs import load_run
from lit_cert.metrics import PGDAccuracy, PGDRobustness, NaturalAccuracy
torch.set_num_threads(1)
for path in sys.argv[1:]:
    model, dm = load_run(path)
    net = model.net.eval()
    x = torch.stack([dm.test_set[i][0] for i in range(1000)]); y = torch.tensor([int(dm.test_set[i][1]) for i in range(1000)])
    acc, rob = PGDAccuracy(0.1, steps=20, restarts=1), PGDRobustness(0.1, steps=20, restarts=1)
    nat = NaturalAccuracy()
    for i in range(0, 1000, 250):
        acc.update(net, x[i:i+250], y[i:i+250]); rob.update(net, x[i:i+250])
        with torch.no_grad(): nat.update(net(x[i:i+250]), y[i:i+250])
    print(f"{type(model).__name__} {path}: natural {nat.compute().item():.4f}  PGD accuracy {acc.compute().item():.4f}  PGD robustness {rob.compute().item():.4f}")
