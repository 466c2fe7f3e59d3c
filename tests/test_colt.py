"""COLT (seed 000 Table 2's layer-wise method) and its 4-layer CNN."""

import pytest
import torch
import torch.nn.functional as F

from lit_cert.bounds import interval_bounds, linf_box
from lit_cert.commands import main
from lit_cert.data import SyntheticImages
from lit_cert.errors import ConfigError
from lit_cert.methods import COLT
from lit_cert.methods.colt import _deepz, approx_bounds
from lit_cert.models import ConvMed


@pytest.fixture
def setup():
    dm = SyntheticImages(train_size=32, val_size=16, test_size=16, batch_size=32)
    dm.setup()
    x, y = dm.train_set.images[:8].float() / 255, dm.train_set.labels[:8]
    torch.manual_seed(0)
    m = COLT(network=ConvMed(width=0.25), data_info=dm.info, eps_train=0.05, eps_test=0.05, stage_epochs=4, mix_epochs=2)
    m.train()
    return dm, m, x, y


def test_convmed_is_colts_four_layer_cnn():
    from lit_cert.data import DataInfo

    net = ConvMed().build(DataInfo(name="cifar10", in_shape=(3, 32, 32), num_classes=10, mean=(0.5,) * 3, std=(0.25,) * 3))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    lins = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(c.out_channels, c.kernel_size, c.stride, c.padding) for c in convs] == [(32, (5, 5), (2, 2), (2, 2)), (128, (4, 4), (2, 2), (1, 1))]
    assert [(l.in_features, l.out_features) for l in lins] == [(128 * 8 * 8, 250), (250, 10)]
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_stage_schedule_follows_the_authors_script(setup):
    _, m, _, _ = setup
    assert m.stages == [0, 1, 2]  # input, after ReLU 1, after ReLU 2
    # eps_factor^(S-1-j) * start_eps_factor * eps_train
    assert [m.stage_eps(j) for j in range(3)] == pytest.approx([1.2 ** 2 * 1.05 * 0.05, 1.2 * 1.05 * 0.05, 1.05 * 0.05])
    assert [m.stage_index(e) for e in (0, 3, 4, 11, 12, 30)] == [0, 0, 1, 2, 2, 2]
    # lr: x0.5 per stage; within a stage halved every lr_step epochs counted after the mixing epochs
    m.lr_step = 1
    assert [m.lr_factor(e) for e in (0, 1, 2, 3, 4, 6, 7)] == pytest.approx([1, 1, 1, 0.5, 0.5, 0.5, 0.25])


def test_cauchy_projections_estimate_the_l1_norm(setup):
    """The first ReLU's input bounds of the zonotope are exact interval bounds (an affine image
    of the box): the estimator's median must approach them."""
    _, m, x, _ = setup
    torch.manual_seed(0)
    (l, u), = approx_bounds(m.layers, x, 0.05, 1, k=4000)
    prefix = torch.nn.Sequential(*m.layers[: m.relu_pos[0]])  # Normalize, Conv: IBP is exact here
    el, eu = interval_bounds(prefix, *linf_box(x, 0.05))
    rel = ((u - l) / (eu - el).clamp_min(1e-6) - 1).abs()
    assert rel.median() < 0.05 and rel.max() < 0.3
    assert torch.allclose((u + l) / 2, (eu + el) / 2, atol=1e-5)


def test_latent_points_lie_in_the_stage_region(setup):
    """Stage 0: the adversarial input stays in the clamped box. Stage 1 with exact first-layer
    bounds: every neuron lies in DeepZ's output interval [λl, λu + 2μ] (0 if dead)."""
    _, m, x, y = setup
    adv0 = m.latent_attack(x, y, 0, 0.05, [])
    lb, ub = linf_box(x, 0.05)
    assert torch.all(adv0 >= lb - 1e-6) and torch.all(adv0 <= ub + 1e-6)
    prefix = torch.nn.Sequential(*m.layers[: m.relu_pos[0]])
    l, u = interval_bounds(prefix, lb, ub)
    adv1 = m.latent_attack(x, y, 1, 0.05, [(l, u)])
    lam, mu = _deepz(l, u)
    lo, hi = torch.minimum(lam * l, lam * u), lam * u + 2 * mu
    assert torch.all(adv1 >= lo - 1e-5) and torch.all(adv1 <= hi + 1e-5)
    assert torch.all(adv1[u <= 0] == 0)


def test_latent_attack_increases_the_loss(setup):
    _, m, x, y = setup
    torch.manual_seed(3)
    m.attack_steps = 1  # random start only
    start = F.cross_entropy(m.net(m.latent_attack(x, y, 0, 0.1, [])), y)
    torch.manual_seed(3)
    m.attack_steps = 8
    attacked = F.cross_entropy(m.net(m.latent_attack(x, y, 0, 0.1, [])), y)
    assert attacked > start


def test_stage_losses_mix_and_the_prefix_is_frozen(setup):
    """At κ = 0 of stage 0 the loss is the natural CE (plus nothing: the stability penalty is
    weighted by κ); from stage 1 on the layers before the latent space get no gradient."""
    _, m, x, y = setup
    m._progress = lambda: (0, 0.0)
    loss, logs = m.training_loss(x, y)
    assert loss.item() == pytest.approx(logs["nat_loss"].item(), rel=1e-6)
    m._progress = lambda: (1, 1.0)
    type(m).current_epoch = property(lambda self: 4)  # epoch 4 = stage 1 (stage_epochs 4)
    try:
        m.on_train_epoch_start()
    finally:
        del type(m).current_epoch
    loss, logs = m.training_loss(x, y)
    loss.backward()
    first_conv = m.layers[1]
    assert first_conv.weight.grad is None
    assert m.layers[3].weight.grad is not None and m.layers[3].weight.grad.abs().sum() > 0
    assert logs["relu_stable_loss"] > 0 and logs["stage"] == 1.0


def test_colt_fit_end_to_end_freezes_and_restarts_per_stage(tmp_path, monkeypatch):
    """Two stages of one epoch each through the CLI: the first conv layer changes in stage 0 and
    not in stage 1, the optimiser's momentum starts afresh; the run writes its checkpoint."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "disabled")
    cfg = tmp_path / "colt.yaml"
    cfg.write_text(
        "model:\n  class_path: lit_cert.methods.COLT\n  init_args:\n"
        "    network: {class_path: lit_cert.models.ConvMed, init_args: {width: 0.25}}\n"
        "    eps_train: 0.05\n    eps_test: 0.05\n    stages: [0, 1]\n    stage_epochs: 1\n    mix_epochs: 0\n"
        "    optimizer: sgd\n    lr: 0.03\n    momentum: 0.9\n    attack_steps: 2\n    n_rand_proj: 8\n"
        "data:\n  class_path: lit_cert.data.SyntheticImages\n  init_args: {train_size: 64, val_size: 16, test_size: 16, batch_size: 32}\n"
        "schedule: {warmup_epochs: 0, ramp_epochs: 0}\n"
        "trainer: {max_epochs: 2, logger: false, enable_progress_bar: false}\n"
    )
    snapshots, states = [], []
    from lightning.pytorch.callbacks import Callback

    class Snap(Callback):
        def on_train_epoch_end(self, trainer, module):
            snapshots.append(module.layers[1].weight.detach().clone())

    orig = COLT.on_train_epoch_start

    def hooked(self):
        before = len(self.optimizers().optimizer.state)
        orig(self)
        states.append((before, len(self.optimizers().optimizer.state)))
        if not any(isinstance(c, Snap) for c in self.trainer.callbacks):
            self.trainer.callbacks.append(Snap())
            snapshots.append(self.layers[1].weight.detach().clone())

    monkeypatch.setattr(COLT, "on_train_epoch_start", hooked)
    main(["fit", "--config", str(cfg)])
    assert len(snapshots) == 3
    assert not torch.equal(snapshots[0], snapshots[1])  # stage 0 trains the first conv
    assert torch.equal(snapshots[1], snapshots[2])  # stage 1 freezes it
    assert states[0] == (0, 0) and states[1][0] > 0 and states[1][1] == 0  # momentum reset at the new stage
    assert list(tmp_path.glob("runs/lit_cert/*/checkpoints/last.ckpt"))


@pytest.mark.parametrize("kw", [{"stages": [1, 0]}, {"stages": [0, 9]}, {"stage_epochs": 0}, {"mix_epochs": 5, "stage_epochs": 2},
                                {"attack_steps": 0}, {"nat_factor": 2.0}])
def test_colt_rejects_bad_settings(kw):
    dm = SyntheticImages(train_size=8, val_size=8, test_size=8, batch_size=8)
    with pytest.raises(ConfigError):
        COLT(network=ConvMed(width=0.25), data_info=dm.info, **kw)
