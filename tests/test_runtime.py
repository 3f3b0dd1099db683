"""`cpu_kernels` picks the CPU kernels in-process, before torch runs any, with the same effect as
the environment variables set before Python starts; too late, it refuses instead of doing nothing."""

import os
import subprocess
import sys

import pytest
import torch

from seenn.common.runtime import CPU_KERNEL_ENV, PORTABLE_CPU_ENV

# Float results that go through ATen's vectorized kernels, oneDNN (convolution) and MKL (matmul).
PROBE = """
import hashlib, sys
import torch
from seenn.common.runtime import apply_cpu_kernels
if len(sys.argv) > 1:
    apply_cpu_kernels(sys.argv[1])
torch.manual_seed(0)
x, w = torch.randn(8, 16, 28, 28, requires_grad=True), torch.randn(32, 16, 3, 3, requires_grad=True)
y = torch.nn.functional.conv2d(x, w, padding=1)
y.square().sum().backward()
out = [y, x.grad, w.grad, torch.randn(256, 1000) @ torch.randn(1000, 300), torch.randn(100000).exp()]
print(torch.backends.cpu.get_cpu_capability(), hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in out)).hexdigest())
"""


def _probe(*args, env_extra=None) -> tuple[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_ENV}
    r = subprocess.run([sys.executable, "-c", PROBE, *args], env={**env, **(env_extra or {})}, capture_output=True,
                       text=True, check=True)
    capability, digest = r.stdout.split()
    return capability, digest


@pytest.fixture(scope="module")
def native() -> tuple[str, str]:
    return _probe()


@pytest.mark.parametrize("mode", ["portable", "avx2"])
def test_kernels_set_in_process_equal_the_environment_set_before_start(native, mode):
    if mode == "avx2" and native[0] not in ("AVX2", "AVX512"):
        pytest.skip("this CPU lacks AVX2")
    by_env = _probe(env_extra=CPU_KERNEL_ENV[mode])
    assert _probe(mode) == by_env and by_env[0] == CPU_KERNEL_ENV[mode]["ATEN_CPU_CAPABILITY"].upper()
    if native[1] == by_env[1]:
        pytest.skip(f"this CPU's native kernels give the {mode} bytes: nothing to tell apart")


def test_native_clears_the_variables_so_the_config_alone_decides(native):
    assert _probe("native", env_extra=PORTABLE_CPU_ENV) == native


def test_portable_after_torch_ran_a_kernel_is_refused(native):
    if native[0] == "DEFAULT":
        pytest.skip("ATen's native kernels are its baseline ones on this CPU: lateness cannot be seen")
    code = ("import torch; from seenn.common.runtime import apply_cpu_kernels; torch.ones(64).exp().sum(); "
            "apply_cpu_kernels('portable')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "'cpu_kernels: portable' did not take effect (ATen runs" in r.stderr


def test_each_kernel_setting_compiles_into_a_cache_of_its_own():
    """torch.compile's cache does not key kernels by ATen capability: a cache shared by two
    settings served wrong fused-LIF kernels. Each setting gets its own; a user's choice is kept."""
    code = ("import os, sys; from seenn.common.runtime import apply_cpu_kernels; apply_cpu_kernels(sys.argv[1]); "
            "print(os.environ['TORCHINDUCTOR_CACHE_DIR'])")
    env = {k: v for k, v in os.environ.items() if k not in PORTABLE_CPU_ENV and k != "TORCHINDUCTOR_CACHE_DIR"}

    def cache(mode, extra=None):
        return subprocess.run([sys.executable, "-c", code, mode], env={**env, **(extra or {})}, capture_output=True,
                              text=True, check=True).stdout.strip()

    assert len({cache(m) for m in CPU_KERNEL_ENV}) == len(CPU_KERNEL_ENV)
    assert cache("avx2", {"TORCHINDUCTOR_CACHE_DIR": "/somewhere/mine"}) == "/somewhere/mine"


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_device_cuda_without_a_gpu_stops_naming_the_key_and_auto_logs_its_pick(caplog):
    from seenn.common.errors import SeennError
    from seenn.common.runtime import pick_device

    with pytest.raises(SeennError, match="config 'device: cuda' but no CUDA device is available"):
        pick_device("cuda")
    with caplog.at_level("INFO", logger="seenn"):
        assert pick_device("auto") == torch.device("cpu")
    assert "config 'device: auto' picked cpu (no CUDA device available)" in caplog.text


def test_tf32_is_its_own_switch_and_deterministic_leaves_it_alone(monkeypatch):
    from seenn.common import runtime
    from seenn.common.runtime import set_tf32, setup

    monkeypatch.setattr(runtime, "apply_cpu_kernels", lambda mode: None)  # this process's kernels stay as they are
    try:
        setup(0, True, "cpu", tf32=True)
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        setup(0, True, "cpu", tf32=False)
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
        with runtime.tf32_enabled(True):  # a training loop's steps (train.tf32)
            assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.allow_tf32
    finally:
        set_tf32(False)
        torch.use_deterministic_algorithms(False)


def test_deterministic_setup_leaves_the_compiler_unimported_until_it_compiles():
    """`setup(deterministic=True)` switches torch's deterministic kernels on without importing
    torch._inductor (3 s at every stage start), and `import seenn.pipeline.table` (every stage, every
    Snakemake start) loads no seaborn; inductor gets the flag once something compiles."""
    code = (
        "import sys, torch\n"
        "import seenn.pipeline.table\n"
        "from seenn.common.runtime import setup, sync_compiler_determinism\n"
        "setup(0, True, 'cpu')\n"
        "print(torch.are_deterministic_algorithms_enabled(), 'torch._inductor' in sys.modules, 'seaborn' in sys.modules)\n"
        "sync_compiler_determinism()\n"
        "import torch._inductor.config as c\n"
        "print(c.deterministic)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "False", "False", "True"]
