"""benchmarks/gpu_check.py runs on CPU in its quick mode, so it is known to work before a GPU is
at hand: every section gives rows, every row passes (spikes of the fused LIF and SpikingJelly's
LIFNode equal the plain loop's; the compiled bf16 step repeats its weights byte for byte), the
training rows print every column and their targets, the exit histogram has the paper's AET."""

import json
import subprocess
import sys

import torch
from conftest import ENV, ROOT

ROWS = ("resnet19_cifar10", "vggsnn_cifar10dvs", "sew_resnet34_imagenet")


def test_quick_cpu_check_passes_every_section(tmp_path):
    out = tmp_path / "rows.json"
    # three paper rows stand for the rest here, one per data path (CIFAR images in memory, event
    # frames, ImageNet's image files), on the CPU in eager mode (`--compile off`: compiling each
    # row's network costs tens of seconds here); the compiled step runs in the determinism
    # section. On a GPU every row compiles as its overlay says (`--rows all`).
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--quick", "--device", "cpu",
                        "--rows", *ROWS, "--compile", "off", "--json", str(out)], cwd=tmp_path, env=ENV,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    check = json.loads(out.read_text())
    assert check["quick"] is True and check["device"] == "CPU"  # paper_costs.py --measured skips it
    rows = check["rows"]
    assert {row["section"] for row in rows} == {"train", "determinism", "lif", "engine"}
    train = [row for row in rows if row["section"] == "train"]
    assert train[0]["what"].startswith("bf16 matmul") and train[0]["tflops"] > 0
    assert [row["what"].split()[0] for row in train[1:]] == list(ROWS)
    for row in train[1:]:
        assert "amp=bf16 compile=False tf32=True (--compile off)" in row["what"], row
        assert all(row[k] > 0 for k in ("ms", "data_ms", "tflops", "of_matmul", "hours")), row
        assert "of step (<= 5%" in row["target"]
    assert "of matmul (>= 35%" in train[1]["target"]  # ResNet-19 CIFAR-10's own target
    assert train[2]["T"] == 2 and train[3]["batch"] == 2  # quick: T 2, batch 2 (ImageNet: per GPU)
    det = next(row for row in rows if row["section"] == "determinism")
    assert det["ok"] and "byte-identical" in det["note"]
    assert any(row["what"].startswith("SpikingJelly") for row in rows)  # from benchmarks/wheels
    assert "| section | what |" in r.stdout
    # the engine grid: every precision x batch size x exit histogram, the bound and the targets beside each
    engine = [row for row in rows if row["section"] == "engine"]
    assert {(row["batch"], row["what"].split(",")[0].split()[-1], row["what"].split(",")[1].split()[0])
            for row in engine} == {(b, p, h) for b in (1, 16, 64, 256, 1024) for p in ("fp32", "tf32", "bf16")
                                   for h in ("paper", "heavy")}
    assert all("of bound" in row["note"] and "target" in row["note"] and "exits equal the rule's (fp32): True"
               in row["note"] for row in engine)
    assert all("bf16 vs fp32" in row["note"] for row in engine if " bf16," in row["what"])
    assert any("CPU target <= 1.1" in row["note"] for row in engine if row["batch"] == 1)


def test_the_training_rows_are_the_paper_rows_that_train_an_snn_and_the_targets():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    rows = gpu_check.paper_rows()
    assert len(rows) == 10 and "resnet20" in rows and not any(r.startswith("teas_") for r in rows)
    assert set(gpu_check.DEFAULT_ROWS) <= set(rows)
    cfg = gpu_check.row_cfg("resnet20")
    assert cfg["model"]["arch"] == "resnet20" and cfg["train"]["batch_size"] == 64 and cfg["train"]["timesteps"] == 4
    assert cfg["amp"] == "bf16" and cfg["train"]["compile"] and cfg["train"]["tf32"] and cfg["deterministic"]


def test_exit_histograms_give_their_aet():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    u = gpu_check.histogram_exits(2048, 4, torch.Generator().manual_seed(0))
    assert len(u) == 2048 and set(u.tolist()) == {1, 2, 3, 4}
    assert abs(float(u.float().mean()) - 1.09) < 0.005
    heavy = gpu_check.histogram_exits(2048, 4, torch.Generator().manual_seed(0), gpu_check.EXIT_HISTOGRAMS["heavy"])
    assert abs(float(heavy.float().mean()) - 1.50) < 0.005
