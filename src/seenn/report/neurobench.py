"""NeuroBench's vocabulary in the tables and the report: its metrics per method beside the
project's own operation counts on the same samples, and where the two counts differ, in words
computed from the numbers."""

from __future__ import annotations

import pandas as pd

COLUMNS = ["method", "samples", "nb_accuracy", "nb_activation_sparsity", "nb_connection_sparsity", "nb_footprint_bytes",
           "nb_effective_ACs", "nb_effective_MACs", "nb_dense", "ACs", "MACs", "ACs_on_analog_input_layers"]


def neurobench_table(result: dict) -> pd.DataFrame:
    """One row per method: NeuroBench's results (per sample where NeuroBench averages) and the
    project's ACs and MACs per sample on the same samples."""
    rows = []
    for m in result["methods"]:
        nb, own = m["neurobench"], m["project"]
        syn = nb["SynapticOperations"]
        rows.append({"method": m["method"], "samples": result["samples"], "nb_accuracy": 100 * nb["ClassificationAccuracy"],
                     "nb_activation_sparsity": nb["ActivationSparsity"], "nb_connection_sparsity": nb["ConnectionSparsity"],
                     "nb_footprint_bytes": nb["Footprint"], "nb_effective_ACs": syn["Effective_ACs"],
                     "nb_effective_MACs": syn["Effective_MACs"], "nb_dense": syn["Dense"], "ACs": own["ACs"],
                     "MACs": own["MACs"], "ACs_on_analog_input_layers": own["ACs_on_analog_input_layers"],
                     "analog_input_layers": ", ".join(own["analog_input_layers"])})
    return pd.DataFrame(rows)


def explanation(df: pd.DataFrame) -> str:
    """Why NeuroBench's synaptic operations differ from the project's counts, with this run's numbers."""
    r = df.iloc[-1]
    gap = r["ACs"] - r["ACs_on_analog_input_layers"] - r["nb_effective_ACs"]
    return (f"NeuroBench counts a layer's operations as accumulates only when every input is -1, 0 or 1, and as "
            f"multiply-accumulates on each nonzero input otherwise. Here the layers with other inputs are "
            f"{r['analog_input_layers']}: the encoding layer on the image, and the layers that read average-pooled "
            f"spikes. The project counts the encoding layer as MACs too, but a pooled input as the spikes that entered "
            f"the pool, one AC each per synapse (a pooled value is a sum of spikes: the work stays event-driven). "
            f"So NeuroBench's effective ACs are the project's ACs minus those it counts on the pooled layers: for "
            f"{r['method']}, {r['ACs']:,.0f} - {r['ACs_on_analog_input_layers']:,.0f} = "
            f"{r['ACs'] - r['ACs_on_analog_input_layers']:,.0f} against NeuroBench's {r['nb_effective_ACs']:,.0f} per "
            f"sample ({'the same' if abs(gap) < 0.5 else f'{gap:+,.0f} apart'}); its effective MACs add one MAC per "
            "nonzero pooled value per synapse to the encoding layer's. 'Dense' counts every synapse of every layer at "
            "every timestep run, as if no input were zero.")
