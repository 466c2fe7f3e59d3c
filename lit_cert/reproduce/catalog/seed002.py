"""Seed 002 (the paradox of certified training): Tables 2, 14, the Fashion-MNIST Box rows of App.
I (Tables 10/11), CROWN-0 (App. K.4), and the continuity, sensitivity and optimisation-dynamics
analyses (Secs. 4.1, 4.2, 4.4)."""

from __future__ import annotations

from lit_cert.reproduce.spec import Claim, Column, Experiment, Measure, PaperNumber, Row, Scale

PAPER = "seed 002"
FILE = "002_46c4a2b04d3c2ad8.txt"
CPU = "this 2-core machine, one thread per run"
GPU = "one GPU"

NATURAL = Column("natural", "natural %", 100, 2)

# --------------------------------------------------------------------------- Table 14
TABLE14_ROWS = (("Box", "small_box", "ibp", 72.27, 49.12), ("hBox", "small_hbox", "hbox", 68.85, 50.29),
                ("CROWN-IBP (R)", "small_crown_ibp_r", "crown-ibp", 76.37, 46.88),
                ("DeepZ", "small_deepz", "deepz", 75.78, 50.49), ("CROWN", "small_crown", "crown", 75.59, 44.14),
                ("Triangle", "small_triangle", "triangle", 73.34, 52.44),
                ("Parallelogram", "small_parallelogram", "parallelogram", 72.75, 52.25))

TABLE14 = Experiment(
    id="seed002-table14", paper=PAPER, seed_file=FILE, target="Table 14 (App. K.3)",
    title="Every relaxation, Triangle and Parallelogram included, on one small problem",
    columns=(NATURAL, Column("certified_own", "CR % (own relaxation)", 100, 2),
             Column("certified_triangle", "CR % (Triangle)", 100, 2), Column("certified_crown", "CR % (CROWN)", 100, 2),
             Column("tightness", "tightness", 1, 3)),
    paper_numbers=tuple(p for name, _, _, acc, cr in TABLE14_ROWS for p in (
        PaperNumber(name, "natural", acc, f"{name} {acc:.2f} {cr:.2f}"),
        PaperNumber(name, "certified_own", cr, f"{name} {acc:.2f} {cr:.2f}"))),
    claims=tuple(Claim(f"{new} certifies more than {old} after training", "Sec. 5.2, Fig. 7 and Table 14",
                       "certified_own", order=(old, new))
                 for new in ("Triangle", "Parallelogram") for old in ("Box", "hBox", "CROWN-IBP (R)", "DeepZ", "CROWN")),
    notes=("Table 14 has no tightness column, and the paper draws no conclusion on it here; the column is ours.",),
    scales={"cpu": Scale(
        "cpu", tuple(Row(name, f"configs/fashion_mnist/{config}.yaml", values={"own": own}) for name, config, own, _, _ in TABLE14_ROWS),
        (Measure("certified", {"relaxations": ["own", "crown", "triangle"], "limit": 2000}), Measure("tightness", {"limit": 2000})),
        seeds=3, minutes_per_run=1.5, hardware=CPU,
        cost_source="measured: ~20 s training per run; Triangle certification ~1 min (2026-11)",
        differences=("Fashion-MNIST average-pooled to 4x4 (16 inputs; the paper: 16 PCA features of MNIST, whose eps "
                     "0.3 has no pixel equivalent), 1024 training images, eps 0.1; the paper's 2x20 FC, batch 64, "
                     "10 warm-up + 50 ramp + 50 epochs, the same hyper-parameters for all; the first 2000 test images",
                     "Triangle and Parallelogram trained through our LP layer, not cvxpylayers"))},
)

# --------------------------------------------------------------------------- App. I, Box rows on Fashion-MNIST
APPI_BOX = Experiment(
    id="seed002-appI-box", paper=PAPER, seed_file=FILE, target="Tables 10 and 11 (App. I), Box at eps_test 0.1",
    title="Box (IBP) training of the FC and CONV networks on Fashion-MNIST, full length",
    columns=(Column("natural", "natural %", 100, 2), Column("certified_ibp", "IBP-certified %", 100, 2)),
    paper_numbers=(
        PaperNumber("CONV Box", "natural", 80.3, "Box 80.3 74.1 72.7 76.5 65.5 61.4 76.5 58.8 52.0"),
        PaperNumber("CONV Box", "certified_ibp", 72.7, "Box 80.3 74.1 72.7 76.5 65.5 61.4 76.5 58.8 52.0"),
        PaperNumber("FC Box", "natural", 79.2, "Box 79.2 71.4 67.9 73.7 65.2 57.9 54.8 46.6 40.4"),
        PaperNumber("FC Box", "certified_ibp", 67.9, "Box 79.2 71.4 67.9 73.7 65.2 57.9 54.8 46.6 40.4"),
    ),
    scales={s: Scale(
        s, (Row("CONV Box", "configs/fashion_mnist/conv_box_eps0.1.yaml"), Row("FC Box", "configs/fashion_mnist/fc_box_eps0.1.yaml")),
        (Measure("certified", {"relaxations": ["ibp"]}),), seeds=1 if s == "cpu" else 3,
        minutes_per_run=32.0 if s == "cpu" else 10.0, hardware=CPU if s == "cpu" else GPU,
        cost_source="measured: 34 / 29 min on one thread (2026-11)" if s == "cpu" else "estimate, not measured",
        differences=("Table 6's eps_test 0.1 settings, all 60k training images, the last checkpoint; one seed (the "
                     "paper's Table 13 gives Box's spread over 10 seeds at eps 0.3)",)) for s in ("cpu", "paper")},
)

# --------------------------------------------------------------------------- Table 2 (paper scale)
T2_RELAXATIONS = (("Box", "box", "ibp"), ("hBox", "hbox", "hbox"), ("CROWN-IBP (R)", "crown_ibp_r", "crown-ibp"),
                  ("DeepZ", "deepz", "deepz"), ("CROWN", "crown", "crown"))
T2_PAPER = {"Box": (74.0, 86.8, 40.4, 52.0), "hBox": (57.0, 83.7, 39.6, 47.1), "CROWN-IBP (R)": (70.5, 75.4, 41.1, 40.0),
            "DeepZ": (64.2, 69.8, 35.0, 34.0), "CROWN": (57.3, 70.2, 30.2, 31.5)}
T2_COLUMNS = (("MNIST", "FC"), ("MNIST", "CONV"), ("FashionMNIST", "FC"), ("FashionMNIST", "CONV"))
T2_FOLDERS = {"MNIST": "mnist", "FashionMNIST": "fashion_mnist"}


def _t2_source(name: str) -> str:
    return " ".join(f"{v:.1f}" for v in T2_PAPER[name])


TABLE2 = Experiment(
    id="seed002-table2", paper=PAPER, seed_file=FILE, target="Table 2 (Sec. 5), MNIST and Fashion-MNIST at eps_test 0.3",
    title="Certified training with each convex relaxation: the tighter, the worse",
    columns=(Column("certified_own", "CR % (own relaxation)", 100, 1), Column("natural", "natural %", 100, 1)),
    paper_numbers=tuple(PaperNumber(f"{data} {net} {name}", "certified_own", T2_PAPER[name][i], _t2_source(name))
                        for name, _, _ in T2_RELAXATIONS for i, (data, net) in enumerate(T2_COLUMNS)),
    claims=tuple(Claim(f"{data} {net}: Box certifies more than CROWN", "Sec. 5, Table 2", "certified_own",
                       order=(f"{data} {net} CROWN", f"{data} {net} Box")) for data, net in T2_COLUMNS),
    scales={"paper": Scale(
        "paper", tuple(Row(f"{data} {net} {name}", f"configs/{T2_FOLDERS[data]}/{net.lower()}_{stem}_eps0.3.yaml",
                           values={"own": own}) for data, net in T2_COLUMNS for name, stem, own in T2_RELAXATIONS),
        (Measure("certified", {"relaxations": ["own"]}),), seeds=1, minutes_per_run=120.0, hardware=GPU,
        cost_source="estimate, not measured: 200 epochs; CROWN/DeepZ training several times IBP's",
        differences=("one seed per cell, as the paper (Table 6's settings for eps_test 0.3)",))},
)

# --------------------------------------------------------------------------- App. K.4, CROWN-0
SMALL_CROWN = "configs/fashion_mnist/small_crown.yaml"
K4_TRAIN = Experiment(
    id="seed002-k4-train", paper=PAPER, seed_file=FILE, target="App. K.4 (training)",
    title="Training with CROWN-0 gives no meaningful certified network",
    columns=(NATURAL, Column("certified_own", "certified % (own relaxation)", 100, 1),
             Column("certified_crown", "certified % (CROWN)", 100, 1)),
    claims=(Claim("CROWN-0 training certifies less than CROWN training", "App. K.4", "certified_own",
                  order=("CROWN-0", "CROWN")),
            Claim("CROWN-0 training is also less accurate", "App. K.4", "natural", order=("CROWN-0", "CROWN"))),
    scales={"cpu": Scale(
        "cpu", tuple(Row(name, SMALL_CROWN, (f"--model.relaxation={r}", f"--model.certifier={r}"), values={"own": r})
                     for name, r in (("CROWN", "crown"), ("CROWN-0", "crown-0"))),
        (Measure("certified", {"relaxations": ["own", "crown"], "limit": 1000, "eps": 0.1}),), seeds=3,
        minutes_per_run=1.5, hardware=CPU, cost_source="estimate: ~35 min for the whole experiment (2026-12)",
        differences=("the small 2x20 FC problem of App. K.3 (Fashion-MNIST PCA-16), not the paper's networks",))},
)

K4_CR = Experiment(
    id="seed002-k4-crauc", paper=PAPER, seed_file=FILE, target="App. K.4 (CR-AUC)",
    title="CROWN-0 is continuous but so loose that its CR-AUC is about 0",
    columns=(Column("cr_auc_ibp", "CR-AUC IBP", 1, 3), Column("cr_auc_crown", "CR-AUC CROWN", 1, 3),
             Column("cr_auc_crown-0", "CR-AUC CROWN-0", 1, 3), Column("cert@0_crown-0", "CROWN-0 certified at eps 0", 1, 3)),
    claims=(Claim("CROWN-0's CR-AUC is about 0 (at most 0.05)", "App. K.4", "cr_auc_crown-0", at_most=("IBP CONV", 0.05)),
            Claim("CROWN-0 is far looser than CROWN", "App. K.4", "cr_auc",
                  order=(("IBP CONV", "cr_auc_crown-0"), ("IBP CONV", "cr_auc_crown")))),
    scales={"cpu": Scale(
        "cpu", (Row("IBP CONV", "configs/quickstart.yaml", ("--test_after_fit=false",)),),
        (Measure("cr_curve", {"limit": 200, "points": 11, "eps_max": 0.2, "certifiers": ["ibp", "crown", "crown-0"]}),),
        seeds=3, minutes_per_run=1.6, hardware=CPU, cost_source="measured: 69 s training, 27 s curves (2026-12-07)",
        differences=("one IBP-trained paradox CONV (5 epochs, Fashion-MNIST), 200 test images, eps 0 to 0.2",))},
)

# --------------------------------------------------------------------------- the analyses
CONTINUITY = Experiment(
    id="seed002-continuity", paper=PAPER, seed_file=FILE, target="Sec. 4.1, Fig. 4",
    title="Continuity: the lower bound along a line in weight space",
    columns=tuple(Column(f"jump_{r}", f"largest step, {r}", 1, 3) for r in ("ibp", "deepz", "crown", "hbox")),
    claims=(Claim("CROWN's bound jumps where DeepZ's is continuous", "Sec. 4.1", "jump",
                  order=(("example", "jump_deepz"), ("example", "jump_crown"))),
            Claim("hBox's bound jumps where Box's is continuous", "Sec. 4.1", "jump",
                  order=(("example", "jump_ibp"), ("example", "jump_hbox")))),
    scales={"cpu": Scale(
        "cpu", (Row("example", analysis=("landscape",)),),
        (Measure("analysis", {"extract": {f"jump_{r}": {"column": "lower_bound", "where": {"relaxation": r},
                                                        "reduce": "largest_step"} for r in ("ibp", "deepz", "crown", "hbox")}}),),
        seeds=1, minutes_per_run=0.5, hardware=CPU, cost_source="estimate: seconds", exact=True,
        differences=("the paper's example network (App. F style), its dense DeepZ and CROWN",))},
)

SENS_RELAXATIONS = ("ibp", "crown-ibp", "crown", "deepz")
SENSITIVITY = Experiment(
    id="seed002-sensitivity", paper=PAPER, seed_file=FILE, target="Sec. 4.2, Table 2's sensitivity column",
    title="Sensitivity measured exactly: the degree of each relaxation's bound",
    columns=tuple(Column(f"degree_{r}", f"largest degree, {r}", 1, 0) for r in SENS_RELAXATIONS)
    + (Column("above_paper", "cases above the paper's count", 1, 0),),
    claims=(Claim("Box is the least sensitive, then CROWN-IBP, then CROWN", "Sec. 4.2, Table 2", "degree",
                  order=(("exact", "degree_ibp"), ("exact", "degree_crown-ibp"), ("exact", "degree_crown"))),
            Claim("DeepZ is more sensitive than CROWN-IBP", "Sec. 4.2, Table 2", "degree",
                  order=(("exact", "degree_crown-ibp"), ("exact", "degree_deepz"))),
            Claim("no measured degree exceeds the paper's count", "Sec. 4.2", "above_paper", at_most=("exact", 0))),
    scales={"cpu": Scale(
        "cpu", (Row("exact", analysis=("sensitivity",)),),
        (Measure("analysis", {"extract": {
            **{f"degree_{r}": {"column": "measured_degree", "where": {"relaxation": r, "output": "True"}, "reduce": "max"}
               for r in SENS_RELAXATIONS},
            "above_paper": {"column": "measured_degree", "than": "paper_degree", "reduce": "sum"}}}),),
        seeds=1, minutes_per_run=6.0, hardware=CPU, cost_source="measured: 5 min 33 s on one thread (2026-12-01)",
        exact=True,
        differences=("worst-case networks built in exact arithmetic, widths 1-5 and 1-3 hidden layers",))},
)

DYNAMICS = Experiment(
    id="seed002-dynamics", paper=PAPER, seed_file=FILE, target="Sec. 4.4, App. F (Figs. 5, 6)",
    title="Optimisation dynamics: gradient ascent on a bound along a line",
    columns=(Column("claim_crown", "share: CROWN higher landscape, ascent below Box", 1, 3),
             Column("claim_deepz", "share: DeepZ higher landscape, ascent below Box", 1, 3),
             Column("below_crown", "share: CROWN ascent ends below Box", 1, 3),
             Column("below_deepz", "share: DeepZ ascent ends below Box", 1, 3)),
    claims=(Claim("a tighter relaxation's ascent can end below Box's (CROWN)", "Sec. 4.4, Fig. 5", "claim_crown",
                  at_least=("200 networks", 0.005)),
            Claim("a tighter relaxation's ascent can end below Box's (DeepZ)", "Sec. 4.4, Fig. 6", "claim_deepz",
                  at_least=("200 networks", 0.005))),
    notes=("The paper shows such cases; it does not say how often they occur. 0.005 = one network of 200.",),
    scales={"cpu": Scale(
        "cpu", (Row("200 networks", analysis=("sgd-dynamics", "--networks", "200", "--points", "201"), seed_option=True,
                    seed_stride=200),),
        (Measure("analysis", {"extract": {
            "claim_crown": {"column": "shows_claim", "where": {"relaxation": "crown"}},
            "claim_deepz": {"column": "shows_claim", "where": {"relaxation": "deepz"}},
            "below_crown": {"column": "ends_below_box", "where": {"relaxation": "crown"}},
            "below_deepz": {"column": "ends_below_box", "where": {"relaxation": "deepz"}}}}),),
        seeds=3, minutes_per_run=4.5, hardware=CPU, cost_source="measured: 4 min 6 s on one thread (2026-12-07)",
        differences=("random networks as App. F (2-20-20-1 style), the paper's dense DeepZ/CROWN",))},
)

# --------------------------------------------------------------------------- Table 8 (paper scale)
T8_ROWS = (("Box", "box", "ibp", "94.8 90.7 89.5 92.6 86.6 82.4 88.7 80.8 74.0"),
           ("hBox", "hbox", "hbox", "95.6 90.6 88.4 93.2 82.1 76.6 89.2 65.7 57.0"),
           ("CROWN-IBP (R)", "crown_ibp_r", "crown-ibp", "94.9 91.8 90.6 92.2 84.6 80.9 92.2 79.9 70.5"),
           ("DeepZ", "deepz", "deepz", "98.3 95.1 92.5 95.0 90.9 85.1 87.4 77.9 64.2"),
           ("CROWN", "crown", "crown", "98.6 94.6 91.6 93.0 85.5 80.6 84.9 71.7 57.3"),
           ("CROWN-IBP", "crown_ibp", "ibp", "95.5 92.0 91.2 93.3 88.6 86.0 90.8 83.6 77.9"))
T8_EPS = (0.1, 0.2, 0.3)

TABLE8 = Experiment(
    id="seed002-table8", paper=PAPER, seed_file=FILE, target="Table 8 (App. I), MNIST FC",
    title="Every relaxation on the MNIST FC network at eps_test 0.1, 0.2, 0.3",
    columns=(Column("natural", "natural %", 100, 1), Column("certified_own", "CR % (own relaxation)", 100, 1)),
    paper_numbers=tuple(PaperNumber(f"{name} eps={e:g}", metric, float(numbers.split()[3 * i + k]), f"{name} {numbers}")
                        for name, _, _, numbers in T8_ROWS for i, e in enumerate(T8_EPS)
                        for metric, k in (("natural", 0), ("certified_own", 2))),
    claims=(Claim("at eps 0.3 Box certifies more than CROWN", "Sec. 5, Tables 2 and 8", "certified_own",
                  order=("CROWN eps=0.3", "Box eps=0.3")),
            Claim("at eps 0.3 Box certifies more than hBox", "Sec. 5, Tables 2 and 8", "certified_own",
                  order=("hBox eps=0.3", "Box eps=0.3"))),
    notes=("CROWN-IBP is certified with IBP, as the paper does (its beta: 1 -> 0 mode).",),
    scales={"paper": Scale(
        "paper", tuple(Row(f"{name} eps={e:g}", f"configs/mnist/fc_{stem}_eps{e:g}.yaml", values={"own": own})
                       for name, stem, own, _ in T8_ROWS for e in T8_EPS),
        (Measure("certified", {"relaxations": ["own"]}),), seeds=1, minutes_per_run=60.0, hardware=GPU,
        cost_source="estimate, not measured: 200 MNIST epochs of a small FC",
        differences=("one seed per cell, as the paper; Table 6's settings per eps_test",))},
)
