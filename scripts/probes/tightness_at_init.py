"""Local propagation tightness (Mao et al.) of the paradox CONV at initialisation, in both modes
of lit_cert's metric, on the first 1000 Fashion-MNIST test images, for 3 seeds.

    python scripts/probes/tightness_at_init.py
"""
import torch

from lit_cert.data import FashionMNIST
from lit_cert.evaluation import evaluate
from lit_cert.metrics import PropagationTightness
from lit_cert.models import CONV

torch.set_num_threads(1)
dm = FashionMNIST(batch_size=100, val_size=5000)
dm.prepare_data()
dm.setup("test")
for seed in range(3):
    torch.manual_seed(seed)
    net = CONV().build(FashionMNIST.info)
    out = evaluate(net, dm.test_set, {"margins (eps 0.1)": PropagationTightness(0.1, "margins"),
                                      "logits": PropagationTightness(None, "logits")}, limit=1000)
    print(f"seed {seed}: " + ", ".join(f"{k} {v.item():.4f}" for k, v in out.items()))
