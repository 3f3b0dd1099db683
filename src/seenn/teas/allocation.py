"""Windows per spiking layer from activity at a target overall scaling ratio, and their periodic
adjustment during retraining (TEAS section 3.3). Definitions (the paper leaves them open):

- Overall scaling ratio: rho = sum_l c_l T^l / (T sum_l c_l), the cost-weighted average window
  over the full window T, with c_l the operations one step of layer l's window costs (cost.py:
  the synaptic layers that run at each step of it); c = None weighs layers equally (the plain
  average of the windows, the paper's "averaged time steps"). rho * T = timestep-equivalents.
- Initial allocation: T^l = round(T * (a_l / a_max) ^ gamma) clipped to [1, T], a_l the layer's
  per-neuron activity (activity.LayerActivity.rate). The most active layer keeps T; gamma = 0
  keeps every window at T, gamma = 1 shortens in proportion to activity, larger gamma shortens
  more; a more active layer never gets fewer steps. Among the integer allocations of this family
  (every gamma >= 0, enumerated exactly at the rounding breakpoints) the one whose rho is
  closest to the target is taken, ties to the larger rho. Only as close as the family allows:
  when every layer is equally active, every layer keeps T.
- Adjustment (`teas.adjustment`), read from three sentences of section 3.3: the initial windows
  are "constrained to a target scaling ratio"; steps are removed "based on the spiking activity
  (lower spiking activity is better for shortening the time window)" and adjusted "gradually ...
  until the SNN reaches its objective"; "we only update some of the most active layers during
  this process each iteration". `shorten` (default): retraining starts from the allocation at a
  looser ratio rho_0 = rho + start_slack (1 - rho) (`start_ratio`), and adjustment k of K aims
  at rho_k = rho_0 + (rho - rho_0) k / K (`scheduled_ratio`): it removes one step at a time from
  the least active layer (activity since the last adjustment) that has more than one step and a
  cost, until the ratio meets rho_k; except in the final adjustment only the `layers_per_step`
  least active such layers move, each by at most `max_change` steps (the "gradually" and the
  "some layers" sentences; "most active" contradicts the removal sentence, which we follow).
  Windows never grow, so none exceeds T, and the final one meets rho wherever any layer can
  still shorten (with `top_window` 'full' the most active layer keeps its window). With
  start_slack 0 the initial windows already meet the target and only the rounding gap is
  closed. `reallocate` (the earlier reading): recompute the allocation at rho from the current
  activity and move the `layers_per_step` most active differing layers by at most `max_change`
  toward it, the final adjustment taking it whole: at a fixed ratio windows move only when the
  activity ranking changes."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from seenn.common.errors import SeennError


def _costs(costs: Sequence[float] | None, n: int) -> np.ndarray:
    c = np.ones(n) if costs is None else np.asarray(costs, dtype=np.float64)
    if c.shape != (n,) or (c < 0).any() or not c.sum() > 0:
        raise SeennError(f"layer costs must be {n} non-negative numbers with a positive sum, got {costs!r}")
    return c


def scaling_ratio(windows: Sequence[int], costs: Sequence[float] | None, T: int) -> float:
    """rho = sum_l c_l T^l / (T sum_l c_l)."""
    c = _costs(costs, len(windows))
    return float((c * np.asarray(windows, dtype=np.float64)).sum() / (T * c.sum()))


def _check(activity: Sequence[float], T: int, rho: float) -> np.ndarray:
    a = np.asarray(activity, dtype=np.float64)
    if a.ndim != 1 or a.size == 0 or (a < 0).any() or not a.max() > 0 or not np.isfinite(a).all():
        raise SeennError(f"activity must be non-negative per-layer numbers, not all zero, got {activity!r}")
    if not isinstance(T, int) or T < 1:
        raise SeennError(f"the full window T must be an integer >= 1, got {T!r}")
    if not 0 < rho <= 1:
        raise SeennError(f"the target scaling ratio must be in (0, 1], got {rho}")
    return a


def _windows(r: np.ndarray, gammas: np.ndarray, T: int) -> np.ndarray:
    """[G, L] windows round(T r^gamma) clipped to [1, T] (0^gamma = 0 for gamma > 0)."""
    with np.errstate(divide="ignore"):
        w = T * np.power(r[None, :], gammas[:, None])
    w[:, r == 0] = np.where(gammas[:, None] > 0, 0.0, float(T))
    return np.clip(np.floor(w + 0.5), 1, T).astype(np.int64)


def allocate(activity: Sequence[float], costs: Sequence[float] | None, T: int, rho: float) -> list[int]:
    """The initial allocation at target ratio `rho` (see the module docstring)."""
    a = _check(activity, T, rho)
    c = _costs(costs, a.size)
    r = a / a.max()
    inner = r[(r > 0) & (r < 1)]
    ks = np.arange(1, T)
    if inner.size and ks.size:  # gamma where T r^gamma = k + 0.5: a window's rounding changes there
        br = np.unique((np.log((ks[None, :] + 0.5) / T) / np.log(inner[:, None])).ravel())
        gammas = np.concatenate([[0.0], (br[:-1] + br[1:]) / 2, [br[-1] * 2 + 1]])
    else:
        gammas = np.array([0.0, 1.0])
    W = _windows(r, gammas, T)
    ratios = (W * c).sum(1) / (T * c.sum())
    best = np.lexsort((-ratios, np.abs(ratios - rho)))[0]
    return [int(w) for w in W[best]]


TOP_WINDOW = ("full", "scale")  # teas.top_window: what happens when the rule cannot reach the target ratio


def allocate_to_ratio(activity: Sequence[float], costs: Sequence[float] | None, T: int, rho: float,
                      top_window: str = "full") -> list[int]:
    """`allocate`, then with `top_window` 'scale' and a ratio still above the target (the most
    active layer keeps T, so a few-layer network cannot go below (T + 1) / (T L) at equal costs),
    every window scaled by one factor f in [0, 1] (T^l = round(f T^l) clipped to [1, T]), the f
    whose ratio is closest to the target (ties to the larger ratio); 'full' keeps the rule's."""
    if top_window not in TOP_WINDOW:
        raise SeennError(f"teas.top_window must be one of {TOP_WINDOW}, got {top_window!r}")
    w = allocate(activity, costs, T, rho)
    if top_window == "full" or scaling_ratio(w, costs, T) <= rho:
        return w
    c = _costs(costs, len(w))
    fs = np.linspace(0.0, 1.0, 1001)
    W = np.clip(np.floor(np.asarray(w, dtype=np.float64)[None, :] * fs[:, None] + 0.5), 1, T).astype(np.int64)
    ratios = (W * c).sum(1) / (T * c.sum())
    best = np.lexsort((-ratios, np.abs(ratios - rho)))[0]
    return [int(v) for v in W[best]]


def adjust(windows: Sequence[int], activity: Sequence[float], costs: Sequence[float] | None, T: int, rho: float,
           layers_per_step: int = 2, max_change: int = 1, final: bool = False, top_window: str = "full") -> list[int]:
    """One periodic adjustment of `windows` toward the allocation of the current `activity`."""
    target = allocate_to_ratio(activity, costs, T, rho, top_window)
    if len(windows) != len(target):
        raise SeennError(f"{len(windows)} windows for {len(target)} layers of activity")
    if final:
        return target
    if layers_per_step < 1 or max_change < 1:
        raise SeennError(f"layers_per_step and max_change must be >= 1, got {layers_per_step}, {max_change}")
    new = [int(w) for w in windows]
    order = sorted(range(len(new)), key=lambda l: (-float(activity[l]), l))
    moved = 0
    for l in order:
        if new[l] != target[l] and moved < layers_per_step:
            step = max(-max_change, min(max_change, target[l] - new[l]))
            new[l] += step
            moved += 1
    return new


ADJUSTMENTS = ("shorten", "reallocate")  # teas.adjustment (module docstring)


def start_ratio(rho: float, slack: float) -> float:
    """rho_0 = rho + slack (1 - rho): the looser ratio retraining starts from (`shorten`)."""
    if not 0 <= slack <= 1:
        raise SeennError(f"teas.start_slack must be in [0, 1], got {slack}")
    return rho + slack * (1 - rho)


def scheduled_ratio(rho0: float, rho: float, k: int, K: int) -> float:
    """The ratio adjustment k of K aims at: linear from rho0 (k = 0) to rho (k = K)."""
    if not 1 <= k <= K:
        raise SeennError(f"adjustment {k} of {K}: k must be in [1, K]")
    return rho0 + (rho - rho0) * k / K


def shorten(windows: Sequence[int], activity: Sequence[float], costs: Sequence[float] | None, T: int, rho: float,
            layers_per_step: int = 2, max_change: int = 1, final: bool = False, top_window: str = "full") -> list[int]:
    """One `shorten` adjustment: steps off the least active layers until the ratio is at most `rho`
    (see the module docstring)."""
    a = _check(activity, T, rho)
    if len(windows) != a.size:
        raise SeennError(f"{len(windows)} windows for {a.size} layers of activity")
    if top_window not in TOP_WINDOW:
        raise SeennError(f"teas.top_window must be one of {TOP_WINDOW}, got {top_window!r}")
    if layers_per_step < 1 or max_change < 1:
        raise SeennError(f"layers_per_step and max_change must be >= 1, got {layers_per_step}, {max_change}")
    c = _costs(costs, a.size)
    new = [int(w) for w in windows]
    if any(w < 1 or w > T for w in new):
        raise SeennError(f"windows must lie in [1, {T}], got {new}")
    keep = int(np.argmax(a)) if top_window == "full" else -1  # first most active layer keeps its window
    order = [l for l in sorted(range(a.size), key=lambda l: (a[l], l)) if c[l] > 0 and l != keep]
    if not final:
        order = [l for l in order if new[l] > 1][:layers_per_step]
    budget = {l: (T if final else max_change) for l in order}
    while scaling_ratio(new, c, T) > rho + 1e-12:
        movable = [l for l in order if new[l] > 1 and budget[l] > 0]
        if not movable:
            break
        new[movable[0]] -= 1
        budget[movable[0]] -= 1
    return new


def timestep_equivalents(windows: Sequence[int], costs: Sequence[float] | None) -> float:
    """The cost-weighted average window: rho * T (for SEENN, whose layers share the window, the
    average exit timestep)."""
    return scaling_ratio(windows, costs, 1)


__all__ = ["adjust", "allocate", "allocate_to_ratio", "scheduled_ratio", "scaling_ratio", "shorten", "start_ratio",
           "timestep_equivalents"]
