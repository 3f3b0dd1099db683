"""Seeds, determinism switches, CPU kernel choice and device, in one place for every stage."""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import random

import numpy as np
import torch

from seenn.common.errors import SeennError

# `cpu_kernels`: which code path each library behind torch's CPU math takes. 'native' lets each
# pick by CPU detection (AVX-512 or AVX2, by vendor); 'avx2' pins the AVX2 paths (any x86-64 CPU
# since about 2015); 'portable' pins the baseline paths, the same on every x86-64 CPU. Each variable
# is read when its library first runs a kernel, so setting them after `import torch` but before any
# tensor work takes effect (checked for ATen below; measured for all three, see README).
CPU_KERNEL_ENV = {
    "native": {},
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "portable": {
        "ATEN_CPU_CAPABILITY": "default",  # ATen's own vectorized kernels (elementwise, reductions, ...)
        "ONEDNN_MAX_CPU_ISA": "SSE41",  # oneDNN: convolutions
        "MKL_CBWR": "COMPATIBLE",  # MKL: matrix products (conditional numerical reproducibility)
    },
}
PORTABLE_CPU_ENV = CPU_KERNEL_ENV["portable"]


INDUCTOR_CACHE = "TORCHINDUCTOR_CACHE_DIR"
_OWN_CACHES: set[str] = set()  # cache directories this module chose (a user's own choice is kept)


def inductor_cache_dir(mode: str) -> str:
    """torch.compile's kernel cache for one `cpu_kernels` setting. Its cache keys do not include
    the ATen capability a kernel was built for, so one cache shared by two settings serves kernels
    built for the other (seen: wrong spikes from the fused LIF, heap corruption): one per setting."""
    import getpass
    import tempfile

    base = os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return base if mode == "native" else f"{base}_{mode}"


def apply_cpu_kernels(mode: str) -> None:
    """Choose the CPU kernels before torch runs any. The variables are cleared first, so the
    config alone decides ('native' leaves the choice to each library)."""
    if mode not in CPU_KERNEL_ENV:
        raise SeennError(f"config 'cpu_kernels: {mode}': expected one of {', '.join(CPU_KERNEL_ENV)}")
    for key in PORTABLE_CPU_ENV:
        os.environ.pop(key, None)
    os.environ.update(CPU_KERNEL_ENV[mode])
    if os.environ.get(INDUCTOR_CACHE) in (None, *_OWN_CACHES):
        os.environ[INDUCTOR_CACHE] = inductor_cache_dir(mode)
        _OWN_CACHES.add(os.environ[INDUCTOR_CACHE])
    wanted = CPU_KERNEL_ENV[mode].get("ATEN_CPU_CAPABILITY", "").upper()
    if wanted and torch.backends.cpu.get_cpu_capability() != wanted:
        raise SeennError(f"config 'cpu_kernels: {mode}' did not take effect (ATen runs "
                         f"{torch.backends.cpu.get_cpu_capability()} kernels): either the CPU lacks {wanted} or "
                         f"torch ran a kernel before it was applied (`seenn run` applies it first thing)")


def cpu_kernels_description(mode: str) -> str:
    """The kernels this process runs, for the report's provenance."""
    if CPU_KERNEL_ENV[mode]:
        return f"{mode} (" + ", ".join(f"{k}={v}" for k, v in CPU_KERNEL_ENV[mode].items()) + ")"
    return f"native (ATen {torch.backends.cpu.get_cpu_capability()}; oneDNN and MKL choose by CPU)"


def cpu_model() -> str:
    """The CPU's model name (/proc/cpuinfo, else what platform knows)."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


DEVICES = ("auto", "cpu", "cuda")  # `device`: auto picks CUDA when there is one
AMP_DTYPES = {"none": None, "bf16": torch.bfloat16, "fp16": torch.float16}  # `amp`: autocast dtype of training


def setup(seed: int, deterministic: bool, device: str, cpu_kernels: str = "native", tf32: bool = False) -> torch.device:
    """Choose the CPU kernels; seed Python, NumPy and torch; switch on deterministic kernels and set
    TF32 (two separate choices: `seenn run` starts every stage with TF32 off, and the training
    loops switch it on for their steps alone, `train.tf32` through `tf32_enabled`); return the device."""
    apply_cpu_kernels(cpu_kernels)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if deterministic:
        deterministic_kernels()
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
    set_tf32(tf32)
    return pick_device(device)


def deterministic_kernels() -> None:
    """What torch.use_deterministic_algorithms(True) does to eager kernels, without its import of
    torch._inductor (3 s at the start of every stage, none of which compiles); the compiler's own
    flag follows at the first compile (sync_compiler_determinism)."""
    setter = getattr(torch._C, "_set_deterministic_algorithms", None)
    if setter is None:  # a torch without the private setter: the public call, import and all
        torch.use_deterministic_algorithms(True)
    else:
        setter(True, warn_only=False)


def sync_compiler_determinism() -> None:
    """Give torch.compile's inductor the eager determinism setting (call just before compiling:
    inductor is being imported then anyway)."""
    torch.use_deterministic_algorithms(torch.are_deterministic_algorithms_enabled(),
                                       warn_only=torch.is_deterministic_algorithms_warn_only_enabled())


def set_tf32(enabled: bool) -> None:
    """TF32 tensor cores for float32 matmuls and convolutions (CUDA only; no effect on CPU)."""
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


PRECISIONS = ("fp32", "tf32", "bf16")  # `engine.precision`: what the latency stage times in


def inference_precision(precision: str, device: torch.device):
    """A context for timed inference in `engine.precision`: fp32 (TF32 off), tf32 (TF32 tensor
    cores for float32 matmuls and convolutions; on a CPU the same as fp32) or bf16 (autocast to
    bfloat16, TF32 off); TF32 as before after it (`tf32_enabled`). Deterministic algorithms stay
    as `setup` set them. An unknown precision is refused here, before any block runs."""
    if precision not in PRECISIONS:
        raise SeennError(f"engine.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return _inference_precision(precision, device)


@contextlib.contextmanager
def _inference_precision(precision: str, device: torch.device):
    with tf32_enabled(precision == "tf32"):
        with torch.autocast(device.type, dtype=torch.bfloat16) if precision == "bf16" else contextlib.nullcontext():
            yield


@contextlib.contextmanager
def tf32_enabled(enabled: bool):
    """TF32 as `enabled` inside the block (a training loop's steps: `train.tf32`), as before after it
    (evaluation, validation and every other stage run in full float32)."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    set_tf32(enabled)
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


def pick_device(device: str) -> torch.device:
    """The configured device; 'cuda' without a GPU stops at once, 'auto' logs what it picked."""
    if device == "cuda" and not torch.cuda.is_available():
        raise SeennError("config 'device: cuda' but no CUDA device is available (torch.cuda.is_available() is "
                         "false: no GPU, or a CPU-only torch build); use 'device: auto' or 'device: cpu'")
    if device == "auto":
        picked = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        logging.getLogger("seenn").info("config 'device: auto' picked %s%s", picked,
                                        "" if picked.type == "cuda" else " (no CUDA device available)")
        return picked
    return torch.device(device)


def rng_state(generator: torch.Generator) -> dict:
    """Every RNG state a training loop depends on, as plain tensors (loadable with weights_only)."""
    py = random.getstate()
    np_state = np.random.get_state()
    return {
        "python": [py[0], list(py[1]), py[2]],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "generator": generator.get_state(),
    }


def set_rng_state(state: dict, generator: torch.Generator) -> None:
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    generator.set_state(state["generator"])
