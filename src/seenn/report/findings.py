"""The summary's findings: three to five sentences computed from the headline numbers (never
typed in): where SEENN-I and SEENN-II sit against fixed T and against the oracle, which of the two
is ahead, and what the energy count says. Every comparison word comes from the numbers' signs."""

from __future__ import annotations

from seenn.methods.catalog import SEENN2
from seenn.methods.published import PUBLISHED

TIE_POINTS = 0.05  # accuracy differences below this many points read as "as accurate as"


def _pts(diff: float, above: str = "above", below: str = "below") -> str:
    """'1.20 points above' / 'below' / 'level with': a signed accuracy difference in words."""
    if abs(diff) < TIE_POINTS:
        return "level with"
    return f"{abs(diff):.2f} points {above if diff > 0 else below}"


def _noun(label: str) -> str:
    """'Fine-tuned SNN' -> 'fine-tuned SNN' inside a sentence; acronyms ('QCFS-converted SNN') stay."""
    return label[0].lower() + label[1:] if label[1:2].islower() else label


def _rows(headline: list[dict], snn: str) -> dict[str, dict]:
    return {r["key"]: r for r in headline if r["snn_key"] == snn}


def _best_seenn1(rows: dict[str, dict]) -> dict | None:
    """SEENN-I's most accurate score (fewest timesteps on a tie), among SEENN-I's own scores (the
    other published rules, run as scores too, are compared in the rule comparison's sentence)."""
    s1 = [r for k, r in rows.items() if k.startswith("seenn1-") and PUBLISHED[k.removeprefix("seenn1-")].name == "SEENN-I"]
    return max(s1, key=lambda r: (r["accuracy"], -r["avg_timesteps"])) if s1 else None


def method_sentence(r: dict, fixed: dict, oracle: dict) -> str:
    """One method against fixed T at max T and against the oracle."""
    T = fixed["max_T"]
    return (f"{r['method']} reaches {r['accuracy']:.2f} % with {r['avg_timesteps']:.2f} timesteps on average "
            f"({T / r['avg_timesteps']:.2f}× fewer than fixed T = {T}), {_pts(r['accuracy'] - fixed['accuracy'])} "
            f"fixed T = {T} and {_pts(r['accuracy'] - oracle['accuracy'])} the oracle, which needs "
            f"{oracle['avg_timesteps']:.2f} timesteps.")


def versus_sentence(s1: dict, s2: dict) -> str:
    """SEENN-II against SEENN-I: which is more accurate, and at what cost."""
    diff = s2["accuracy"] - s1["accuracy"]
    cost = s2["avg_timesteps"] - s1["avg_timesteps"]
    if abs(diff) < TIE_POINTS:
        lead = f"{SEENN2} is as accurate as {s1['method']}"
    else:
        lead = (f"{SEENN2} is {abs(diff):.2f} points {'more' if diff > 0 else 'less'} accurate than {s1['method']}")
    spend = "the same number of" if abs(cost) < 0.005 else f"{abs(cost):.2f} {'more' if cost > 0 else 'fewer'}"
    return f"{lead} and spends {spend} timesteps on average."


def energy_sentence(rows: dict[str, dict], snn_label: str) -> str | None:
    """The cheapest early-exit method's energy against fixed T at max T (counted from spikes)."""
    fixed = rows.get("fixed")
    exits = [r for k, r in rows.items() if (k.startswith("seenn1-") or k == "seenn2") and r.get("energy_uJ")]
    if not fixed or not fixed.get("energy_uJ") or not exits:
        return None
    cheap = min(exits, key=lambda r: r["energy_uJ"])
    ratio = fixed["energy_uJ"] / cheap["energy_uJ"]
    return (f"Counted from the spikes on the {_noun(snn_label)}, {cheap['method']} costs {cheap['energy_uJ']:.3g} µJ per "
            f"inference against {fixed['energy_uJ']:.3g} µJ for fixed T = {fixed['max_T']} "
            f"({ratio:.2f}× {'less' if ratio >= 1 else 'more'}).")


def findings(headline: list[dict], main_snn: str = "finetuned") -> list[str]:
    """Three to five sentences on the SNN that carries SEENN-II (`main_snn`; the direct SNN when
    it is missing), plus one on the direct SNN's SEENN-I when it is the main SNN's starting point."""
    snns = list(dict.fromkeys(r["snn_key"] for r in headline))
    main = main_snn if main_snn in snns else snns[0]
    rows = _rows(headline, main)
    fixed, oracle = rows["fixed"], rows["oracle"]
    label = fixed["model"]
    out = [f"On the {_noun(label)} (test split, {fixed['max_T']} timesteps at most), fixed T = {fixed['max_T']} "
           f"reaches {fixed['accuracy']:.2f} % and the oracle, which stops each sample at its first correct "
           f"timestep, {oracle['accuracy']:.2f} %."]
    s1 = _best_seenn1(rows)
    if s1:
        out.append(method_sentence(s1, fixed, oracle))
    if "seenn2" in rows:
        out.append(method_sentence(rows["seenn2"], fixed, oracle))
        if s1:
            out.append(versus_sentence(s1, rows["seenn2"]))
    e = energy_sentence(rows, label)
    if e:
        out.append(e)
    return out[:5]
