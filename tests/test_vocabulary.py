"""One bound vocabulary: every registered name means the same computation in training, in
certification and in the analyses (same bounds on the same net and box)."""

import pytest
import torch

from lit_cert.analysis.landscape import RELAXATIONS, output_lower_bound
from lit_cert.bounds import BOUND_METHODS, bound_spec, certified_box, compute_bounds, margin_spec
from lit_cert.bounds.registry import names
from lit_cert.certify import STAGES, Cascade, CascadeConfig
from lit_cert.data import SyntheticImages
from lit_cert.errors import ConfigError
from lit_cert.methods import CROWNIBP, IBP, LPRelaxationTraining, RelaxationTraining, Standard
from lit_cert.metrics import CRCurve
from lit_cert.models import FC

INFO = SyntheticImages(in_shape=(1, 4, 4), num_classes=3).info
EPS = 0.08


def training_method(name: str, options: dict):
    """The training method whose propagate is registry method ``name`` with ``options``."""
    common = dict(network=FC(hidden=[10, 8]), data_info=INFO, eps_train=EPS, eps_test=EPS)
    if name == "ibp":
        return IBP(**common)
    if name == "crown-ibp":
        m = CROWNIBP(**common)
        m.beta = 1.0
        return m
    if name in names("backsub"):
        return RelaxationTraining(relaxation=name, sparse_intermediate=options["sparse"], **common)
    if name in names("lp"):
        return LPRelaxationTraining(relaxation=name, **common)
    return None  # alpha-crown: a certifier only (no training method optimises slopes)


@pytest.mark.parametrize("name", list(BOUND_METHODS))
def test_a_bound_name_is_one_computation_everywhere(name):
    torch.manual_seed(0)
    reference = Standard(network=FC(hidden=[10, 8]), data_info=INFO, eps_train=EPS, eps_test=EPS, certifier=name).eval()
    net = reference.net
    x = torch.rand(6, 1, 4, 4)
    with torch.no_grad():
        y = net(x).argmax(1)
    lb, ub = certified_box(x, EPS)
    spec = margin_spec(y, 3)
    options = bound_spec(name).options
    truth = compute_bounds(net, lb, ub, spec, name).detach()  # certification's door
    # the validation/test certifier of every method
    assert torch.equal(reference.certify_margins(x, y, EPS).detach(), truth)
    # the training method's propagate (same options)
    method = training_method(name, options)
    if method is not None:
        method.net.load_state_dict(net.state_dict())
        method.eval()
        assert torch.allclose(method.propagate(lb, ub, spec, None).detach(), truth, atol=1e-6), name
        assert str(method.bound if name != "crown-ibp" else method.crown_ibp) == str(bound_spec(name, **options))
    # the cascade's stage of that name
    if name in STAGES:
        verdicts = Cascade(net, CascadeConfig(eps=EPS, stages=(name,))).run(x, y, list(range(6)))
        others = truth.clone()
        others[torch.arange(6), y] = float("inf")
        for v, m in zip(verdicts, others.min(1).values.tolist()):
            assert (v.status == "certified") == (m > 0)
            if v.status == "certified":
                assert v.margin == pytest.approx(m, abs=1e-6)
    # the CR-curve metric of analyze cr-curve
    curve = CRCurve([EPS], name)
    curve.update(net, x, y)
    others = truth.clone()
    others[torch.arange(6), y] = float("inf")
    assert curve.compute().flatten()[0].item() == pytest.approx((others.min(1).values > 0).float().mean().item())
    # the landscape analysis (one output row)
    if name in RELAXATIONS:
        row = torch.zeros(6, 1, 3)
        row[:, 0, 1] = 1.0
        expected = compute_bounds(net, lb[:1], ub[:1], row[:1], name)[0, 0]
        assert output_lower_bound(net, lb[:1], ub[:1], 1, name).item() == pytest.approx(expected.item(), abs=1e-6)


def test_options_are_validated_once_and_stated():
    assert str(bound_spec("crown", sparse=False)) == "crown(sparse=False)"
    assert bound_spec("alpha-crown", steps=5).options["steps"] == 5
    with pytest.raises(ConfigError, match="has no option steps"):
        bound_spec("crown", steps=3)
    with pytest.raises(ConfigError, match="did you mean crown"):
        bound_spec("crwon")
    with pytest.raises(ConfigError, match="invalid"):
        bound_spec("ibp", relu_shrinkage=2.0)
    # a training heuristic never certifies
    with pytest.raises(ConfigError, match="cannot certify"):
        compute_bounds(FC(hidden=[4]).build(INFO), torch.zeros(1, 1, 4, 4), torch.ones(1, 1, 4, 4), margin_spec(torch.tensor([0]), 3),
                       "ibp", relu_shrinkage=0.5)
    with pytest.raises(ConfigError, match="certifier"):
        Standard(network=FC(hidden=[4]), data_info=INFO, eps_test=0.1, certifier="ibp", certifier_options={"relu_shrinkage": 0.5})


def test_cascade_bound_stages_are_registry_names():
    bound_stages = [s for s, st in STAGES.items() if st.kind == "bound"]
    assert bound_stages and all(s in BOUND_METHODS for s in bound_stages)
