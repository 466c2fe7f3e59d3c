"""Certification cascade, alpha-CROWN, MILP against brute force, ONNX / VNN-LIB export, resume."""

import contextlib
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lit_cert.bounds import linf_box, margin_spec
from lit_cert.bounds.backsub import linear_bounds
from lit_cert.bounds.alpha_crown import alpha_crown_margins
from lit_cert.certify import Cascade, CascadeConfig, MILPSettings, dense_affine_blocks, verify_milp
from lit_cert.commands import main

from .helpers import trained_run

from .exact import min_linear_objective, tiny_relu_net


def grid_min_margins(net, center, eps, label, n=161):
    g = torch.linspace(-eps, eps, n, dtype=torch.float64)
    pts = center + torch.stack(torch.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
    with torch.no_grad():
        out = net(pts)
    margins = out[:, label : label + 1] - out
    margins[:, label] = float("inf")
    return margins.min().item()


def pre_bounds_for(net, lb, ub):
    """CROWN pre-activation bounds (sound) for the big-M constants."""
    from lit_cert.bounds.backsub import LinearBounds

    e = LinearBounds(net, lb, ub, "crown", "same")
    relus = [i for i, m in enumerate(net) if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        return [tuple(t[0].numpy() for t in e.relu_input_bounds(i)) for i in relus]


def test_milp_verdicts_match_brute_force():
    agree = {"certified": 0, "falsified": 0}
    for seed in range(12):
        net = tiny_relu_net((2, 10, 8, 3), seed=seed)
        torch.manual_seed(seed)
        x = torch.rand(1, 2, dtype=torch.float64)
        label = int(net(x).argmax())
        eps = 0.15
        truth = grid_min_margins(net, x[0], eps, label)
        if abs(truth) < 1e-2:
            continue  # too close to call on a grid
        lb, ub = x - eps, x + eps
        spec = margin_spec(torch.tensor([label]), 3, torch.float64)[0].numpy()
        rows = np.delete(spec, label, axis=0)
        out = verify_milp(dense_affine_blocks(net, (2,)), lb[0].numpy(), ub[0].numpy(), pre_bounds_for(net, lb, ub), rows, timeout=20)
        expected = "certified" if truth > 0 else "falsified"
        assert out.status == expected, (seed, truth, out)
        agree[expected] += 1
        if expected == "falsified":
            cex = torch.from_numpy(out.counterexample)
            assert torch.all(cex >= lb[0] - 1e-9) and torch.all(cex <= ub[0] + 1e-9)
            assert int(net(cex[None]).argmax()) != label or out.min_margin <= 0
        else:
            assert out.min_margin <= truth + 1e-6  # proven lower bound never above the truth
    assert agree["certified"] >= 2 and agree["falsified"] >= 2  # both verdicts were exercised


def test_milp_certifies_from_the_proven_bound_never_within_the_gap(monkeypatch):
    """HiGHS stops at a relative gap of 1e-4: its reported optimum can be positive while the
    true minimum lies in (dual bound, 0). A margin counts as certified only when the proven
    (dual) bound is positive, and the certified margin is that bound."""
    import lit_cert.certify.milp as milp_module

    net = tiny_relu_net((2, 10, 8, 3), seed=0)
    x = torch.tensor([[0.3, 0.6]], dtype=torch.float64)
    label = int(net(x).argmax())
    lb, ub = x - 0.05, x + 0.05
    rows = np.delete(margin_spec(torch.tensor([label]), 3, torch.float64)[0].numpy(), label, axis=0)
    args = (dense_affine_blocks(net, (2,)), lb[0].numpy(), ub[0].numpy(), pre_bounds_for(net, lb, ub), rows, 20)
    honest = verify_milp(*args)
    assert honest.status == "certified" and honest.min_margin > 0
    real = milp_module.solve_milp
    consts = iter([float(r @ args[0][-1][1]) for r in rows])

    def straddling(model, obj, time_limit):  # each row: found margin +1e-5, proven bound -1e-5 (a gap around 0)
        res, const = real(model, obj, time_limit), next(consts)
        res.fun, res.mip_dual_bound = -const + 1e-5, -const - 1e-5
        return res

    monkeypatch.setattr(milp_module, "solve_milp", straddling)
    out = verify_milp(*args)
    assert out.status == "unknown" and "within the MIP gap" in out.reason

    def looser(model, obj, time_limit):  # the true optimum with a looser, still positive proven bound
        res = real(model, obj, time_limit)
        res.mip_dual_bound = res.fun - 0.5 * honest.min_margin
        return res

    monkeypatch.setattr(milp_module, "solve_milp", looser)
    out = verify_milp(*args)
    assert out.status == "certified" and out.min_margin == pytest.approx(0.5 * honest.min_margin, rel=1e-6)


def test_dense_blocks_reproduce_the_network():
    from lit_cert.data import DataInfo
    from lit_cert.models import CONV

    net = CONV(width=0.25).build(DataInfo("t", (1, 8, 8), 3, (0.5,), (0.25,))).eval()
    blocks = dense_affine_blocks(net, (1, 8, 8))
    x = torch.rand(4, 1, 8, 8)
    z = x.flatten(1).double().numpy()
    for i, (w, b) in enumerate(blocks):
        z = z @ w.T + b
        if i < len(blocks) - 1:
            z = np.maximum(z, 0)
    assert np.allclose(z, net(x).detach().double().numpy(), atol=1e-5)


def test_alpha_crown_at_least_crown_and_sound():
    improvement = 0.0
    for seed in range(3):
        net = tiny_relu_net((2, 12, 10, 3), seed=seed)
        torch.manual_seed(seed)
        x = torch.rand(3, 2, dtype=torch.float64)
        y = net(x).argmax(1)
        lb, ub = x - 0.3, x + 0.3
        spec = margin_spec(y, 3, torch.float64)
        crown = linear_bounds(net, lb, ub, spec, "crown", need_upper=False)[0]
        alpha = alpha_crown_margins(net, lb, ub, spec, steps=30)
        assert torch.all(alpha >= crown - 1e-9)
        improvement += (alpha - crown).sum().item()
        for b in range(3):
            for i in range(3):
                if i != int(y[b]):
                    exact = min_linear_objective(net, lb[b].numpy(), ub[b].numpy(), spec[b, i].numpy())
                    assert alpha[b, i].item() <= exact + 1e-7
    assert improvement > 0  # the optimisation does tighten the bounds


def test_cascade_never_certifies_a_sample_with_a_counterexample():
    statuses = []
    for seed in range(4):
        net = tiny_relu_net((2, 10, 8, 3), seed=seed).float()
        torch.manual_seed(seed)
        x = torch.rand(16, 2)
        y = net(x).argmax(1)
        y[:2] = (y[:2] + 1) % 3  # two misclassified samples
        res = Cascade(net, CascadeConfig(eps=0.1, milp=MILPSettings(timeout=10))).run(x, y, list(range(16)))
        for r in res:
            statuses.append(r.status)
            if r.status == "certified":
                assert grid_min_margins(net.double(), x[r.index].double(), 0.1, r.label) > -1e-6
                net.float()
            assert r.status in ("certified", "falsified", "misclassified", "unknown")
        assert [r.status for r in res[:2]] == ["misclassified", "misclassified"]
    assert "certified" in statuses and "falsified" in statuses
    # the complete stage decides every sample of these tiny networks
    assert "unknown" not in statuses


def test_the_attack_runs_only_on_what_ibp_leaves_open(monkeypatch):
    """IBP goes before PGD: a sample IBP certifies is never attacked (it cannot be falsified),
    and the samples falsified and certified are those of the attack and IBP run on their own."""
    from lit_cert.certify import cascade as cascade_module

    net = tiny_relu_net((2, 12, 10, 3), seed=3).float()
    torch.manual_seed(0)
    x = torch.rand(40, 2)
    y = net(x).argmax(1)
    attacked = []
    real = cascade_module.pgd_attack

    def counting(model, xs, *a, **k):
        attacked.append(len(xs))
        return real(model, xs, *a, **k)

    monkeypatch.setattr(cascade_module, "pgd_attack", counting)
    both = Cascade(net, CascadeConfig(eps=0.05, stages=("pgd", "ibp"))).run(x, y, list(range(40)))
    by_ibp = {v.index for v in both if v.stage == "ibp"}
    assert 0 < len(by_ibp) < 40 and attacked[0] == 40 - len(by_ibp)
    assert all("pgd" not in v.seconds for v in both if v.index in by_ibp)
    alone = Cascade(net, CascadeConfig(eps=0.05, stages=("ibp",))).run(x, y, list(range(40)))
    assert {v.index for v in alone if v.status == "certified"} == by_ibp
    falsified = {v.index for v in both if v.status == "falsified"}
    assert falsified and not falsified & by_ibp
    # each of the 3 restarts attacks only what the earlier ones left: the last one at least the open samples
    still_open = sum(v.status == "unknown" for v in both)
    assert len(attacked) <= 3 and attacked[1:] and attacked[1] < attacked[0] and attacked[-1] >= still_open
    assert all(b <= a for a, b in zip(attacked, attacked[1:]))


def interrupt_cascade_run(monkeypatch, at_call: int):
    """Make the ``at_call``-th Cascade.run raise KeyboardInterrupt (a user's Ctrl-C between
    shards); returns the function that puts the real run back."""
    from lit_cert.certify import cascade as cascade_module

    original, calls = cascade_module.Cascade.run, {"n": 0}

    def interrupted(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == at_call:
            raise KeyboardInterrupt
        return original(self, *a, **k)

    monkeypatch.setattr(cascade_module.Cascade, "run", interrupted)
    return lambda: monkeypatch.setattr(cascade_module.Cascade, "run", original)


def test_cascade_stages_share_the_intermediate_bounds_of_a_box(monkeypatch):
    """alpha-CROWN and the BaB root start from the CROWN stage's intermediate bounds of the same
    box instead of recomputing them: the same verdicts and margins as with the sharing off, and
    the CROWN-bounded layers are computed once per sample."""
    import lit_cert.bounds.backsub as backsub
    import lit_cert.certify.cascade as cascade_mod

    net = tiny_relu_net((4, 12, 10, 8, 3), seed=3).float()
    torch.manual_seed(0)
    x = torch.rand(12, 4)
    y = net(x).argmax(1)
    stages = ("crown", "alpha-crown", "bab")
    calls = []
    original = backsub.LinearBounds._compute_input_bounds

    def counted(self, idx):
        calls.append(idx)
        return original(self, idx)

    monkeypatch.setattr(backsub.LinearBounds, "_compute_input_bounds", counted)
    shared = Cascade(net, CascadeConfig(eps=0.08, stages=stages)).run(x, y, list(range(12)))
    n_shared = len(calls)
    calls.clear()
    monkeypatch.setattr(cascade_mod, "shared_intermediate_bounds", contextlib.nullcontext)
    alone = Cascade(net, CascadeConfig(eps=0.08, stages=stages)).run(x, y, list(range(12)))
    assert [(v.status, v.stage) for v in shared] == [(v.status, v.stage) for v in alone]
    assert {v.stage for v in shared} >= {"crown", "bab"}  # samples went on past CROWN, through alpha-CROWN to BaB
    for u, v in zip(shared, alone):
        if u.margin is not None:
            assert u.margin == pytest.approx(v.margin, abs=1e-6)
    assert n_shared < len(calls), (n_shared, len(calls))
    # alpha-CROWN computes no intermediate bound the CROWN stage already has (the CROWN stage
    # passes its rule resolved, alpha-CROWN by name: the same rule)
    monkeypatch.setattr(cascade_mod, "shared_intermediate_bounds", backsub.shared_intermediate_bounds)
    counts = []
    for stages in (("crown",), ("crown", "alpha-crown")):
        calls.clear()
        Cascade(net, CascadeConfig(eps=0.08, stages=stages)).run(x, y, list(range(12)))
        counts.append(len(calls))
    assert counts[0] == counts[1] > 0, counts


def test_crown_stages_in_memory_sized_chunks_give_the_same_verdicts():
    """With a tiny memory budget CROWN / alpha-CROWN bound one sample at a time: same margins and
    verdicts as one batch; the chunk size follows hidden neurons x widest activation."""
    net = tiny_relu_net((4, 12, 10, 3), seed=3).float()
    torch.manual_seed(0)
    x = torch.rand(12, 4)
    y = net(x).argmax(1)
    stages = ("crown", "alpha-crown")
    whole = Cascade(net, CascadeConfig(eps=0.05, stages=stages))
    tiny = Cascade(net, CascadeConfig(eps=0.05, stages=stages, memory_gb=1e-9))
    assert whole.samples_per_chunk((4,)) > 12 and tiny.samples_per_chunk((4,)) == 1
    # the neuron count from one forward pass equals the dense MILP blocks' (which big CNNs cannot afford)
    assert whole.hidden_neurons((4,)) == sum(w.shape[0] for w, _ in whole.blocks((4,))[:-1]) == 22
    a, b = whole.run(x, y, list(range(12))), tiny.run(x, y, list(range(12)))
    assert [(v.status, v.stage) for v in a] == [(v.status, v.stage) for v in b]
    assert any(v.status == "certified" for v in a) and any(v.status == "unknown" for v in a)
    for u, v in zip(a, b):
        if u.margin is not None:
            assert v.margin == pytest.approx(u.margin, abs=1e-5)
    # 2 * 4 bytes * hidden (22) * widest (12): 2112 bytes per sample
    assert Cascade(net, CascadeConfig(eps=0.05, memory_gb=2112 * 5 / 2**30)).samples_per_chunk((4,)) == 5


# --------------------------------------------------------------------------- end to end
def test_certify_command_resumes_to_the_same_summary(workdir, monkeypatch, capsys):
    ckpt = trained_run(workdir)
    common = ["--ckpt", str(ckpt), "--limit", "40", "--shard_size", "10", "--batch_size", "10", "--timeout", "10", "--no_progress"]
    full = main(["certify", *common, "--out", str(workdir / "full")])
    assert "certified accuracy" in capsys.readouterr().out
    assert full["samples"] == 40
    assert full["certified_accuracy"] <= full["pgd_accuracy"] <= full["natural_accuracy"]

    undo = interrupt_cascade_run(monkeypatch, at_call=3)
    with pytest.raises(SystemExit) as stop:  # Ctrl-C: one line, status 130, finished shards kept
        main(["certify", *common, "--out", str(workdir / "resumed")])
    err = capsys.readouterr().err
    assert stop.value.code == 130 and "interrupted (Ctrl-C)" in err and "Traceback" not in err
    assert len(list((workdir / "resumed" / "shards").glob("*.json"))) == 2
    undo()
    resumed = main(["certify", *common, "--out", str(workdir / "resumed")])
    drop = lambda s: {k: v for k, v in s.items() if "second" not in k}  # noqa: E731 - timings differ
    assert drop(resumed) | {"ckpt": None} == drop(full) | {"ckpt": None}


def test_certify_is_configured_like_fit(workdir, capsys):
    """One nested dataclass parsed by jsonargparse: --print_config, --config FILE with nested keys,
    dotted flags, and the earlier flat flags translated to them."""
    from lit_cert.commands.certify import parse

    ckpt = str(trained_run(workdir))
    with pytest.raises(SystemExit) as ex:
        main(["certify", "--ckpt", ckpt, "--bab.timeout", "7", "--print_config"])
    printed = capsys.readouterr().out
    assert ex.value.code == 0 and "bab:" in printed and "timeout: 7.0" in printed and "milp:" in printed
    (workdir / "certify.yaml").write_text("bab: {timeout: 5, steps: 3}\nmilp: {timeout: 2}\nstages: [pgd, ibp, bab]\nlimit: 4\n")
    cmd = parse(["--ckpt", ckpt, "--config", str(workdir / "certify.yaml"), "--bab.batch=8"])
    assert (cmd.bab.timeout, cmd.bab.steps, cmd.bab.batch, cmd.milp.timeout, cmd.limit) == (5.0, 3, 8, 2.0, 4)
    assert cmd.stages == ("ibp", "pgd", "bab")  # cascade order, whatever order they are listed in
    legacy = parse(["--ckpt", ckpt, "--timeout", "3", "--bab_timeout", "4", "--bab_steps", "2", "--alpha_steps", "5",
                    "--stages", "ibp,pgd", "--no_progress", "--config", str(Path(ckpt).parent.parent / "config.yaml")])
    assert (legacy.milp.timeout, legacy.bab.timeout, legacy.bab.steps, legacy.alpha.steps) == (3.0, 4.0, 2, 5)
    assert legacy.stages == ("ibp", "pgd") and legacy.progress is False and legacy.run_config.endswith("config.yaml")
    # the legacy names are certify's alone: export's own --timeout is its own, and a run config still translates
    from lit_cert.commands.export import parse as parse_export

    exported = parse_export(["--ckpt", ckpt, "--out", str(workdir / "e"), "--timeout", "5",
                             "--config", str(Path(ckpt).parent.parent / "config.yaml")])
    assert exported.timeout == 5.0 and exported.run_config.endswith("config.yaml")
    # the settings that guard a resume are the dataclass: a changed nested value is refused
    main(["certify", "--ckpt", ckpt, "--limit", "8", "--stages", "ibp", "--out", str(workdir / "c"), "--progress=false"])
    with pytest.raises(SystemExit) as ex:
        main(["certify", "--ckpt", ckpt, "--limit", "8", "--stages", "ibp", "--out", str(workdir / "c"), "--pgd.steps=3",
              "--progress=false"])
    assert ex.value.code == 2 and "holds results of other settings" in capsys.readouterr().err


def test_certify_the_training_split(workdir):
    """Mao et al.'s Fig. 4 reports IBP-certified accuracy on the training set."""
    ckpt = trained_run(workdir)
    s = main(["certify", "--ckpt", str(ckpt), "--split", "train", "--stages", "ibp", "--limit", "20", "--no_progress",
              "--out", str(workdir / "train_cert")])
    assert s["split"] == "train" and s["samples"] == 20 and s["certified_accuracy"] <= s["natural_accuracy"]


def parse_vnnlib(text):
    lo = {int(i): float(v) for i, v in re.findall(r"\(assert \(>= X_(\d+) ([-0-9.e]+)\)\)", text)}
    hi = {int(i): float(v) for i, v in re.findall(r"\(assert \(<= X_(\d+) ([-0-9.e]+)\)\)", text)}
    disjuncts = re.findall(r"\(and \(>= Y_(\d+) Y_(\d+)\)\)", text)
    return lo, hi, disjuncts


def test_export_onnx_and_vnnlib(workdir):
    """The default export: the normalisation is in the VNN-LIB box, the ONNX input in normalised
    space; onnxruntime on the reference inputs gives the network's logits, and each box is the
    pixel eps-box mapped through the normalisation (containing it)."""
    import onnxruntime as ort

    from lit_cert.runs import load_run

    ckpt = trained_run(workdir)
    out = main(["export", "--ckpt", str(ckpt), "--out", str(workdir / "export"), "--limit", "3"])
    model, dm = load_run(str(ckpt))
    x = torch.stack([dm.test_set[i][0] for i in range(3)])
    ref = np.load(out / "reference_outputs.npz")
    assert np.array_equal(ref["pixels"], x.numpy())
    sess = ort.InferenceSession(str(out / "model.onnx"))
    onnx_out = sess.run(None, {"input": ref["inputs"]})[0]
    assert np.allclose(onnx_out, model.net(x).detach().numpy(), atol=1e-5)
    assert np.allclose(ref["logits"], model.net(x).detach().numpy(), atol=1e-6)
    mean, std = model.net[0].mean.flatten().double(), model.net[0].std.flatten().double()
    rows = (out / "instances.csv").read_text().split()
    assert len(rows) == 3 and rows[0].startswith("model.onnx,vnnlib/")
    for i, row in enumerate(rows):
        text = (out / row.split(",")[1]).read_text()
        assert "normalised input space" in text
        lo, hi, disj = parse_vnnlib(text)
        lb, ub = linf_box(x[i : i + 1].double(), model.eps_test)
        nlb, nub = ((lb - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)), ((ub - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1))
        assert len(lo) == len(hi) == x[i].numel()
        lo, hi = np.array([lo[j] for j in range(len(lo))]), np.array([hi[j] for j in range(len(hi))])
        assert np.allclose(lo, nlb.flatten().numpy(), atol=1e-6) and np.allclose(hi, nub.flatten().numpy(), atol=1e-6)
        assert (lo <= nlb.flatten().numpy()).all() and (hi >= nub.flatten().numpy()).all()  # outward
        label = int(dm.test_set[i][1])
        assert sorted(int(a) for a, b in disj) == [j for j in range(model.num_classes) if j != label]
        assert all(int(b) == label for _, b in disj)
    # the normalisation kept in the graph instead: pixel inputs and pixel boxes
    out2 = main(["export", "--ckpt", str(ckpt), "--out", str(workdir / "export2"), "--limit", "1", "--normalisation", "constants"])
    sess = ort.InferenceSession(str(out2 / "model.onnx"))
    assert np.allclose(sess.run(None, {"input": x[:1].numpy()})[0], model.net(x[:1]).detach().numpy(), atol=1e-5)
    lo, hi, _ = parse_vnnlib((out2 / (out2 / "instances.csv").read_text().split()[0].split(",")[1]).read_text())
    lb, ub = linf_box(x[:1], model.eps_test)
    assert np.allclose([lo[j] for j in range(len(lo))], lb.flatten().numpy(), atol=1e-7)


@pytest.mark.parametrize("normalisation", ["box", "constants"])
def test_verifier_network_folds_batchnorm_exactly_and_has_no_batched_constants(tmp_path, normalisation):
    """A CNN with BatchNorm (random running statistics, eval mode) exported for VNN-COMP
    verifiers: no BatchNormalization node, only [C, 1, 1] constants in the normalisation, and
    onnxruntime gives the network's logits on the mapped inputs."""
    import onnx
    import onnxruntime as ort

    from lit_cert.certify.export import export_onnx, normalised_box, verifier_network
    from lit_cert.data import DataInfo
    from lit_cert.models import CNN3

    torch.manual_seed(0)
    info = DataInfo(name="test", in_shape=(3, 12, 12), num_classes=10, mean=(0.4, 0.5, 0.6), std=(0.2, 0.25, 0.3))
    net = CNN3(width=0.5, bn=True).build(info)
    for m in net.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    net.eval()
    exported, stats = verifier_network(net, normalisation)
    assert (stats is not None) == (normalisation == "box")
    export_onnx(exported, info.in_shape, tmp_path / "m.onnx")
    graph = onnx.load(str(tmp_path / "m.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert "BatchNormalization" not in ops and ops <= {"Conv", "Relu", "Flatten", "Gemm", "Sub", "Div", "Constant", "Reshape"}
    if normalisation == "box":
        assert not {"Sub", "Div"} & ops
    shapes = [tuple(i.dims) for i in graph.initializer if len(i.dims) >= 3 and i.dims[1:] == [1, 1]]
    assert all(s[0] == 3 for s in shapes)  # [C, 1, 1]: no leading batch axis of 1
    x = torch.rand(4, *info.in_shape)
    inputs = x if stats is None else (x.double() - stats[0].view(1, -1, 1, 1)) / stats[1].view(1, -1, 1, 1)
    got = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"input": inputs.float().numpy()})[0]
    assert np.allclose(got, net(x).detach().numpy(), atol=2e-5)
    # the box maps onto the image of the pixel box, outward
    lb, ub = x[:1].double() - 0.05, x[:1].double() + 0.05
    nlb, nub = normalised_box(lb, ub, stats)
    if stats is not None:
        assert (nlb * stats[1].view(1, -1, 1, 1) + stats[0].view(1, -1, 1, 1) <= lb + 1e-15).all()
        assert (nub * stats[1].view(1, -1, 1, 1) + stats[0].view(1, -1, 1, 1) >= ub - 1e-15).all()


def test_a_batchnorm_after_a_relu_is_refused_for_export():
    from lit_cert.certify.export import verifier_network

    net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 2)).eval()
    with pytest.raises(ValueError, match="cannot fold BatchNorm1d into ReLU"):
        verifier_network(net)


def test_near_zero_float32_certificates_are_rechecked_in_float64(monkeypatch):
    """float32 engines round to nearest: a bound can sit a few ulps on the wrong side. A certificate
    whose margin is near 0 is recomputed in float64 and kept only if it holds there. Here the
    float32 engine is made to err by +2e-7 on a margin whose true minimum is -1e-7."""
    from lit_cert.certify.cascade import summarize

    net = nn.Sequential(nn.Flatten(), nn.Linear(2, 2))
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 0.0]]))
        net[1].bias.zero_()
    x = torch.tensor([[0.5, 0.5], [0.9, 0.5]])
    eps = 0.25
    # the margin of class 0 over class 1 is x0 - 0.25 - 1e-7: over sample 0's box (x0 >= 0.25) its
    # minimum is -1e-7 (not robust); over sample 1's (x0 >= 0.65) it is ~0.4
    with torch.no_grad():
        net[1].bias.copy_(torch.tensor([-0.25 - 1e-7, 0.0]))
    import dataclasses

    from lit_cert.bounds.registry import BOUND_METHODS

    real = BOUND_METHODS["ibp"].compute

    def sloppy(net_, lb, ub, spec, trace=None, **options):
        out = real(net_, lb, ub, spec, trace, **options)
        return out + 2e-7 if lb.dtype == torch.float32 else out

    monkeypatch.setitem(BOUND_METHODS, "ibp", dataclasses.replace(BOUND_METHODS["ibp"], compute=sloppy))
    y = torch.tensor([0, 0])
    res = Cascade(net, CascadeConfig(eps=eps, stages=("ibp",))).run(x, y, [0, 1])
    assert res[0].status == "unknown" and res[0].details["float64_recheck"]["held"] is False
    assert res[0].details["float64_recheck"]["float64_margin"] < 0 < res[0].details["float64_recheck"]["float32_margin"]
    assert res[1].status == "certified" and "float64_recheck" not in res[1].details  # margin 0.4: far from 0
    summary = summarize(res, ("ibp",))
    assert summary["float64_rechecks"] == 1 and summary["float64_rechecks_failed"] == 1


# --------------------------------------------------------------------------- resume and export guards
def test_certify_refuses_to_resume_with_a_changed_checkpoint(workdir, monkeypatch, capsys):
    """``last.ckpt`` is overwritten every epoch: resuming into shards of the old contents would
    blend two models into one summary. The settings record the content hash."""
    ckpt = trained_run(workdir)
    common = ["--ckpt", str(ckpt), "--limit", "20", "--shard_size", "10", "--batch_size", "10",
              "--stages", "pgd,ibp,crown", "--no_progress", "--out", str(workdir / "cert")]
    undo = interrupt_cascade_run(monkeypatch, at_call=2)
    with pytest.raises(SystemExit):
        main(["certify", *common])
    undo()
    # the checkpoint changes under the same path (training went on)
    state = torch.load(ckpt, weights_only=True)
    state["state_dict"] = {k: v + 0.5 if v.is_floating_point() else v for k, v in state["state_dict"].items()}
    torch.save(state, ckpt)
    with pytest.raises(SystemExit) as ex:
        main(["certify", *common])
    err = capsys.readouterr().err
    assert ex.value.code == 2 and "ckpt_sha256" in err and "Resuming would mix them" in err
    # same settings and contents: resumes; other eps: refused as well
    shutil.rmtree(workdir / "cert")
    main(["certify", *common])
    with pytest.raises(SystemExit):
        main(["certify", *common, "--eps", "0.05"])
    assert "eps" in capsys.readouterr().err


def test_vnnlib_refuses_an_inverted_box():
    from lit_cert.certify.export import vnnlib_text

    with pytest.raises(ValueError, match="lower > upper"):
        vnnlib_text(torch.ones(1, 2), torch.zeros(1, 2), 0, 3)


# --------------------------------------------------------------------------- many workers, evidence
@pytest.mark.slow
def test_two_workers_share_one_certify_run(workdir):
    """Two processes started together, --worker 1/2 and 2/2, into one folder: each computes its
    half of the shards, the last summary covers all of them and equals one worker's run; a rerun
    of either worker skips everything."""
    import json
    import os
    import subprocess
    import sys

    ckpt = str(trained_run(workdir))
    common = ["-m", "lit_cert", "certify", "--ckpt", ckpt, "--limit", "40", "--shard_size", "10", "--batch_size", "10",
              "--stages", "pgd,ibp,crown", "--progress=false"]
    env = {**os.environ, "WANDB_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, *common, "--out", str(workdir / "shared"), "--worker", f"{k}/2"], cwd=workdir, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for k in (1, 2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    shards = sorted(p.name for p in (workdir / "shared" / "shards").glob("shard_*.json"))
    assert shards == [f"shard_{i:05d}.json" for i in range(4)]
    merged = main(["certify", "--ckpt", ckpt, "--limit", "40", "--shard_size", "10", "--batch_size", "10", "--stages", "pgd,ibp,crown",
                   "--progress=false", "--out", str(workdir / "shared"), "--worker", "2/2"])  # a rerun: nothing left to do
    single = main(["certify", "--ckpt", ckpt, "--limit", "40", "--shard_size", "10", "--batch_size", "10", "--stages", "pgd,ibp,crown",
                   "--progress=false", "--out", str(workdir / "single")])
    assert merged["complete"] and merged["shards"] == {"done": 4, "total": 4}
    drop = lambda s: {k: v for k, v in s.items() if "second" not in k and k != "ckpt"}  # noqa: E731
    assert drop(merged) == drop(single)
    assert json.loads((workdir / "shared" / "summary.json").read_text())["complete"]


def test_worker_slices_and_environments():
    from lit_cert.certify.shards import parse_worker
    from lit_cert.errors import ConfigError

    assert parse_worker("2/3") == (2, 3) and parse_worker("auto", {}) == (1, 1)
    assert parse_worker("auto", {"RANK": "3", "WORLD_SIZE": "4"}) == (4, 4)  # torchrun
    assert parse_worker("auto", {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_MIN": "5", "SLURM_ARRAY_TASK_COUNT": "4"}) == (3, 4)
    for bad in ("0/2", "3/2", "x"):
        with pytest.raises(ConfigError, match="--worker"):
            parse_worker(bad)


def test_every_verdict_can_be_rechecked_from_its_evidence():
    """A falsified sample keeps its counterexample (inside the exact ball, misclassified), a
    certified one its stage and margin: check_verdict confirms each without the cascade, and
    refuses a tampered counterexample."""
    from lit_cert.certify import check_verdict

    seen, res = set(), []
    for seed in range(6):
        net = tiny_relu_net((2, 10, 8, 3), seed=seed).float()
        torch.manual_seed(seed)
        x = torch.rand(16, 2)
        y = net(x).argmax(1)
        y[:2] = (y[:2] + 1) % 3
        res = Cascade(net, CascadeConfig(eps=0.15, milp=MILPSettings(timeout=10))).run(x, y, list(range(16)))
        for v in res:
            if v.status == "falsified":
                assert v.counterexample is not None and len(v.counterexample) == 2
            assert check_verdict(net, x[v.index], int(y[v.index]), 0.15, v), v
        seen |= {v.status for v in res}
        if "falsified" in {v.status for v in res}:
            break
    assert {"certified", "falsified", "misclassified"} <= seen
    falsified = next(v for v in res if v.status == "falsified")
    falsified.counterexample = (x[falsified.index] + 0.5).tolist()  # outside the ball
    assert not check_verdict(net, x[falsified.index], int(y[falsified.index]), 0.15, falsified)
