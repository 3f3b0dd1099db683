"""Operation counts from real spike activity, and the energy they cost (paper appendix B).

Every convolution and linear layer is counted while the network runs (forward pre-hooks):

- spike-driven layer (its input holds only zeros and one positive value: the spikes of a
  neuron layer): one accumulate (AC, an addition) per input spike per outgoing synapse;
- any other layer (real-valued input: the encoding layer on the image, the ANN, the policy):
  one multiply-accumulate (MAC) per synapse.

Synapses are counted exactly, borders included: an input element reaches out_channels/groups
outputs at each kernel position that lands inside the output (padding taps are not counted),
computed as a convolution of the per-position spike counts with a kernel of ones. Average
pooling of spikes is linear, so a layer fed by pooled spikes (the downsampling shortcut's
avgpool + 1x1 conv, the classifier after global average pooling) counts each underlying spike
once per synapse it reaches, as if the 1/k^2 were folded into its weights. Max-pooling of
spikes gives spikes (0/1), counted as any spike input. A module with `combine_counts` (the SEW
connect g(A, S), models/sew.py) joins spike trains after the neurons: under ADD an element may
carry 2 or more spikes, and a layer fed by it counts one AC per spike per synapse (the input's
value times its synapses), as if the spikes of A and S arrived separately, which is what an
event-driven chip does with them. Neuron updates, BatchNorm and residual additions are not
counted (the usual convention).

Energy: 0.9 pJ per addition and 4.6 pJ per multiplication; an AC is one addition, a MAC one
multiplication plus one addition (5.5 pJ). Counts are per timestep actually run: the engine
tells the counter which timestep is running, and samples that exited no longer count. The
stem (conv + BN on the static image) runs once per sample and is counted at t = 1."""

from __future__ import annotations

import weakref
from collections import defaultdict

import torch
import torch.nn.functional as F
from torch import nn

ADD_PJ = 0.9
MUL_PJ = 4.6


def energy_pj(acs: float, macs: float) -> float:
    """Energy of `acs` accumulates and `macs` multiply-accumulates, in picojoules."""
    return ADD_PJ * (acs + macs) + MUL_PJ * macs


def spike_counts(x: torch.Tensor) -> torch.Tensor | None:
    """The spike indicator of `x` (float 0/1) when `x` holds only zeros and a single positive
    value (binary spikes, or spikes scaled by a threshold), else None (a real-valued input)."""
    events = (x != 0).to(torch.float32)
    if x.dtype == torch.bool:
        return events
    top = x.amax()
    if bool(top < 0) or not torch.equal(x, events * top):
        return None
    return events


def whole(count: torch.Tensor) -> int:
    """A synapse count (float64, a whole number below 2**53) as an exact Python integer."""
    value = float(count)
    if value != round(value):
        raise ValueError(f"a synapse count is not a whole number: {value!r}")
    return int(value)


def is_spike_tensor(x: torch.Tensor) -> bool:
    return spike_counts(x) is not None


def conv_synapses(counts: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """Per sample [B] (float64): sum over input positions of counts x outgoing synapses.

    `counts` [B, C, H, W] is how many events each input element carries (spike indicator, spikes
    per pooling window, or ones for a dense layer: then the result is its MAC count)."""
    if conv.padding_mode != "zeros":
        raise NotImplementedError(f"op counts for padding_mode={conv.padding_mode!r}")
    b, c, h, w = counts.shape
    g = conv.groups
    per_group = counts.reshape(b, g, c // g, h, w).sum(2, dtype=torch.float64)
    ones = torch.ones(g, 1, *conv.kernel_size, dtype=torch.float64, device=counts.device)
    reach = F.conv2d(per_group, ones, stride=conv.stride, padding=conv.padding, dilation=conv.dilation, groups=g)
    return reach.sum((1, 2, 3)) * (conv.out_channels // g)


def linear_synapses(counts: torch.Tensor, linear: nn.Linear) -> torch.Tensor:
    """Per sample [B] (float64): input events x out_features."""
    return counts.reshape(counts.shape[0], -1).sum(1, dtype=torch.float64) * linear.out_features


def synapses(counts: torch.Tensor, layer: nn.Module) -> torch.Tensor:
    if isinstance(layer, nn.Conv2d):
        return conv_synapses(counts, layer)
    return linear_synapses(counts, layer)


def _pooled_counts(pool: nn.Module, nz: torch.Tensor) -> torch.Tensor | None:
    """Events per pooling window (sum pooling of the events per element `nz`), or None if not exact."""
    if isinstance(pool, nn.AvgPool2d):
        return F.avg_pool2d(nz, pool.kernel_size, pool.stride, pool.padding, pool.ceil_mode, True, divisor_override=1)
    size = pool.output_size if isinstance(pool.output_size, tuple) else (pool.output_size, pool.output_size)
    h, w = nz.shape[-2:]
    oh, ow = (h if size[0] is None else size[0]), (w if size[1] is None else size[1])
    if h % oh or w % ow:
        return None
    return F.avg_pool2d(nz, (h // oh, w // ow), divisor_override=1)


class OpCounter:
    """Counts ACs and MACs of every Conv2d / Linear of `model` while attached (a context manager).

    `dense=True` counts every layer as MACs on every synapse (an ANN or the SEENN-II policy).
    `set_timestep(t)` labels what follows with timestep t, `set_rows(mask)` says which rows of
    the next layers' batches hold a real sample (the engine's busy slots; None: every row); pass
    the counter to `engine.run`. `ops[(layer, t)] = [acs, macs]`, integers summed exactly over the
    samples that ran (every count is a whole number of synapses, so the totals, and the per-inference
    figures divided once at the end, do not depend on the batch size); `kinds[layer]` says which."""

    def __init__(self, model: nn.Module, dense: bool = False):
        self.model, self.dense = model, dense
        self.t = 1
        self.rows: torch.Tensor | None = None
        self.ops: dict[tuple[str, int], list[int]] = defaultdict(lambda: [0, 0])
        self.kinds: dict[str, str] = {}
        self.order: list[str] = []
        self.linear: set[str] = set()  # names of the Linear layers (the classifier)
        self._handles: list = []
        self._pooled: dict[int, tuple[weakref.ref, torch.Tensor]] = {}
        self._dense_cache: dict[tuple, int] = {}

    def set_timestep(self, t: int) -> None:
        self.t = t

    def set_rows(self, rows: torch.Tensor | None) -> None:
        self.rows = rows

    def __enter__(self) -> "OpCounter":
        for name, m in self.model.named_modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                self._handles.append(m.register_forward_pre_hook(self._layer_hook(name or "input")))
                if isinstance(m, nn.Linear):
                    self.linear.add(name or "input")
            elif isinstance(m, (nn.AvgPool2d, nn.AdaptiveAvgPool2d)) and not self.dense:
                self._handles.append(m.register_forward_hook(self._pool_hook))
            elif hasattr(m, "combine_counts") and not self.dense:
                self._handles.append(m.register_forward_hook(self._combine_hook))
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()
        self._pooled.clear()

    def _remember(self, out: torch.Tensor, counts: torch.Tensor) -> None:
        """Record the events per element of `out` (a pooling or connect output) for the layers it feeds."""
        self._pooled = {k: v for k, v in self._pooled.items() if v[0]() is not None}
        self._pooled[id(out)] = (weakref.ref(out), counts)

    def _events(self, x: torch.Tensor) -> torch.Tensor | None:
        """Events per element of `x`: recorded for a pooling / connect output, else its spike indicator."""
        counts = self._pooled_input(x)
        return spike_counts(x) if counts is None else counts

    def _pool_hook(self, module, args, out) -> None:
        x = args[0]
        if x.dim() == 4:
            events = self._events(x)
            counts = None if events is None else _pooled_counts(module, events)
            if counts is not None:
                self._remember(out, counts)

    def _combine_hook(self, module, args, out) -> None:
        a, s = (self._events(t) for t in args[:2])
        if a is not None and s is not None:
            counts = module.combine_counts(a, s, out)
            if counts is not None:
                self._remember(out, counts)

    def _pooled_input(self, x: torch.Tensor) -> torch.Tensor | None:
        for ref, counts in self._pooled.values():
            src = ref()
            if src is not None and (x is src or x._base is src) and x.numel() == counts.numel():
                return counts.reshape(x.shape)
        return None

    def _layer_hook(self, name: str):
        def hook(module, args) -> None:
            x = args[0]
            pooled = None if self.dense else self._pooled_input(x)
            if self.rows is not None and x.shape[0] == self.rows.shape[0]:  # real samples only
                rows = self.rows.to(x.device)
                x, pooled = x[rows], (None if pooled is None else pooled[rows])
                if not x.shape[0]:
                    return
            kind, counts = "MAC", None
            if not self.dense:
                counts = spike_counts(x) if pooled is None else pooled
                if counts is not None:
                    kind = "AC"
            if counts is None:  # dense: every synapse, the same for every sample of this shape
                key = (name, tuple(x.shape[1:]))
                if key not in self._dense_cache:
                    ones = torch.ones((1, *x.shape[1:]), dtype=torch.float32, device=x.device)
                    self._dense_cache[key] = whole(synapses(ones, module)[0])
                total = self._dense_cache[key] * x.shape[0]
            else:
                total = whole(synapses(counts, module).sum())
            if name not in self.kinds:
                self.order.append(name)
            prev = self.kinds.setdefault(name, kind)
            if prev != kind:
                self.kinds[name] = "AC+MAC"
            self.ops[(name, self.t)][0 if kind == "AC" else 1] += total

        return hook

    def totals(self) -> tuple[int, int]:
        """(ACs, MACs) summed over every layer and timestep."""
        acs = sum(v[0] for v in self.ops.values())
        macs = sum(v[1] for v in self.ops.values())
        return acs, macs

    def authors_convention(self, n: int, avg_t: float, max_t: int | None = None) -> tuple[float, float]:
        """Per-inference (ACs, MACs) as the authors' energy counter reports them, without its bug
        (it sums the indices of nonzeros instead of counting them): Conv2d layers only (the
        classifier is left out), and an encoding layer that runs once per sample here counted as
        MACs at every timestep run (`avg_t` per inference). `max_t`: timesteps 1..max_t only."""
        acs = macs = 0
        for (layer, t), (a, m) in self.ops.items():
            if layer not in self.linear and (max_t is None or t <= max_t):
                acs, macs = acs + a, macs + m
        acs, macs = acs / n, macs / n
        first = self.order[0] if self.order else None
        if first is not None and self.kinds[first] == "MAC" and all(t == 1 for (l, t) in self.ops if l == first):
            macs += (avg_t - 1) * self.ops[(first, 1)][1] / n
        return acs, macs

    def per_timestep(self, T: int) -> list[tuple[float, float]]:
        """(ACs, MACs) at each timestep 1..T."""
        out = [[0, 0] for _ in range(T)]
        for (_, t), (a, m) in self.ops.items():
            out[t - 1][0] += a
            out[t - 1][1] += m
        return [tuple(v) for v in out]


def count_run(model: nn.Module, run_batch, x: torch.Tensor, batch_size: int, dense: bool = False):
    """Run `run_batch(xb, counter)` over `x` in batches with an OpCounter attached; returns the
    counter and the joined engine result (None for a plain forward)."""
    from seenn.methods import engine

    results = []
    with OpCounter(model, dense=dense) as counter:
        for i in range(0, x.shape[0], batch_size):
            results.append(run_batch(x[i : i + batch_size], counter))
    joined = None
    if results and isinstance(results[0], engine.EngineResult):
        joined = engine.EngineResult(torch.cat([r.prediction for r in results]), torch.cat([r.exit_t for r in results]),
                                     torch.cat([r.logits for r in results]))
    return counter, joined


CONVENTIONS = (
    "Counted here: every Conv2d and Linear layer while the engine runs; one AC (an addition, 0.9 pJ) per input "
    "spike per outgoing synapse for spike-driven layers, one MAC (4.6 + 0.9 pJ) per synapse for the encoding layer "
    "and non-spiking layers (the ANN, the SEENN-II policy); the classifier counted as ACs on its pooled spikes; the "
    "encoding layer (stem conv on the static image) once per sample (direct encoding: its output is reused at every "
    "timestep); residual additions, BatchNorm, pooling and neuron updates not counted; only the timesteps each "
    "sample actually runs. 'Authors' counting' applies the convention of the SEENN authors' energy counter (without "
    "its bug of summing the indices of nonzero inputs): Conv2d layers only, no classifier, and the first conv "
    "counted as MACs at every timestep run; use it to compare with the paper's energy figures.")


def method_entry(name: str, n: int, acs: float, macs: float, avg_t: float | None, accuracy: float | None,
                 matches: bool | None, authors: tuple[float, float] | None = None) -> dict:
    """One row of energy.json: per-inference counts and energy (this project's counting, and the
    authors' when given as per-inference (ACs, MACs))."""
    acs, macs = acs / n, macs / n
    return {"method": name, "avg_timesteps": avg_t, "accuracy": accuracy, "acs": acs, "macs": macs,
            "additions": acs + macs, "multiplications": macs, "energy_uj": energy_pj(acs, macs) / 1e6,
            "energy_uj_authors": None if authors is None else energy_pj(*authors) / 1e6,
            "engine_matches_posthoc": matches}


def layer_rows(name: str, counter: OpCounter, n: int, max_t: int | None = None) -> list[dict]:
    rows = []
    for layer in counter.order:
        for (lname, t), (a, m) in sorted(counter.ops.items(), key=lambda kv: kv[0][1]):
            if lname == layer and (max_t is None or t <= max_t):
                rows.append({"method": name, "layer": layer, "t": t, "kind": counter.kinds[layer],
                             "acs_per_inference": a / n, "macs_per_inference": m / n})
    return rows
