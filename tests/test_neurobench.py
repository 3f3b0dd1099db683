"""NeuroBench 2.3.0 on the engine (methods/neurobench.py): its Benchmark runs with the project's
neurons as activation modules, its accuracy is the engine's, and its effective ACs are exactly the
project's ACs less those on the layers NeuroBench reads as analog (the report's explanation)."""

import builtins

import pytest
import torch
from test_engine import tiny

from seenn.common.errors import SeennError
from seenn.methods import engine
from seenn.methods import neurobench as nb
from seenn.methods.exits import FixedT, Seenn1
from seenn.report.neurobench import explanation, neurobench_table

pytest.importorskip("neurobench", reason=nb.INSTALL)


@pytest.mark.parametrize("rule", [FixedT(), Seenn1("confidence", 0.5)], ids=["fixed", "seenn1"])
def test_neurobench_counts_are_the_projects_less_the_pooled_layers(rule):
    model = tiny()
    torch.manual_seed(1)
    x, y = torch.randn(24, 1, 12, 12) * 2, torch.randint(0, 10, (24,))
    got = nb.run(model, x, y, 4, rule, batch_size=8)
    own = nb.project_counts(model, x, 4, rule)
    pred = engine.run(model, x, 4, rule, batch_size=1).prediction
    assert got["ClassificationAccuracy"] == pytest.approx(float((pred == y).float().mean()))
    assert 0 < got["ActivationSparsity"] < 1  # the neurons' spikes were seen: they are registered
    syn = got["SynapticOperations"]
    assert syn["Effective_ACs"] == pytest.approx(own["ACs"] - own["ACs_on_analog_input_layers"], abs=1e-6)
    assert own["analog_input_layers"][0] == "stem.0" and "fc" in own["analog_input_layers"]
    assert syn["Effective_MACs"] > own["MACs"]  # the encoding layer's MACs, plus the pooled layers' as MACs
    table = neurobench_table({"samples": 24, "methods": [{"method": "m", "neurobench": got, "project": own}]})
    assert "against NeuroBench's" in explanation(table) and "(the same)" in explanation(table)


def test_without_neurobench_the_stage_names_the_install_line(monkeypatch):
    real = builtins.__import__

    def no_neurobench(name, *args, **kw):
        if name.startswith("neurobench"):
            raise ImportError("No module named 'neurobench'")
        return real(name, *args, **kw)

    monkeypatch.setattr(builtins, "__import__", no_neurobench)
    with pytest.raises(SeennError, match="pip install --no-deps neurobench==2.3.0 snntorch==1.0.0"):
        nb.run(tiny(), torch.zeros(1, 1, 12, 12), torch.zeros(1, dtype=torch.long), 2, FixedT())
