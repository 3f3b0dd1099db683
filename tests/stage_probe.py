"""Run one stage in a fresh interpreter and print the `seenn` modules it loaded (as JSON).

Used by tests/test_pipeline.py to check each stage's computed code inputs against what really
runs. It loads nothing of the pipeline but the runner's setup and the stage's own module, so
what it prints is what that stage's computation needs. argv[1]: a JSON description of the stage."""

import importlib
import json
import sys
from pathlib import Path

job = json.loads(sys.argv[1])
from seenn import runtime  # noqa: E402
from seenn.dag import StageContext  # noqa: E402

cfg = job["config"]
device = runtime.setup(cfg["seed"], cfg["deterministic"], cfg["device"], cfg["cpu_kernels"], cfg["tf32"])
ctx = StageContext(name=job["name"], params=job["params"], inputs=job["inputs"], outputs=job["outputs"], device=device,
                   checkpoint_dir=Path(job["checkpoint_dir"]), extras=job["options"])
module, func = job["func"].split(":")
getattr(importlib.import_module(module), func)(ctx)
print(json.dumps(sorted(m for m in sys.modules if m == "seenn" or m.startswith("seenn."))))
