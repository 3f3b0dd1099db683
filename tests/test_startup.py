"""Every stage runs in its own process (`seenn run <stage>`), which loads the whole stage table to
find its declaration: what that import pulls in is paid once per stage per run. This keeps the
heavy libraries that only some stages use out of it."""

import subprocess
import sys

from conftest import ROOT

LAZY = ("scipy", "matplotlib", "seaborn", "reportlab", "torchvision", "tonic")


def test_the_stage_table_loads_no_library_only_some_stages_use():
    code = ("import sys, seenn.pipeline.table, seenn.cli; "
            f"print(','.join(m for m in {LAZY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": ""}).stdout.strip()
    assert out == "", f"importing the stage table loads {out}: import it inside the function that needs it"
