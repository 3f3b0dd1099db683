"""Run stages one after another, each as a fresh interpreter would, and print the `seenn` modules
each one loaded (as JSON).

Used by tests/test_pipeline_code.py to check each stage's computed code inputs against what really
runs. This process imports the heavy third-party libraries once (PRELOAD: nothing of `seenn`),
then forks one child per stage, so no stage pays their import again: a child loads nothing of
the pipeline but the runner's setup and the stage's own module, so what it prints is what that
stage's computation needs. stdin: one JSON description of a stage per line; stdout: one line
`LOADED ["<stage>", [modules...]]` per stage that ran; the exit status is that of the first
stage that failed (its traceback on stderr), else 0."""

import importlib
import json
import os
import sys
import traceback
from pathlib import Path

PRELOAD = ("torch", "torchvision", "numpy", "pandas", "yaml", "jsonschema", "tqdm", "matplotlib.pyplot", "seaborn",
           "reportlab.platypus")


def seenn_modules() -> list[str]:
    return sorted(m for m in sys.modules if m == "seenn" or m.startswith("seenn."))


def run(job: dict) -> list[str]:
    """Run one stage as `seenn run` does after its checks; the `seenn` modules then loaded."""
    from seenn.common import runtime
    from seenn.stages.declaration import StageContext

    cfg = job["config"]
    device = runtime.setup(cfg["seed"], cfg["deterministic"], cfg["device"], cfg["cpu_kernels"], tf32=False)
    ctx = StageContext(name=job["name"], params=job["params"], inputs=job["inputs"], outputs=job["outputs"],
                       device=device, checkpoint_dir=Path(job["checkpoint_dir"]), extras=job["options"])
    module, func = job["func"].split(":")
    getattr(importlib.import_module(module), func)(ctx)
    return seenn_modules()


def main() -> int:
    import matplotlib

    matplotlib.use("Agg")
    for name in PRELOAD:
        importlib.import_module(name)
    assert seenn_modules() == [], seenn_modules()  # the libraries load nothing of the pipeline
    for line in sys.stdin:
        job = json.loads(line)
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:  # the child: one stage, then out without running the parent's exit handlers
            code = 1
            try:
                print("LOADED " + json.dumps([job["name"], run(job)]))
                code = 0
            except BaseException:
                traceback.print_exc()
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            print(f"stage {job['name']} failed (wait status {status})", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
