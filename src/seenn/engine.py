"""Early-exit inference engine: run an SNN one timestep at a time and drop finished samples.

The network runs stepwise (every neuron keeps its membrane between calls, see
`neurons.set_stepwise`). After each timestep a stop rule looks at the accumulated logits z_t of
the samples still running; the ones that stop leave the batch together with every neuron's
state (`keep(mask)`), so later timesteps compute only the samples left. Results come back in
the original sample order and equal the post-hoc evaluation of saved logits (same predictions,
same exit timesteps: tests/test_engine.py).

- SEENN-I: stop at the first t whose score of softmax(z_t) exceeds alpha (`exits.seenn1_stops`).
- SEENN-II: a policy picks u (1-based) for every sample before the SNN runs; each sample stops
  at its u. A `Policy` is any callable input -> u plus, for energy, the network it runs.
- Fixed T: every sample stops at T (the same engine, no early exit).

Direct encoding: for static images the stem (conv + BN) is computed once and reused at every
timestep, as in the multi-step path; event inputs feed frame t at timestep t."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from .errors import SeennError
from .exits import exit_scores, policy_exit, seenn1_stops
from .neurons import neuron_modules, set_stepwise

# stop rule: (t, T, accumulated logits so far [B, t, K] of the running samples, their original
# indices [B]) -> bool [B], True where the sample stops at t
StopRule = Callable[[int, int, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class Policy:
    """SEENN-II as the engine sees it: `decide(x)` maps a network input batch [B, ...] to exit
    timesteps u [B] (1-based), computed before the SNN runs; `model` is the network `decide`
    runs (its MACs count toward energy), or None for a stand-in without a network."""

    decide: Callable[[torch.Tensor], torch.Tensor]
    model: nn.Module | None = None

    @classmethod
    def from_network(cls, model: nn.Module) -> "Policy":
        """A policy network giving action logits [B, T]: u = argmax + 1 (`exits.policy_exit`)."""
        model.eval()
        return cls(decide=lambda x: policy_exit(model(x)), model=model)


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
    """A batch of inputs advanced one timestep per `step()`, with `keep(mask)` to drop samples.

    Uses the SpikingResNet layout (encode / stem_act / layers / head) when the model has it;
    any other stepwise-capable model is called as `model(x_t, 1)` at every timestep."""

    def __init__(self, model: nn.Module, x: torch.Tensor, T: int):
        self.model, self.x, self.T = model, x, T
        self.event = bool(getattr(model, "event", False))
        self.resnet = all(hasattr(model, a) for a in ("stem", "stem_act", "layers", "head"))
        self.t = 0
        set_stepwise(model, True)
        if hasattr(model, "set_timesteps"):
            model.set_timesteps(1)
        self.encoded = model.stem(x) if (self.resnet and not self.event) else None

    def step(self) -> torch.Tensor:
        """Run the next timestep for the samples still in the batch: logits O_t [B, K]."""
        self.t += 1
        if self.t == self.T:  # nothing runs after this timestep: neurons may skip storing membranes
            for m in neuron_modules(self.model):
                m.keep_state = False
        x_t = self.x[:, self.t - 1 : self.t] if self.event else self.x
        if self.resnet:
            enc = self.encoded if self.encoded is not None else self.model.stem(x_t[:, 0])
            return self.model.head(self.model.layers(self.model.stem_act(enc)))
        return self.model(x_t, 1).reshape(x_t.shape[0], -1)

    def keep(self, mask: torch.Tensor) -> None:
        """Keep only the samples where `mask` is True: inputs, encodings and every membrane."""
        self.x = self.x[mask]
        if self.encoded is not None:
            self.encoded = self.encoded[mask]
        for m in neuron_modules(self.model):
            m.keep(mask)

    def close(self) -> None:
        for m in neuron_modules(self.model):
            m.keep_state = True
        set_stepwise(self.model, False)


@torch.no_grad()
def run(model: nn.Module, x: torch.Tensor, T: int, stop: StopRule,
        on_step: Callable[[int], None] | None = None) -> EngineResult:
    """Run `model` on the batch `x` for at most T timesteps, stopping samples by `stop`.

    `on_step(t)` is called before timestep t runs (the energy counter uses it)."""
    if T < 1:
        raise SeennError(f"the engine needs at least one timestep, got T={T}")
    model.eval()
    n = x.shape[0]
    prediction = torch.empty(n, dtype=torch.long)
    exit_t = torch.empty(n, dtype=torch.long)
    logits_out: torch.Tensor | None = None
    active = torch.arange(n)
    history: list[torch.Tensor] = []  # accumulated logits z_1..z_t of the running samples
    if on_step is not None:
        on_step(1)
    stepper = Stepper(model, x, T)
    try:
        for t in range(1, T + 1):
            if on_step is not None and t > 1:
                on_step(t)
            o = stepper.step().float()
            z = o if t == 1 else history[-1] + o  # the same float32 sums as cumsum over t
            history.append(z)
            done = stop(t, T, torch.stack(history, 1), active).cpu().bool()
            if t == T:
                done = torch.ones_like(done)
            if done.any():
                idx = active[done]
                zd = z[done].cpu()
                if logits_out is None:
                    logits_out = torch.empty(n, zd.shape[1], dtype=zd.dtype)
                prediction[idx] = zd.argmax(-1)
                exit_t[idx] = t
                logits_out[idx] = zd
                if t < T and not done.all():
                    keep = (~done).to(x.device)
                    stepper.keep(keep)
                    active = active[~done]
                    history = [h[keep] for h in history]
            if bool(done.all()):
                break
    finally:
        stepper.close()
    return EngineResult(prediction, exit_t, logits_out)


def fixed_rule(t: int, T: int, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """No early exit: every sample runs all T timesteps."""
    return torch.zeros(z.shape[0], dtype=torch.bool)


def seenn1_rule(alpha: float, score: str, temperature: float = 1.0, accumulate: str = "sum") -> StopRule:
    """SEENN-I: stop where the score of the accumulated logits at t exceeds alpha (or t = T)."""

    def rule(t: int, T: int, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        scores = exit_scores(z.cpu(), score, temperature, accumulate)[:, -1]
        return seenn1_stops(scores, alpha, t, T)

    return rule


def exit_at_rule(u: torch.Tensor) -> StopRule:
    """Stop sample i at the 1-based timestep u[i] (SEENN-II's decision, made before the run)."""

    def rule(t: int, T: int, z: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return u[idx] == t

    return rule


def policy_exits(policy: Policy, x: torch.Tensor, T: int) -> torch.Tensor:
    """The policy's exit timesteps for a batch, checked to lie in 1..T."""
    with torch.no_grad():
        u = policy.decide(x).long().cpu()
    if u.shape != (x.shape[0],):
        raise SeennError(f"policy returned exit timesteps of shape {tuple(u.shape)}, expected ({x.shape[0]},)")
    if len(u) and (int(u.min()) < 1 or int(u.max()) > T):
        raise SeennError(f"policy chose exit timesteps in [{int(u.min())}, {int(u.max())}], outside 1..{T}")
    return u


def run_fixed(model: nn.Module, x: torch.Tensor, T: int, **kw) -> EngineResult:
    return run(model, x, T, fixed_rule, **kw)


def run_seenn1(model: nn.Module, x: torch.Tensor, T: int, alpha: float, score: str, temperature: float = 1.0,
               accumulate: str = "sum", **kw) -> EngineResult:
    return run(model, x, T, seenn1_rule(alpha, score, temperature, accumulate), **kw)


def run_policy(model: nn.Module, x: torch.Tensor, T: int, policy: Policy, **kw) -> EngineResult:
    """SEENN-II: the policy decides u for every sample first, then the SNN runs until each u."""
    return run(model, x, T, exit_at_rule(policy_exits(policy, x, T)), **kw)


def run_batches(fn: Callable[[torch.Tensor], EngineResult], x: torch.Tensor, batch_size: int,
                device: torch.device | None = None) -> EngineResult:
    """Apply an engine run to `x` in batches of `batch_size` and join the results in order."""
    parts = [fn(x[i : i + batch_size].to(device) if device is not None else x[i : i + batch_size])
             for i in range(0, x.shape[0], batch_size)]
    return EngineResult(torch.cat([p.prediction for p in parts]), torch.cat([p.exit_t for p in parts]),
                        torch.cat([p.logits for p in parts]))


def load_policy(path, spec, device: torch.device) -> Policy:
    """SEENN-II hook: the trained policy network saved at `path`, as the engine's Policy.

    Expects `seenn.policy.load_policy(path, spec) -> nn.Module` mapping a normalized input batch
    to action logits [B, T] (the SEENN-II branch provides it); u = argmax + 1."""
    try:
        from .policy import load_policy as load_network  # type: ignore[attr-defined]
    except ImportError:
        raise SeennError(f"a SEENN-II policy ({path}) is wired into the engine stages, but seenn.policy.load_policy "
                         "does not exist: add it (path, spec) -> policy network") from None
    return Policy.from_network(load_network(path, spec).to(device))
