"""The methods beyond IBP: identities between them, gradient tricks, and CLI training."""

import csv
import glob
import textwrap

import pytest
import torch

from lit_cert.bounds import linf_box, margin_bounds_ibp, margin_spec
from lit_cert.commands import main
from lit_cert.errors import ConfigError
from lit_cert.methods import CROWNIBP, IBP, MTLIBP, SABR, STAPS, TAPS, PGDTraining
from lit_cert.methods.taps import GradientLink, GradScale
from lit_cert.models import CNN3

from .helpers import synthetic_batch


@pytest.fixture
def batch():
    return synthetic_batch(32, train_size=32)


def make(cls, dm, **kw):
    torch.manual_seed(0)
    m = cls(network=kw.pop("network", CNN3()), data_info=dm.info, eps_train=0.05, eps_test=0.05, **kw)
    m.train()
    m.eps, m.kappa = 0.05, 0.0
    return m


def test_sabr_with_lambda_one_is_ibp(batch):
    dm, x, y = batch
    ibp, sabr = make(IBP, dm), make(SABR, dm, lam=1.0)
    sabr.load_state_dict(ibp.state_dict())
    assert torch.allclose(ibp.training_loss(x, y)[0], sabr.training_loss(x, y)[0], atol=1e-6)


def test_sabr_box_is_inside_the_eps_ball(batch):
    dm, x, y = batch
    sabr = make(SABR, dm, lam=0.3)
    sabr.net(x)
    lb, ub = sabr.input_region(x, y, 0.05)
    full_lb, full_ub = linf_box(x, 0.05)
    assert torch.all(lb >= full_lb - 1e-7) and torch.all(ub <= full_ub + 1e-7)
    assert torch.all(ub - lb <= 2 * 0.3 * 0.05 + 1e-6)


def test_taps_with_whole_net_as_feature_extractor_gives_ibp(batch):
    """Classifier = only the last Linear layer: PGD over a box through an affine map reaches its
    exact minimum, which is the IBP bound of the margin (spec folded into that layer)."""
    dm, x, y = batch
    taps = make(TAPS, dm, split=0)
    taps.net(x)
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(y, 4)
    l, u = taps.latent_box(lb, ub)
    est = taps.latent_pgd_margins(l, u, spec)
    ibp = margin_bounds_ibp(taps.net, lb, ub, spec)
    assert torch.allclose(est, ibp, atol=1e-4)


def test_staps_with_lambda_one_equals_taps(batch):
    dm, x, y = batch
    taps, staps = make(TAPS, dm), make(STAPS, dm, lam=1.0)
    staps.load_state_dict(taps.state_dict())
    torch.manual_seed(5)
    a = taps.training_loss(x, y)[0]
    torch.manual_seed(5)
    b = staps.training_loss(x, y)[0]
    assert torch.allclose(a, b, atol=1e-6)


def test_taps_split_points_and_errors(batch):
    dm, _, _ = batch
    m = make(TAPS, dm, split=1)  # CNN3 has 2 ReLUs: classifier starts after the first
    names = [type(l).__name__ for l in m.classifier]
    assert names == ["Conv2d", "BatchNorm2d", "ReLU", "Flatten", "Linear"]
    with pytest.raises(ConfigError, match="outside the network"):
        make(TAPS, dm, split=5)
    with pytest.raises(ConfigError, match="outside the network"):
        make(TAPS, dm, split=99, split_by="layer")


def test_gradient_link_routes_gradient_to_the_near_bound():
    """CTBench's rectified linear link: within c * width of a bound, a share growing linearly to
    1 at the bound; a degenerate box (lb = ub) splits the gradient evenly."""
    lb, ub = torch.zeros(3, requires_grad=True), torch.ones(3, requires_grad=True)
    z = torch.tensor([0.95, 0.4, 0.1])
    out = GradientLink.apply(lb, ub, z, 0.5)
    assert torch.equal(out, z)
    out.sum().backward()
    assert torch.allclose(ub.grad, torch.tensor([0.9, 0.0, 0.0]))
    assert torch.allclose(lb.grad, torch.tensor([0.0, 0.2, 0.8]))
    point_lb, point_ub = torch.full((1,), 0.3, requires_grad=True), torch.full((1,), 0.3, requires_grad=True)
    GradientLink.apply(point_lb, point_ub, torch.full((1,), 0.3), 0.5).sum().backward()
    assert point_lb.grad.item() == pytest.approx(0.5) and point_ub.grad.item() == pytest.approx(0.5)
    v = torch.tensor([2.0], requires_grad=True)
    (GradScale.apply(v, 3.0) * 5).backward()
    assert v.grad.item() == 15.0


def test_crown_ibp_beta_mixes_bounds(batch):
    dm, x, y = batch
    m = make(CROWNIBP, dm).eval()
    lb, ub = linf_box(x, 0.05)
    spec = margin_spec(y, 4)
    with torch.no_grad():
        m.beta = 0.0
        ibp = m.propagate(lb, ub, spec, None)
        m.beta = 1.0
        crown = m.propagate(lb, ub, spec, None)
        m.beta = 0.25
        mixed = m.propagate(lb, ub, spec, None)
    assert torch.allclose(ibp, margin_bounds_ibp(m.net, lb, ub, spec))
    assert torch.allclose(mixed, 0.25 * crown + 0.75 * ibp, atol=1e-5)
    assert (crown - ibp).mean() > 0


def test_mtl_ibp_interpolates(batch):
    dm, x, y = batch
    pure_ibp = make(IBP, dm)
    mtl1 = make(MTLIBP, dm, alpha=1.0)
    mtl1.load_state_dict(pure_ibp.state_dict())
    assert torch.allclose(pure_ibp.training_loss(x, y)[0], mtl1.training_loss(x, y)[0], atol=1e-6)
    mtl0 = make(MTLIBP, dm, alpha=0.0)
    loss0, logs0 = mtl0.training_loss(x, y)
    assert torch.allclose(loss0, logs0["adv_loss"], atol=1e-6)
    assert logs0["adv_loss"] <= logs0["ibp_loss"]  # attack <= bound


def test_pgd_training_loss_is_between_natural_and_ibp(batch):
    dm, x, y = batch
    m = make(PGDTraining, dm)
    loss, logs = m.training_loss(x, y)
    ibp = make(IBP, dm)
    ibp.load_state_dict(m.state_dict())
    assert logs["nat_loss"] - 1e-5 <= loss <= ibp.training_loss(x, y)[0] + 1e-5


METHODS = {
    "PGDTraining": ("CNN3", ""),
    "IBP": ("CNN3", "shi_reg: 0.5"),
    "CROWNIBP": ("CNN3", ""),
    "CROWNIBP-fused": ("CNN3", "loss_fusion: true"),
    "SABR": ("CNN3", "lam: 0.4"),
    "TAPS": ("CNN3", "grad_scale: 2.0"),
    "STAPS": ("CNN3", "lam: 0.5"),
    "MTLIBP": ("CNN3", "alpha: 0.5"),
    "RelaxationTraining-crown": ("FC", "relaxation: crown"),
    "RelaxationTraining-deepz": ("FC", "relaxation: deepz"),
    "RelaxationTraining-hbox": ("FC", "relaxation: hbox"),
    "ExpectedTightBounds": ("FC", "robust_weight: 0.5"),  # propagated masks (Eq. 6)
    "ExpectedTightBounds-ibp-masks": ("CNN3", "masks: ibp"),
}


@pytest.mark.parametrize("name", sorted(METHODS))
def test_every_method_trains_through_the_cli(workdir, name):
    cls = name.split("-")[0]
    net, extra = METHODS[name]
    net_args = "{hidden: [24, 24]}" if net == "FC" else "{width: 0.5}"
    beta = ", beta_start: 0.5, beta_end: 0.5" if cls == "CROWNIBP" else ""  # the others refuse a beta they ignore
    cfg = workdir / "cfg.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            seed_everything: 1
            model:
              class_path: lit_cert.methods.{cls}
              init_args:
                network: {{class_path: lit_cert.models.{net}, init_args: {net_args}}}
                eps_train: 0.03
                eps_test: 0.03
                lr: 2.0e-3
                {extra}
            data:
              class_path: lit_cert.data.SyntheticImages
              init_args: {{train_size: 32, val_size: 16, test_size: 16, batch_size: 32}}
            schedule: {{warmup_epochs: 0, ramp_epochs: 0, kappa_start: 0.0{beta}}}
            trainer:
              max_epochs: 12
              log_every_n_steps: 1
              enable_progress_bar: false
              enable_model_summary: false
              logger: {{class_path: lightning.pytorch.loggers.CSVLogger, init_args: {{save_dir: logs}}}}
            """
        )
    )
    main(["fit", "--config", str(cfg)])
    rows = list(csv.DictReader(open(glob.glob(str(workdir / "logs" / "**" / "metrics.csv"), recursive=True)[0])))
    losses = [float(r["train/loss"]) for r in rows if r.get("train/loss")]
    assert len(losses) == 12  # one fixed batch per epoch: the loss on the same batch each step
    assert losses[-1] < losses[0], losses


def test_sabr_relu_shrinkage(batch):
    """Shrinkage 1 is plain SABR; smaller values shrink unstable ReLU outputs and lower the loss."""
    from lit_cert.bounds.registry import ibp_rules

    lb, ub = torch.tensor([[-1.0, 0.5, -2.0]]), torch.tensor([[3.0, 1.5, -1.0]])
    lo, hi = ibp_rules(0.5)[torch.nn.ReLU](None, lb, ub)
    # unstable [-1, 3] -> [0, 0.5 * 3]; stable-active [0.5, 1.5] and dead [-2, -1] as plain ReLU
    assert torch.allclose(lo, torch.tensor([[0.0, 0.5, 0.0]])) and torch.allclose(hi, torch.tensor([[1.5, 1.5, 0.0]]))
    dm, x, y = batch
    plain, same, shrunk = make(SABR, dm, lam=0.5), make(SABR, dm, lam=0.5, relu_shrinkage=1.0), make(SABR, dm, lam=0.5, relu_shrinkage=0.3)
    same.load_state_dict(plain.state_dict())
    shrunk.load_state_dict(plain.state_dict())
    losses = []
    for m in (plain, same, shrunk):
        torch.manual_seed(9)
        losses.append(m.training_loss(x, y)[0].item())
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert losses[2] < losses[0]
    with pytest.raises(ConfigError, match="relu_shrinkage"):
        make(SABR, dm, relu_shrinkage=1.5)
