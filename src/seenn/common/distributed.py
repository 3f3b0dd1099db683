"""Data-parallel training under `torchrun`: which process this is, the process group, the DDP
wrapper, metric all-reduce, and the relaunch of `seenn run` under torchrun when a stage is given
more than one GPU. With one process (no WORLD_SIZE > 1 in the environment) every function is a
no-op, so single-process runs are exactly what they were before DDP existed.

Rules under torchrun: every rank trains on the slice [rank::world] of each global batch (so the
global batch is the same for any world size); only rank 0 writes files (`seenn.common.io` discards the
writes of other ranks), logs to the stage's log file and saves checkpoints; every rank resumes
from the same checkpoint."""

from __future__ import annotations

import os
import sys

import torch

from seenn.common.errors import SeennError


def world_size() -> int:
    """Processes in this run (torchrun's WORLD_SIZE; 1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's global rank (0 when not launched by torchrun)."""
    return int(os.environ.get("RANK", "0")) if world_size() > 1 else 0


def local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0")) if world_size() > 1 else 0


def is_main() -> bool:
    """Whether this process writes outputs, logs and checkpoints (rank 0, or the only process)."""
    return rank() == 0


def active() -> bool:
    """Whether a process group of more than one process is running."""
    return world_size() > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()


def init(device: torch.device) -> torch.device:
    """Join torchrun's process group (nccl on CUDA, gloo on CPU); return this rank's device
    (cuda:LOCAL_RANK on CUDA). One process: `device` unchanged, nothing started."""
    if world_size() <= 1:
        return device
    import torch.distributed as dist

    if device.type == "cuda":
        if local_rank() >= torch.cuda.device_count():
            raise SeennError(f"torchrun started {world_size()} processes but this node has only "
                             f"{torch.cuda.device_count()} visible GPU(s) (CUDA_VISIBLE_DEVICES="
                             f"{os.environ.get('CUDA_VISIBLE_DEVICES', 'unset')})")
        device = torch.device("cuda", local_rank())
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return device


def finish() -> None:
    """Leave the process group (all ranks wait for each other first)."""
    if active():
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()


def wrap(model: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """The model to train: DistributedDataParallel around it under torchrun, else itself."""
    if not active():
        return model
    from torch.nn.parallel import DistributedDataParallel

    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def sync_buffers(model: torch.nn.Module) -> None:
    """Give every rank rank 0's buffers (BatchNorm running statistics: each rank updated its own
    in the last training step), so evaluation and the saved model agree on every rank."""
    if active():
        for buf in model.buffers():
            torch.distributed.broadcast(buf, src=0)


def sum_over_ranks(*values: float) -> list[float]:
    """Each value summed over all ranks (float64); the values themselves with one process."""
    if not active():
        return list(values)
    t = torch.tensor(values, dtype=torch.float64)
    backend = torch.distributed.get_backend()
    if backend == "nccl":
        t = t.cuda()
    torch.distributed.all_reduce(t)
    return t.cpu().tolist()


def same_on_all_ranks(value: int, what: str) -> int:
    """Check that every rank holds the same integer (e.g. the epoch it resumes from)."""
    if active():
        import torch.distributed as dist

        lo, hi = torch.tensor([value]), torch.tensor([value])
        if dist.get_backend() == "nccl":
            lo, hi = lo.cuda(), hi.cuda()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if int(lo) != int(hi):
            raise SeennError(f"ranks disagree on {what} ({int(lo)} .. {int(hi)}): are the checkpoints on a "
                             f"filesystem every rank sees?")
    return value


def rank_slice(idx: torch.Tensor) -> torch.Tensor:
    """This rank's share [rank::world] of one global batch's indices (all of them with one process)."""
    w = world_size()
    return idx if w <= 1 else idx[rank()::w]


def torchrun_argv(nproc: int, argv: list[str]) -> list[str]:
    """The command that reruns `seenn <argv>` as `nproc` processes on this node (torchrun, run
    through this interpreter so the same environment and packages serve every rank)."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
            "-m", "seenn", *argv]


def run_under_torchrun(stage: str, nproc: int, argv: list[str]) -> int:
    """Run `seenn <argv>` as `nproc` processes under torchrun, as a child of this process (which
    keeps its GPU slot locks and forwards SIGTERM to it), and return torchrun's exit status. When
    one rank dies, torchrun stops the others (SIGTERM, then SIGKILL after its grace period; a rank
    waiting in a collective on the dead one gets a connection error first), and this process
    says so in one line."""
    import signal
    import subprocess

    sys.stdout.flush()
    sys.stderr.flush()
    child = subprocess.Popen(torchrun_argv(nproc, argv))
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: child.send_signal(signal.SIGTERM))
    try:
        status = child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    if status != 0:
        raise SeennError(f"stage {stage}: a process of its {nproc}-process run stopped (torchrun exit status {status}; "
                         f"its report is above): the last complete checkpoint is kept, rerun the same command to resume")
    return status
