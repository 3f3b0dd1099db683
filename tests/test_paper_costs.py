"""benchmarks/paper_costs.py: the README's cost table takes measured hours from a GPU check's
JSON where one ran on a GPU, and marks every other cell as an estimate."""

import json
import sys

from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import paper_costs  # noqa: E402


def _check(tmp_path, name, **top):
    rows = [{"section": "train", "what": "resnet19_cifar10 (cifar10) amp=bf16 compile=True tf32=True", "ok": True,
             "hours": 4.26},
            {"section": "train", "what": "vggsnn_cifar10dvs (cifar10dvs) amp=bf16 compile=True tf32=True", "ok": False,
             "hours": None},
            {"section": "engine", "what": "ResNet-19 fp32, paper exits", "ok": True}]
    path = tmp_path / name
    path.write_text(json.dumps({"device": "NVIDIA H100 80GB HBM3", "torch": "2.11", "rows": rows, **top}))
    return str(path)


def test_measured_hours_name_the_gpu_and_the_commit_and_only_gpu_runs_count(tmp_path):
    gpu = _check(tmp_path, "gpu.json", commit="0123456789abcdef", quick=False)
    measured = paper_costs.measured_hours([gpu])
    assert measured == {"resnet19_cifar10": "**4.3** (measured on NVIDIA H100 80GB HBM3, 0123456)"}
    # a quick run, or one on a CPU, times a narrow stand-in: never a measured cell
    assert paper_costs.measured_hours([_check(tmp_path, "quick.json", quick=True)]) == {}
    assert paper_costs.measured_hours([_check(tmp_path, "cpu.json", device="CPU")]) == {}
