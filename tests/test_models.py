"""Architectures: shapes, normalisation first, CNN7 structure, IBP initialisation."""

import math

import pytest
import torch
from torch import nn

from lit_cert.bounds import flat_layers
from lit_cert.data import CIFAR10, MNIST, DataInfo
from lit_cert.layers import BatchNorm1d, BatchNorm2d, Normalize
from lit_cert.models import CNN3, CNN7, CONV, FC, CONVPlus, GowalLarge, GowalMedium, GowalSmall, ibp_init

ARCHS = [FC(), CONV(), CONVPlus(), CNN3(), CNN7(), CNN7(width=0.5, depth=3), GowalSmall(), GowalMedium(), GowalLarge()]


@pytest.mark.parametrize("info", [MNIST.info, CIFAR10.info], ids=["mnist", "cifar"])
@pytest.mark.parametrize("arch", ARCHS, ids=lambda a: repr(a)[:40])
def test_builds_with_normalisation_first(arch, info):
    net = arch.build(info).eval()
    layers = flat_layers(net)
    assert isinstance(layers[0], Normalize)
    assert torch.allclose(layers[0].mean.flatten(), torch.tensor(info.mean))
    out = net(torch.rand(3, *info.in_shape))
    assert out.shape == (3, info.num_classes)
    assert isinstance(layers[-1], nn.Linear) and layers[-1].out_features == info.num_classes


def test_cnn7_matches_the_anchor_architecture():
    net = CNN7().build(CIFAR10.info)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 128]
    assert [c.stride[0] for c in convs] == [1, 1, 2, 1, 1]
    assert all(c.kernel_size == (3, 3) and c.padding == (1, 1) for c in convs)
    assert sum(isinstance(m, BatchNorm2d) for m in net) == 5
    assert sum(isinstance(m, BatchNorm1d) for m in net) == 1
    linears = [m for m in net if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(128 * 16 * 16, 512), (512, 10)]


def test_width_and_depth():
    net = CNN7(width=2.0, depth=7).build(MNIST.info)
    convs = [m for m in net if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128, 128] + [256] * 5
    assert [m.out_features for m in net if isinstance(m, nn.Linear)] == [1024, 10]
    with pytest.raises(ValueError, match="depth"):
        CNN7(depth=0)
    with pytest.raises(ValueError, match="width"):
        FC(width=0)


def test_paradox_networks():
    fc = FC().build(MNIST.info)
    assert [m.out_features for m in fc if isinstance(m, nn.Linear)] == [400, 200, 100, 100, 10]
    conv = [m for m in CONV().build(MNIST.info) if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0], c.padding[0]) for c in conv] == [(16, 4, 2, 1)]
    plus = [m for m in CONVPlus().build(MNIST.info) if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in plus] == [(16, 4, 2), (32, 4, 1)]


def test_ibp_init_std_and_last_layer_untouched():
    torch.manual_seed(0)
    net = FC(hidden=(300, 300)).build(DataInfo("x", (1, 20, 20), 10, (0.0,), (1.0,)))
    last_before = flat_layers(net)[-1].weight.clone()
    ibp_init(net)
    linears = [m for m in net if isinstance(m, nn.Linear)]
    for lin in linears[:-1]:
        expected = math.sqrt(2 * math.pi) / lin.in_features
        assert abs(lin.weight.std().item() / expected - 1) < 0.05
        # E[sum_j |w_ij|] = 2 makes interval widths neither explode nor vanish
        assert abs(lin.weight.abs().sum(dim=1).mean().item() - 2.0) < 0.1
    assert torch.equal(linears[-1].weight, last_before)


@pytest.mark.parametrize("layers,widths", [
    (3, [16, 32, 10]), (4, [16, 32, 512, 10]), (5, [16, 16, 32, 512, 10]),
    (7, [64, 64, 128, 128, 128, 512, 10]), (9, [64, 64, 128, 128, 128, 128, 128, 512, 10]),
])
def test_cnn7_total_layers_follow_ctbenchs_depth_family(layers, widths):
    """Mao et al.'s Fig. 4 counts every affine layer (CTBench's cnn_<L>layer_bn)."""
    from torch import nn

    from lit_cert.bounds import flat_layers
    from lit_cert.data import CIFAR10
    from lit_cert.models import CNN7

    net = CNN7(layers=layers).build(CIFAR10.info)
    affine = [m for m in flat_layers(net) if isinstance(m, (nn.Conv2d, nn.Linear))]
    assert [getattr(m, "out_channels", None) or m.out_features for m in affine] == widths
    assert net(torch.rand(2, 3, 32, 32)).shape == (2, 10)


def test_cnn7_width_sweep_can_keep_the_linear_layer():
    from torch import nn

    from lit_cert.bounds import flat_layers
    from lit_cert.data import CIFAR10
    from lit_cert.models import CNN7

    fixed = CNN7(width=2, scale_linear=False).build(CIFAR10.info)
    scaled = CNN7(width=2).build(CIFAR10.info)
    out = lambda net: [m.out_features for m in flat_layers(net) if isinstance(m, nn.Linear)]  # noqa: E731
    assert out(fixed) == [512, 10] and out(scaled) == [1024, 10]
    assert [m.out_channels for m in flat_layers(fixed) if isinstance(m, nn.Conv2d)][:2] == [128, 128]
