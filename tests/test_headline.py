"""The headline rows (report.headline): SEENN-I's row is the tolerance rule's, so its energy is
the engine row run at that rule's alpha, whichever label seenn1.calibration gave that row."""

import json

import pytest

from seenn.report.headline import headline_rows


@pytest.mark.parametrize("calibration", ["tolerance", "ltt"])
def test_seenn1_headline_energy_is_the_tolerance_rules(tmp_path, calibration):
    metrics = {"test": {"timesteps": 4, "accuracy_per_t": [90.0, 91.0, 92.0, 93.0], "aet": 1.2, "empirical_aet": 1.1,
                        "oracle_accuracy": 95.0, "oracle_timesteps": 1.1}}
    seenn1 = {"scores": {"confidence": {"test_accuracy": 92.5, "test_avg_timesteps": 1.3}}}
    tolerance_label = "SEENN-I (confidence)" if calibration == "tolerance" else "SEENN-I tolerance (confidence)"
    ltt_label = "SEENN-I certified (confidence)" if calibration == "tolerance" else "SEENN-I (confidence)"
    energy = {"methods": [{"method": "Fixed T=4", "energy_uj": 4.0},
                          {"method": ltt_label, "energy_uj": 1.0, "calibration": "ltt", "score": "confidence"},
                          {"method": tolerance_label, "energy_uj": 2.0, "calibration": "tolerance", "score": "confidence"},
                          {"method": "Conformal (1 - p)", "energy_uj": 3.0, "calibration": "conformal", "score": "one_minus_p"}]}
    inputs = {}
    for role, obj in (("metrics_finetuned", metrics), ("seenn1_finetuned", seenn1), ("energy", energy)):
        (tmp_path / f"{role}.json").write_text(json.dumps(obj))
        inputs[role] = str(tmp_path / f"{role}.json")
    rows = {r["key"]: r for r in headline_rows(inputs)}
    assert rows["seenn1-confidence"]["energy_uJ"] == 2.0 and rows["fixed"]["energy_uJ"] == 4.0
    assert rows["seenn1-confidence"]["avg_timesteps"] == 1.3
