"""benchmarks/gpu_check.py runs on CPU in its quick mode, so it is known to work before a GPU is
at hand: every section gives rows, every row passes (spikes of the fused LIF and SpikingJelly's
LIFNode equal the plain loop's), the exit histogram has the paper's AET."""

import json
import subprocess
import sys

import torch
from conftest import ENV, ROOT


def test_quick_cpu_check_passes_every_section(tmp_path):
    out = tmp_path / "rows.json"
    # three architectures stand for the rest here (static images, ImageNet's layout with SEW
    # connects, event frames); on a GPU every registered one runs
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks/gpu_check.py"), "--quick", "--device", "cpu",
                        "--archs", "resnet", "sew_resnet34", "vggsnn", "--json", str(out)], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert {row["section"] for row in rows} == {"train", "lif", "engine"}
    assert any("amp=bf16" in row["what"] for row in rows)
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


def test_exit_histograms_give_their_aet():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import gpu_check

    u = gpu_check.histogram_exits(2048, 4, torch.Generator().manual_seed(0))
    assert len(u) == 2048 and set(u.tolist()) == {1, 2, 3, 4}
    assert abs(float(u.float().mean()) - 1.09) < 0.005
    heavy = gpu_check.histogram_exits(2048, 4, torch.Generator().manual_seed(0), gpu_check.EXIT_HISTOGRAMS["heavy"])
    assert abs(float(heavy.float().mean()) - 1.50) < 0.005
