"""NeuroBench (Yik et al., Nature Communications 2025; package `neurobench` 2.3.0) on the project's
engine: its Benchmark with Footprint, ConnectionSparsity, ClassificationAccuracy,
ActivationSparsity and SynapticOperations, the SNN run by the engine at an exit rule, one sample
per slot (so no idle slot computes), the project's neurons registered as NeuroBench activation
modules; beside it, the project's own operation counts (methods/energy.OpCounter) on the same
samples, so the report can say where the two counts differ and why.

NeuroBench's metadata asks for torchaudio, which has no build for this project's torch; its
Benchmark needs none of it, only snntorch (imported at the top of neurobench.benchmarks), so it is
installed without its dependencies (INSTALL)."""

from __future__ import annotations

import torch

from seenn.common.errors import SeennError

INSTALL = "pip install --no-deps neurobench==2.3.0 snntorch==1.0.0"
STATIC = ("Footprint", "ConnectionSparsity")
WORKLOAD = ("ClassificationAccuracy", "ActivationSparsity", "SynapticOperations")


def version() -> str:
    """The installed NeuroBench's version (what the result file records)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("neurobench")
    except PackageNotFoundError:
        _neurobench()  # raises the one-line install error
        return "unknown"


def _neurobench():
    """The NeuroBench classes, or a one-line error naming the install command."""
    try:
        from neurobench.benchmarks import Benchmark
        from neurobench.metrics import static, workload
        from neurobench.models import NeuroBenchModel
    except ImportError as e:
        raise SeennError(f"neurobench cannot be imported ({e}): install it with `{INSTALL}` "
                         "(or set neurobench.enabled: false)") from None
    metrics = [[getattr(static, m) for m in STATIC], [getattr(workload, m) for m in WORKLOAD]]
    return Benchmark, NeuroBenchModel, metrics


def run(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, T: int, rule, batch_size: int = 50) -> dict:
    """NeuroBench's results for `model` stopped by `rule` on inputs x (network inputs) and labels y,
    in data batches of `batch_size` (the engine runs each sample in its own slot)."""
    from torch.utils.data import DataLoader, TensorDataset

    from seenn.methods import engine
    from seenn.snn.neurons import StatefulNeuron

    Benchmark, NeuroBenchModel, metrics = _neurobench()

    class EngineModel(NeuroBenchModel):
        """The SNN as NeuroBench calls it: a batch of inputs in, the predicted classes out."""

        def __init__(self, net):
            super().__init__()
            self.net = net
            self.add_activation_module(StatefulNeuron)  # LIF and IF: the spikes ActivationSparsity counts

        def __call__(self, batch):
            return engine.run(self.net, batch, T, rule, batch_size=1).prediction.to(batch.device)

        def __net__(self):
            return self.net

    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size)
    with torch.no_grad():
        results = Benchmark(EngineModel(model), loader, [], [], metrics).run(quiet=True)
    return {k: (dict(v) if isinstance(v, dict) else float(v)) for k, v in results.items()}


def project_counts(model: torch.nn.Module, x: torch.Tensor, T: int, rule) -> dict:
    """The project's own per-sample counts on the same samples, one sample at a time as NeuroBench
    ran them (methods/energy.OpCounter, as the energy stage counts): ACs, MACs, the average
    timesteps, and the ACs of the layer calls NeuroBench reads as analog (some input outside
    {-1, 0, 1}: it counts MACs there), with the names of those layers."""
    from seenn.methods import engine
    from seenn.methods.energy import OpCounter

    layers = {m: name or "input" for name, m in model.named_modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))}
    on_analog, analog_layers, pending = 0, set(), {}
    exits = []
    with OpCounter(model) as counter:
        def layer_acs(name: str) -> int:
            return sum(v[0] for (layer, _), v in counter.ops.items() if layer == name)

        def before(module, args):  # runs before the counter's own hook (prepend): its count for this call comes after
            v = args[0]
            pending[module] = (bool(((v != 0) & (v != 1) & (v != -1)).any()), layer_acs(layers[module]))

        def after(module, args, out):
            nonlocal on_analog
            analog, acs = pending.pop(module)
            if analog:
                analog_layers.add(layers[module])
                on_analog += layer_acs(layers[module]) - acs

        handles = [h for m in layers for h in (m.register_forward_pre_hook(before, prepend=True),
                                               m.register_forward_hook(after))]
        try:
            for i in range(x.shape[0]):
                exits.append(engine.run(model, x[i : i + 1], T, rule, counter=counter).exit_t)
        finally:
            for h in handles:
                h.remove()
    acs, macs = counter.totals()
    n = x.shape[0]
    return {"ACs": acs / n, "MACs": macs / n, "avg_timesteps": float(torch.cat(exits).double().mean()),
            "analog_input_layers": [name for name in layers.values() if name in analog_layers],
            "ACs_on_analog_input_layers": on_analog / n}
