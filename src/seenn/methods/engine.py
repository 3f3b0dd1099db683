"""Early-exit inference engine: every sample runs one timestep at a time until its stop rule says so.

The batch is a fixed number of slots (methods/slots.py): a sample that stops leaves its slot,
and the slot takes the next input on the device at the next step, with its neurons at rest
(continuous batching: every step computes a full batch until the input runs out, so the few
samples that run to t = 2..T never run as tiny batches). Shapes never change and nothing waits
on the host inside a step, so the step compiles and replays as a CUDA graph; the host reads
one small tensor every `sync_every` steps to learn whether the input has run out. Results come
back in the original sample order and equal the post-hoc evaluation of saved logits (same
predictions, same exit timesteps: tests/test_engine.py).

- SEENN-I: stop at the first t whose score of softmax(z_t) exceeds alpha (`exits.seenn1_stops`).
- SEENN-II: a policy picks u (1-based) for every input before the SNN runs; each sample stops
  at its u. A `Policy` is any callable input -> u plus, for energy, the network it runs.
- Fixed T: every sample stops at T (the same engine, no early exit).
- Any other rule: a function (t, T, z, input index) -> stop mask, or an `exits.ExitRule`.

Direct encoding: for static images the stem (conv + BN) is computed once per sample, when it
takes its slot, and reused at every timestep, as in the multi-step path; event inputs feed each
slot the frame of its own timestep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods.exits import ExitAt, ExitRule, FixedT, Seenn1, policy_exit
from seenn.methods.slots import SlotState, SlotStep, StopRule
from seenn.snn.kernels import set_fused
from seenn.snn.neurons import neuron_modules, set_stepwise


@dataclass
class Policy:
    """SEENN-II as the engine sees it: `decide(x)` maps a network input batch [B, ...] to exit
    timesteps u [B] (1-based), computed before the SNN runs; `model` is the network `decide`
    runs (its MACs count toward energy), or None for a stand-in without a network."""

    decide: Callable[[torch.Tensor], torch.Tensor]
    model: nn.Module | None = None

    @classmethod
    def from_network(cls, model: nn.Module) -> "Policy":
        """A policy network giving action logits [B, A]: u = the timestep of the argmax action
        (`exits.policy_exit` over the network's `grid`, 1..A if it has none)."""
        model.eval()
        grid = getattr(model, "grid", None)
        return cls(decide=lambda x: policy_exit(model(x), grid), model=model)


@dataclass
class EngineResult:
    """Per sample, in the original order: the prediction argmax z_u and the exit timestep u."""

    prediction: torch.Tensor  # long [N]
    exit_t: torch.Tensor  # long [N], 1-based
    logits: torch.Tensor  # float [N, K]: accumulated logits z at the exit timestep

    @property
    def sample_steps(self) -> int:
        """Timesteps actually computed, summed over samples."""
        return int(self.exit_t.sum())


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


def allow_recompiles() -> None:
    """Every (rule, horizon, number of slots) is its own compiled step of one function: raise
    dynamo's per-function limit (8) so that a latency grid never falls back to eager unseen."""
    cfg = torch._dynamo.config
    cfg.recompile_limit = max(cfg.recompile_limit, 512)
    cfg.accumulated_recompile_limit = max(cfg.accumulated_recompile_limit, 4096)


def shrunk(slots: int, busy: int) -> int:
    """Slots to move the busy ones into once the input has run out: the batch divided by 4 as
    often as `busy` still fits (few distinct sizes: few compilations and captured graphs)."""
    while slots > 1 and -(-slots // 4) >= max(busy, 1):
        slots = -(-slots // 4)
    return slots


class Engine:
    """Early exit on `model` at horizon T with one stop rule, over `batch_size` slots (None: one
    slot per input). Calling it on inputs x [N, ...] runs every sample until its rule stops it
    and returns an EngineResult. Build it once and call it many times (the latency stage): its
    compiled steps, captured graphs and buffers are reused for inputs of the same shape.

    The host reads the device at most once every `sync_every` steps (None: 1 on a CPU, where a
    read waits for nothing, 4 on a GPU) to learn whether the input
    has run out (no sooner than the input could have: `slots` inputs per step at most), and,
    once it has, how many slots are still busy: the busy ones then move into fewer slots
    (`shrunk`), so the last samples do not run in a mostly empty batch. With `sync_every` 1 on a
    CPU, eager (the default there), the host reads after every step and also learns how many
    inputs enter next: the stem then runs on exactly those rows (none at a step where no slot
    frees, as in fixed T), not on a fixed chunk. `compile_step` compiles
    the step (`torch.compile(fullgraph=True)`); `cuda_graph` replays it as a CUDA graph on a
    CUDA device (captured after two eager steps, per number of slots). `counter` (an OpCounter,
    eager only) counts operations on the real rows at the lockstep timestep."""

    def __init__(self, model: nn.Module, T: int, stop: StopRule | ExitRule, batch_size: int | None = None, *,
                 sync_every: int | None = None, compile_step: bool = False, cuda_graph: bool = False,
                 refill: int | None = None):
        if T < 1:
            raise SeennError(f"the engine needs at least one timestep, got T={T}")
        if batch_size is not None and int(batch_size) < 1:
            raise SeennError(f"the engine needs a batch size of at least 1, got {batch_size}")
        self.device = model_device(model)
        if sync_every is None:  # a read waits for nothing on a CPU; on a GPU it stalls the queue
            sync_every = 1 if self.device.type == "cpu" else 4
        if sync_every < 1:
            raise SeennError(f"engine.sync_every must be at least 1, got {sync_every}")
        self.model, self.T, self.batch_size, self.sync_every = model.eval(), T, batch_size, int(sync_every)
        if isinstance(stop, ExitRule):
            stop = stop.on(self.device).stops
        self.stop, self.refill = stop, refill
        self.compile_step = compile_step
        self.cuda_graph = cuda_graph and self.device.type == "cuda"
        self._steps: dict[int, SlotStep] = {}
        self._compiled: dict[int, Callable] = {}
        self._states: dict[tuple, tuple[SlotState, list]] = {}  # (slots, N) -> state, neuron membranes
        self._graphs: dict[tuple, torch.cuda.CUDAGraph] = {}
        self._inputs: dict[tuple, torch.Tensor] = {}

    def _step(self, slots: int) -> SlotStep:
        if slots not in self._steps:
            self._steps[slots] = SlotStep(self.model, self.T, self.stop, self.refill or slots)
        return self._steps[slots]

    def _state(self, slots: int, n: int) -> tuple[SlotState, list]:
        """The persistent state of `slots` slots for N = n inputs (graphs point at its tensors)."""
        key = (slots, n)
        if key not in self._states:
            self._states[key] = (SlotState.empty(slots, n, self.device), [None] * len(neuron_modules(self.model)))
        return self._states[key]

    def _enter(self, st: SlotState, membranes: list) -> None:
        """Point every neuron at this state's slots: its `fresh` mask and its membranes (none at
        T = 1: every sample stops after its first step, so no membrane is read or written)."""
        for i, m in enumerate(neuron_modules(self.model)):
            m.stepwise, m.fresh, m.u, m.remember = True, st.fresh, membranes[i], self.T > 1

    def _leave(self, membranes: list) -> None:
        for i, m in enumerate(neuron_modules(self.model)):
            membranes[i] = m.u

    def _runner(self, slots: int, n: int, st: SlotState, x: torch.Tensor, chunk: int | None) -> Callable[[], None]:
        """What runs one step on `st`: eager for the first two steps this state ever runs (they
        allocate its buffers and membranes), then compiled and / or a CUDA graph replay. `chunk`:
        the inputs that enter now, when the host knows it (`exact`), else None (a fixed chunk)."""
        step = self._step(slots)
        if st.eager_steps < 2 or not (self.compile_step or self.cuda_graph):
            def eager() -> None:
                step(st, x, chunk=chunk)
                st.eager_steps += 1
            return eager
        fn = step
        if self.compile_step:
            if slots not in self._compiled:
                allow_recompiles()
                self._compiled[slots] = torch.compile(step, fullgraph=True, dynamic=False)
            fn = self._compiled[slots]
        if not self.cuda_graph:
            return lambda: fn(st, x)
        key = (slots, n)
        if key not in self._graphs:
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(side):  # compile and warm up outside the capture, on the real state
                fn(st, x)
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                fn(st, x)
            self._graphs[key] = graph
            graph.replay()  # the capture ran nothing: this is the captured step's first run
        return self._graphs[key].replay

    def _shrink(self, st: SlotState, membranes: list, slots: int, busy: int, n: int):
        """Move the busy slots of `st` into `shrunk(slots, busy)` slots (same if no fewer)."""
        fewer = shrunk(slots, busy)
        if fewer == slots:
            return st, membranes, slots
        order = st.busy_first()[:fewer]
        self._leave(membranes)
        small, small_membranes = self._state(fewer, n)
        st.move_into(small, order)
        for i, u in enumerate(membranes):
            if small_membranes[i] is None:
                small_membranes[i] = u[order].clone()
            else:
                small_membranes[i].copy_(u[order])
        self._enter(small, small_membranes)
        return small, small_membranes, fewer

    @torch.no_grad()
    def __call__(self, x: torch.Tensor, counter=None) -> EngineResult:
        n = x.shape[0]
        slots = n if self.batch_size is None else min(int(self.batch_size), n)
        if counter is not None and slots < n:
            raise SeennError("the op counter labels whole timesteps, so it needs every sample in one batch "
                             "(batch_size=None)")
        if counter is not None and (self.compile_step or self.cuda_graph):
            raise SeennError("the op counter needs the eager step (compile_step and cuda_graph off)")
        if n == 0:
            return EngineResult(torch.zeros(0, dtype=torch.long), torch.zeros(0, dtype=torch.long), torch.zeros(0, 0))
        x = x.to(self.device)
        if self.cuda_graph:  # a graph reads its input from one address
            key = (tuple(x.shape), x.dtype)
            if key not in self._inputs:
                self._inputs[key] = torch.empty_like(x)
            x = self._inputs[key].copy_(x)
        impls = [(m, m.impl) for m in neuron_modules(self.model) if hasattr(m, "impl")]
        set_stepwise(self.model, True)
        if hasattr(self.model, "set_timesteps"):
            self.model.set_timesteps(1)
        if self.compile_step:  # the compiled step fuses the plain ops itself
            set_fused(self.model, False)
        try:
            st, membranes = self._state(slots, n)
            st.restart()
            self._enter(st, membranes)
            steps, next_read = 0, self.sync_every
            exact = self.sync_every == 1 and self.device.type == "cpu" and not (self.compile_step or self.cuda_graph)
            chunk = min(slots, n, self._step(slots).refill) if exact else None
            busy, neurons = 0, neuron_modules(self.model)
            while True:
                if exact:  # the host knows whether every slot starts a new sample now (always at batch 1)
                    for m in neurons:
                        m.all_fresh = busy == 0 and chunk == slots
                if counter is not None:  # lockstep: every sample started at step 1
                    counter.set_timestep(steps + 1)
                    self._step(slots)(st, x, counter.set_rows, chunk)
                else:
                    self._runner(slots, n, st, x, chunk)()
                steps += 1
                if exact:  # one read per step: the inputs that enter next, or the end
                    taken, busy = st.progress().tolist()
                    if taken >= n:
                        if busy == 0:
                            break
                        st, membranes, slots = self._shrink(st, membranes, slots, busy, n)
                    chunk = min(slots - busy, n - taken, self._step(slots).refill)
                    continue
                if steps < next_read:
                    continue
                taken, busy = (int(v) for v in st.progress().cpu())
                if taken < n:  # at least ceil(left / slots) more steps before the input can run out
                    next_read = steps + max(self.sync_every, -(-(n - taken) // slots))
                    continue
                next_read = steps + self.sync_every
                if busy == 0:
                    break
                st, membranes, slots = self._shrink(st, membranes, slots, busy, n)
            self._leave(membranes)
            return EngineResult(st.prediction[:n].cpu(), st.exit_t[:n].cpu(), st.logits[:n].cpu())
        finally:
            if counter is not None:
                counter.set_rows(None)
            for m, impl in impls:
                m.impl = impl
            set_stepwise(self.model, False)


def run(model: nn.Module, x: torch.Tensor, T: int, stop: StopRule | ExitRule, batch_size: int | None = None,
        counter=None, **kw) -> EngineResult:
    """Run `model` on the inputs `x` for at most T timesteps, stopping samples by `stop` (an exit
    rule, or any function (t, T, z, input index) -> bool mask), over `batch_size` slots (None:
    every sample at once, in lockstep). `counter`, an OpCounter, counts the operations of a
    lockstep run; `kw` goes to Engine."""
    return Engine(model, T, stop, batch_size, **kw)(x, counter)


def seenn1_rule(alpha: float, score: str, temperature: float = 1.0, accumulate: str = "sum",
                entropy_temperature: bool = False) -> StopRule:
    """SEENN-I: stop where the score of the accumulated logits at t exceeds alpha (or t = T)."""
    return Seenn1(score, alpha, temperature, accumulate, entropy_temperature).stops


def policy_exits(policy: Policy, x: torch.Tensor, T: int, batch_size: int | None = None) -> torch.Tensor:
    """The policy's exit timesteps for inputs `x` (in batches of `batch_size`), checked to lie in 1..T."""
    step = max(x.shape[0] if batch_size is None else batch_size, 1)
    device = model_device(policy.model) if policy.model is not None else x.device
    with torch.no_grad():
        parts = [policy.decide(x[i : i + step].to(device)).long().cpu() for i in range(0, x.shape[0], step)]
    u = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.long)
    if u.shape != (x.shape[0],):
        raise SeennError(f"policy returned exit timesteps of shape {tuple(u.shape)}, expected ({x.shape[0]},)")
    if len(u) and (int(u.min()) < 1 or int(u.max()) > T):
        raise SeennError(f"policy chose exit timesteps in [{int(u.min())}, {int(u.max())}], outside 1..{T}")
    return u


def run_fixed(model: nn.Module, x: torch.Tensor, T: int, **kw) -> EngineResult:
    return run(model, x, T, FixedT(), **kw)


def run_seenn1(model: nn.Module, x: torch.Tensor, T: int, alpha: float, score: str, temperature: float = 1.0,
               accumulate: str = "sum", entropy_temperature: bool = False, **kw) -> EngineResult:
    return run(model, x, T, Seenn1(score, alpha, temperature, accumulate, entropy_temperature), **kw)


def run_policy(model: nn.Module, x: torch.Tensor, T: int, policy: Policy, **kw) -> EngineResult:
    """SEENN-II: the policy decides u for every input first (its range checked on the host, once),
    then the SNN runs until each u."""
    return run(model, x, T, ExitAt(policy_exits(policy, x, T, kw.get("batch_size"))), **kw)


def run_batches(fn: Callable[[torch.Tensor], EngineResult], x: torch.Tensor, batch_size: int,
                device: torch.device | None = None) -> EngineResult:
    """Apply an engine run to `x` in batches of `batch_size` and join the results in order."""
    parts = [fn(x[i : i + batch_size].to(device) if device is not None else x[i : i + batch_size])
             for i in range(0, x.shape[0], batch_size)]
    return EngineResult(torch.cat([p.prediction for p in parts]), torch.cat([p.exit_t for p in parts]),
                        torch.cat([p.logits for p in parts]))


def load_policy(path, spec, device: torch.device) -> Policy:
    """The SEENN-II policy network saved at `path` (by the seenn2_evaluate stage), as the engine's Policy."""
    from seenn.methods.policy.loading import load_policy as load_network

    return Policy.from_network(load_network(path, spec).to(device))
