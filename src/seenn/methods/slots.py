"""One timestep of the early-exit engine over a fixed number of slots: static shapes, no host read.

The batch is B slots. Each holds one sample (its input index, its timesteps run, its
accumulated logits z and, in every neuron, its membrane) or nothing (index -1). One `SlotStep`
call, all on the device:

1. refill: the free slots, ranked by a prefix sum over the free mask, take the next inputs in
   order (at most `refill` of them, and no more than are left); their membranes start from rest
   (the neurons read the shared `fresh` mask, `torch.where`) and their z from zero;
2. the network runs one timestep on every slot (direct encoding: the stem runs on the refill
   chunk, `refill` rows in input order, and each new sample keeps its stem output for all its
   timesteps; event inputs read frame t of each slot's own timestep);
3. the stop rule (t, T, z, input index) -> bool [B] marks the slots that stop now (or reach T);
   their prediction, exit timestep and z are written into per-input device buffers (a scatter
   whose free rows go to a spare row N), and they leave their slots free for the next step.

Every tensor keeps its shape and address from step to step, so the step compiles with
`torch.compile(fullgraph=True)` and replays as a CUDA graph. Empty slots compute garbage rows
that nothing reads. The host reads `progress` (inputs taken, slots busy) only when the engine
asks, every `engine.sync_every` steps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

# stop rule: (1-based timestep t [B], T, accumulated logits z [B, K], input index [B]) -> bool [B]
StopRule = Callable[[torch.Tensor, int, torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class SlotState:
    """The slots and the per-input outputs, all device tensors updated in place by `SlotStep`.
    `z`, `enc` and the outputs' logits are allocated by the first step, which sees their shapes."""

    idx: torch.Tensor  # long [B]: input index of each slot's sample, -1 when empty
    t: torch.Tensor  # long [B]: timesteps its sample has run (0: empty)
    fresh: torch.Tensor  # bool [B]: slots refilled at this step (the neurons' `fresh` mask)
    next: torch.Tensor  # long []: inputs taken so far
    prediction: torch.Tensor  # long [N + 1] per input (row N: where free slots write)
    exit_t: torch.Tensor  # long [N + 1]
    z: torch.Tensor | None = None  # [B, K]
    enc: torch.Tensor | None = None  # [B + 1, ...]: stem output of each slot's sample (direct encoding)
    logits: torch.Tensor | None = None  # [N + 1, K]
    eager_steps: int = 0  # steps run eagerly so far (the engine compiles or captures only after two)

    @classmethod
    def empty(cls, slots: int, n: int, device: torch.device) -> "SlotState":
        long = {"dtype": torch.long, "device": device}
        return cls(torch.full((slots,), -1, **long), torch.zeros(slots, **long), torch.zeros(slots, dtype=torch.bool,
                   device=device), torch.zeros((), **long), torch.zeros(n + 1, **long), torch.zeros(n + 1, **long))

    def restart(self) -> None:
        """Every slot empty and no input taken, in place (addresses kept for a captured graph)."""
        self.idx.fill_(-1)
        self.t.zero_()
        self.fresh.zero_()
        self.next.zero_()

    def progress(self) -> torch.Tensor:
        """[inputs taken, busy slots], one device tensor: what the host reads at a sync."""
        return torch.stack([self.next, (self.idx >= 0).sum()])

    def busy_first(self) -> torch.Tensor:
        """Slot order with the busy slots first (stable): for moving them into fewer slots."""
        return torch.argsort((self.idx < 0).to(torch.int8), stable=True)

    def move_into(self, other: "SlotState", order: torch.Tensor) -> None:
        """Copy the slots `order` (busy ones, then empty ones up to other's size) into `other`,
        which has fewer slots; the per-input outputs are shared."""
        b = other.idx.shape[0]
        for name in ("idx", "t", "z", "enc"):
            src = getattr(self, name)
            if src is not None:
                rows = src[order[:b]]
                if name == "enc":  # and its spare row
                    rows = torch.cat([rows, src[-1:]])
                dst = getattr(other, name)
                if dst is None:
                    setattr(other, name, rows.clone())
                else:
                    dst.copy_(rows)
        other.fresh.zero_()
        other.next.copy_(self.next)
        other.prediction, other.exit_t, other.logits = self.prediction, self.exit_t, self.logits


def has_layout(model: nn.Module) -> bool:
    """The SpikingNetwork layout (stem / stem_act / layers / head, models/base.py)."""
    return all(hasattr(model, a) for a in ("stem", "stem_act", "layers", "head"))


class SlotStep:
    """The step above for one model, horizon T and stop rule. `hook(rows)`, when given (the op
    counter, eager only), is called with the mask of real rows before the stem chunk and before
    the network, so that garbage rows are not counted."""

    def __init__(self, model: nn.Module, T: int, stop: StopRule, refill: int):
        self.model, self.T, self.stop, self.refill = model, T, stop, refill
        self.event = bool(getattr(model, "event", False))
        self.layout = has_layout(model)
        self.direct = self.layout and not self.event  # the stem runs once per sample

    def network(self, inp: torch.Tensor) -> torch.Tensor:
        if self.layout:
            m = self.model
            enc = inp if self.direct else m.stem(inp)
            return m.head(m.layers(m.stem_act(enc)))
        inp = inp.unsqueeze(1) if self.event else inp
        return self.model(inp, 1).reshape(inp.shape[0], -1)

    def __call__(self, st: SlotState, x: torch.Tensor, hook: Callable[[torch.Tensor], None] | None = None,
                 chunk: int | None = None) -> None:
        """One step. `chunk` (eager only): the number of inputs that enter now, when the caller
        has read it (on a CPU a read costs nothing): the stem then runs on exactly those rows,
        none at a step where no slot is refilled; None: the fixed chunk `refill` (static shapes)."""
        n, slots = x.shape[0], st.idx.shape[0]
        chunk = min(self.refill, slots) if chunk is None else chunk
        free = st.idx < 0
        rank = torch.cumsum(free.long(), 0) - 1  # the k-th free slot takes the k-th next input
        left = n - st.next
        take = free & (rank < chunk) & (rank < left)
        idx = torch.where(take, st.next + rank, st.idx)
        busy = idx >= 0
        t = (torch.where(take, 0, st.t) + 1) * busy
        st.fresh.copy_(take)
        if self.direct and chunk == 0:  # nothing enters: every slot keeps its stem output
            inp = st.enc[:slots]
        elif self.direct:  # the stem on the chunk of next inputs; row j goes to the slot of rank j
            positions = torch.arange(chunk, device=x.device)
            if hook is not None:
                hook(positions < torch.minimum(free.sum(), left))
            new = self.model.stem(x[torch.clamp(st.next + positions, max=n - 1)])
            if st.enc is None:  # one spare row (index `slots`) takes the chunk rows no slot takes
                st.enc = new.new_zeros(slots + 1, *new.shape[1:])
            dest = torch.full((chunk + 1,), slots, dtype=torch.long, device=x.device)
            dest.index_put_((torch.where(take, rank, chunk),), torch.arange(slots, device=x.device))
            st.enc.index_put_((dest[:chunk],), new)
            inp = st.enc[:slots]
        elif self.event:  # frame t of each slot's own timestep
            inp = x[idx.clamp(min=0), (t - 1).clamp(0, x.shape[1] - 1)]
        else:
            inp = x[idx.clamp(min=0)]
        if hook is not None:
            hook(busy)
        o = self.network(inp).float()
        z = o if st.z is None else torch.where(take.unsqueeze(1), o, st.z + o)
        stop = busy & (self.stop(t.clamp(min=1), self.T, z, idx.clamp(min=0)) | (t >= self.T))
        target = torch.where(stop, idx, n)
        if st.logits is None:
            st.logits = z.new_zeros(n + 1, z.shape[1])
        st.prediction.index_put_((target,), z.argmax(-1))
        st.exit_t.index_put_((target,), t)
        st.logits.index_put_((target,), z)
        st.idx.copy_(torch.where(stop, -1, idx))
        st.t.copy_(t)
        st.next.add_(take.sum())
        if st.z is None:
            st.z = z
        else:
            st.z.copy_(z)
