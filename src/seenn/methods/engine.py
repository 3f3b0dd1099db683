"""Early-exit inference engine: run an SNN one timestep at a time and drop finished samples.

The network runs stepwise (every neuron keeps its membrane between calls, see
`neurons.set_stepwise`). After each timestep a stop rule looks at the accumulated logits z of
the samples still running; the ones that stop leave the batch together with every neuron's
state (`keep(mask)`), so later timesteps compute only the samples left. Results come back in
the original sample order and equal the post-hoc evaluation of saved logits (same predictions,
same exit timesteps: tests/test_engine.py).

Continuous batching (`batch_size` smaller than the input): the batch is refilled from the
input as samples leave, so every timestep computes a full batch until the input runs out. New
samples join at the end of the batch with neurons at rest (`admit(k)`); samples at different
timesteps then share one network call. Without it, the few samples of a batch that run to
t = 2..T run as tiny batches, whose per-call overhead eats much of the saving.

- SEENN-I: stop at the first t whose score of softmax(z_t) exceeds alpha (`exits.seenn1_stops`).
- SEENN-II: a policy picks u (1-based) for every sample before the SNN runs; each sample stops
  at its u. A `Policy` is any callable input -> u plus, for energy, the network it runs.
- Fixed T: every sample stops at T (the same engine, no early exit).

Direct encoding: for static images the stem (conv + BN) is computed once per sample, when it
joins, and reused at every timestep, as in the multi-step path; event inputs feed frame t at
timestep t."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from seenn.common.errors import SeennError
from seenn.methods.exits import ExitAt, FixedT, Seenn1, policy_exit
from seenn.snn.neurons import neuron_modules, set_stepwise

# stop rule: (timestep t [B] (1-based, CPU), T, accumulated logits z_t [B, K] of the running
# samples, their original indices [B]) -> bool [B], True where the sample stops now
StopRule = Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor], torch.Tensor]


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


class Stepper:
    """The running samples, each advanced one timestep per `step()`; `keep(mask)` drops samples
    and `admit(x)` appends new ones at timestep 0.

    Uses the SpikingNetwork layout (stem / stem_act / layers / head, models/base.py) when the model has it;
    any other stepwise-capable model is called as `model(x_t, 1)` at every timestep."""

    def __init__(self, model: nn.Module, T: int):
        self.model, self.T = model, T
        self.event = bool(getattr(model, "event", False))
        self.resnet = all(hasattr(model, a) for a in ("stem", "stem_act", "layers", "head"))
        self.x: torch.Tensor | None = None  # inputs of the running samples
        self.encoded: torch.Tensor | None = None  # their stem outputs (static inputs)
        self.t = torch.zeros(0, dtype=torch.long)  # their last timestep run, 1-based (0: none yet)
        self.keep_state = True
        set_stepwise(model, True)
        if hasattr(model, "set_timesteps"):
            model.set_timesteps(1)

    def __len__(self) -> int:
        return len(self.t)

    def admit(self, x: torch.Tensor) -> None:
        """Append samples that start at timestep 1 on the next `step()`, neurons at rest."""
        k = x.shape[0]
        enc = self.model.stem(x) if (self.resnet and not self.event) else None
        if self.x is None:
            self.x, self.encoded = x, enc
        else:
            self.x = torch.cat([self.x, x])
            if enc is not None:
                self.encoded = torch.cat([self.encoded, enc])
        self.t = torch.cat([self.t, torch.zeros(k, dtype=torch.long)])
        for m in neuron_modules(self.model):
            m.admit(k)

    def step(self) -> torch.Tensor:
        """Run the next timestep of every running sample: logits O_t [B, K]."""
        self.t += 1
        last = bool((self.t >= self.T).all())  # nothing runs after this: neurons may skip storing membranes
        if last == self.keep_state:
            self.keep_state = not last
            for m in neuron_modules(self.model):
                m.keep_state = self.keep_state
        if self.event:  # frame t_i of sample i
            x_t = self.x[torch.arange(len(self.t), device=self.x.device), (self.t - 1).to(self.x.device)]
        else:
            x_t = self.x
        if self.resnet:
            enc = self.encoded if self.encoded is not None else self.model.stem(x_t)
            return self.model.head(self.model.layers(self.model.stem_act(enc)))
        x_t = x_t.unsqueeze(1) if self.event else x_t
        return self.model(x_t, 1).reshape(x_t.shape[0], -1)

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the samples where `mask` is True: inputs, encodings and every membrane."""
        self.x = self.x[mask]
        if self.encoded is not None:
            self.encoded = self.encoded[mask]
        self.t = self.t[mask.cpu()]
        for m in neuron_modules(self.model):
            m.keep(mask)

    def close(self) -> None:
        for m in neuron_modules(self.model):
            m.keep_state = True
        set_stepwise(self.model, False)


def model_device(model: nn.Module) -> torch.device:
    p = next(model.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def run(model: nn.Module, x: torch.Tensor, T: int, stop: StopRule, on_step: Callable[[int], None] | None = None,
        batch_size: int | None = None) -> EngineResult:
    """Run `model` on the inputs `x` for at most T timesteps, stopping samples by `stop`.

    `batch_size` None runs every sample of `x` as one batch (in lockstep: all running samples
    are at the same timestep); a smaller `batch_size` batches continuously, refilling the batch
    from `x` as samples leave. `on_step(t)` is called before timestep t's work runs, the stem of
    the samples that join included (the energy counter uses it); it needs lockstep."""
    if T < 1:
        raise SeennError(f"the engine needs at least one timestep, got T={T}")
    n = x.shape[0]
    capacity = n if batch_size is None else int(batch_size)
    if capacity < 1:
        raise SeennError(f"the engine needs a batch size of at least 1, got {batch_size}")
    if on_step is not None and capacity < n:
        raise SeennError("on_step labels whole timesteps, so it needs every sample in one batch (batch_size=None)")
    model.eval()
    device = model_device(model)
    prediction = torch.empty(n, dtype=torch.long)
    exit_t = torch.empty(n, dtype=torch.long)
    logits_out: torch.Tensor | None = None
    active = torch.zeros(0, dtype=torch.long)  # original indices of the running samples
    z: torch.Tensor | None = None  # their accumulated logits
    admitted = 0
    stepper = Stepper(model, T)
    try:
        while True:
            if len(active) < capacity and admitted < n:
                k = min(capacity - len(active), n - admitted)
                if on_step is not None:  # lockstep: samples join only at the start, and their stem is timestep 1's work
                    on_step(1)
                stepper.admit(x[admitted : admitted + k].to(device))
                active = torch.cat([active, torch.arange(admitted, admitted + k)])
                admitted += k
            if not len(active):
                break
            if on_step is not None:
                on_step(int(stepper.t[0]) + 1)
            o = stepper.step().float()
            b = 0 if z is None else z.shape[0]  # samples that ran before; the rest joined now
            z = o if b == 0 else (z + o if b == o.shape[0] else torch.cat([z + o[:b], o[b:]]))
            t = stepper.t
            done = stop(t, T, z, active).cpu().bool() | (t >= T)
            if not done.any():
                continue
            idx = active[done]
            zd = z[done.to(z.device)].cpu()
            if logits_out is None:
                logits_out = torch.empty(n, zd.shape[1], dtype=zd.dtype)
            prediction[idx] = zd.argmax(-1)
            exit_t[idx] = t[done]
            logits_out[idx] = zd
            keep = ~done  # all False when every sample stops: the neurons then hold no rows
            stepper.keep(keep.to(device))
            active, z = active[keep], z[keep.to(z.device)]
    finally:
        stepper.close()
    return EngineResult(prediction, exit_t, logits_out)


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
    return run(model, x, T, FixedT().stops, **kw)


def run_seenn1(model: nn.Module, x: torch.Tensor, T: int, alpha: float, score: str, temperature: float = 1.0,
               accumulate: str = "sum", entropy_temperature: bool = False, **kw) -> EngineResult:
    return run(model, x, T, seenn1_rule(alpha, score, temperature, accumulate, entropy_temperature), **kw)


def run_policy(model: nn.Module, x: torch.Tensor, T: int, policy: Policy, **kw) -> EngineResult:
    """SEENN-II: the policy decides u for every sample first, then the SNN runs until each u."""
    return run(model, x, T, ExitAt(policy_exits(policy, x, T, kw.get("batch_size"))).stops, **kw)


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
