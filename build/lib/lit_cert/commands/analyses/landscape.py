"""``analyze landscape``: bounds along a parameter direction, per relaxation (seed 002 Sec. 4.1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Optional

import numpy as np

from lit_cert.commands.analyses.common import Output
from lit_cert.commands.args import DeviceName, resolve_device
from lit_cert.errors import ConfigError
from lit_cert.options import AnyFloat, ExistingFile, NonNegativeInt, PositiveFloat, Radius, Range
from lit_cert.reports import save_csv, save_plot

NAME = "landscape"


@dataclass
class Settings(Output):
    """Bounds along a parameter direction, per relaxation: the paradox paper's Sec. 4.1 example,
    or (``ckpt``) a trained net along each bound's gradient at one sample.

    Args:
        ckpt: a trained run's checkpoint (default: the paper's three-layer example).
        run_config: the run's config.yaml (default: next to checkpoints/).
        split: the split of the sample.
        index: the sample's index in the split.
        eps: box radius (default: the model's eps_test).
        output: which output's lower bound (0 .. classes - 1).
        w: w of the built-in example (no ckpt).
        delta: the line runs over [-delta, delta].
        steps: points on the line (at least 3).
        device: auto, cpu, cuda or cuda:N.
        allow_other_data: use data other than the checkpoint was trained on.
    """

    ckpt: Annotated[Optional[str], ExistingFile()] = None
    run_config: Annotated[Optional[str], ExistingFile()] = None
    split: Literal["test", "val", "train"] = "test"
    index: NonNegativeInt = 0
    eps: Optional[Radius] = None
    output: NonNegativeInt = 0
    w: AnyFloat = 0.5
    delta: PositiveFloat = 0.7
    steps: Annotated[int, Range(3)] = 401
    device: DeviceName = "auto"
    allow_other_data: bool = False



def run(args) -> list[dict]:
    from lit_cert.analysis.landscape import RELAXATIONS, bound_along, refine_jumps

    if args.ckpt:
        from lit_cert.bounds.region import linf_box
        from lit_cert.runs import load_run, split_dataset

        model, dm = load_run(args.ckpt, args.run_config, allow_other_data=args.allow_other_data, split=args.split)
        device = resolve_device(args.device)
        net = model.net.eval().to(device)
        dataset = split_dataset(dm, args.split)
        if not 0 <= args.index < len(dataset):
            raise ConfigError(f"--index {args.index} is outside the {args.split} split ({len(dataset)} samples)")
        x = dataset[args.index][0].unsqueeze(0).to(device)
        lb, ub = linf_box(x, model.eps_test if args.eps is None else args.eps)
    else:  # the paradox paper's three-layer example, see lit_cert.analysis.landscape
        from lit_cert.analysis.examples import paradox_example

        net, lb, ub = paradox_example(args.w)
    import torch

    with torch.no_grad():
        outputs = net(lb).shape[1]
    if args.output >= outputs:
        raise ConfigError(f"--output: the network has {outputs} outputs (0..{outputs - 1}), got {args.output}")

    deltas = np.linspace(-args.delta, args.delta, args.steps)
    direction = None
    if not args.ckpt:  # the example's parameter is w, the first neuron's bias
        direction = [torch.zeros_like(net[0].weight), torch.tensor([1.0, 0.0], dtype=torch.float64)]
    rows, series = [], {}
    for relaxation in RELAXATIONS:
        bound = bound_along(net, lb, ub, args.output, relaxation, direction)
        values = np.array([bound(float(d)) for d in deltas])
        jumps = refine_jumps(bound, deltas, values)
        print(f"lit_cert analyze landscape: {relaxation:<6} " + (", ".join(f"jump {j:+.3g} at delta={d:.3g}" for d, j in jumps) or "continuous"))
        rows += [{"relaxation": relaxation, "delta": float(d), "lower_bound": float(v)} for d, v in zip(deltas, values)]
        series[relaxation] = (deltas, values, "-")
    save_csv(args.out / "landscape.csv", rows)
    xlabel = "delta along each bound's gradient" if args.ckpt else f"delta added to w (w = {args.w:g} at 0)"
    save_plot(args.out / "landscape.png", series, xlabel, f"lower bound of output {args.output}")
    return rows
