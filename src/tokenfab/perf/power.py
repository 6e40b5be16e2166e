"""GPU power while serving, by load and clock, throughput under a power cap, and energy per token.

Board power sits between a serving floor and the TDP. While a model is served the board never drops to its
idle reading: clocks stay up, HBM is refreshed and kernels are launched in the gaps between them, so the
floor is

.. math:: P_f = P_{idle} + s\\,(P_{TDP} - P_{idle})

(or the measured serving floor where one is sourced, ~450 W on B200). Tensor-core and HBM activity add
shares of the headroom above it:

.. math::
    P = P_f + (P_{TDP} - P_f)\\,\\min\\!\\left(1,\\; w_c\\,u_c\\,f^{\\gamma-1} + w_m\\,u_m\\right)

with :math:`u_c` the share of the step the tensor cores are busy (compute time at the calibrated sustained
rate over step time, at nominal clock), :math:`u_m` the share HBM is busy, :math:`f` the SM clock relative to
nominal and :math:`\\gamma` the DVFS exponent (dynamic power :math:`\\propto f V^2` with voltage roughly
following clock, so energy per FLOP :math:`\\propto f^{\\gamma-1}`). Memory-bound decode at small batch keeps
:math:`u_c` low and draws well below TDP; prefill keeps :math:`u_c` high and reaches TDP, where the GPU's own
limit clamps the clock. :math:`s, w_c, w_m` are fitted per architecture to public measured board power
(``catalog/data/power-measurements.yaml``, ``scripts/fit_power.py``).

A cap :math:`P_{cap} \\le P_{TDP}` lowers :math:`f` until :math:`P \\le P_{cap}`. Compute time scales as
:math:`1/f` and HBM time does not, so decode stays nearly flat down to a deep cap and prefill slows with
the clock.

Energy per token is given on three named bases (`energy_per_token_bases`): the board alone; the node
(board plus each GPU's share of CPUs, memory, NICs, fans and NVSwitches); and the facility (node plus the
GPU's share of the scale-out network, divided by the power chain's conversion efficiency, times the cooling
and other overhead that makes up the PUE).

References
----------
.. [1] Samsi et al., "From Words to Watts: Benchmarking the Energy Costs of LLM Inference",
       arXiv:2310.03003 (power caps to ~70 % TDP cost a few % latency).
.. [2] NVIDIA technical blog, workload power profiles on Blackwell (up to 15 % energy at >= 97 % perf).
.. [3] Chung et al., "The ML.ENERGY Benchmark", arXiv:2505.06371; ML.ENERGY Leaderboard v3.0 (Dec 2025).
.. [4] ISO/IEC 30134-2 (PUE = facility energy / IT energy; conversion losses and cooling are inside it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from tokenfab.catalog.models import Gpu
from tokenfab.catalog.perf_models import PowerModel

if TYPE_CHECKING:
    from tokenfab.catalog.load import Catalog
    from tokenfab.catalog.models import System
    from tokenfab.units import Floats


def serving_floor_w(
    idle_power_w: float, tdp_w: float, floor_fraction: float, measured_floor_w: float | None = None
) -> float:
    """Lowest board power while a model is served [W]: the measured floor, else
    :math:`P_{idle} + s\\,(P_{TDP} - P_{idle})`."""
    if measured_floor_w is not None:
        return float(min(measured_floor_w, tdp_w))
    return float(idle_power_w + floor_fraction * (tdp_w - idle_power_w))


def gpu_power_w(
    compute_utilisation: Floats,
    memory_utilisation: Floats,
    floor_power_w: float,
    tdp_w: float,
    compute_weight: float,
    memory_weight: float,
    clock_fraction: Floats = 1.0,
    clock_power_exponent: float = 2.5,
) -> np.ndarray:
    """Board power at a given load and clock [W] (equation in the module docstring).

    Parameters
    ----------
    compute_utilisation : array-like
        Share of time the tensor cores are busy, at nominal clock [-].
    memory_utilisation : array-like
        Share of time HBM is busy [-].
    floor_power_w, tdp_w : float
        Serving floor and rated board power [W].
    compute_weight, memory_weight : float
        Dynamic power with tensor cores (HBM) busy all the time, as shares of :math:`P_{TDP} - P_f` [-].
    clock_fraction : array-like
        SM clock relative to nominal [-].
    clock_power_exponent : float
        :math:`\\gamma` [-].
    """
    f = np.asarray(clock_fraction, dtype=float)
    dynamic = compute_weight * np.asarray(compute_utilisation) * f ** (clock_power_exponent - 1.0) + (
        memory_weight * np.asarray(memory_utilisation)
    )
    return floor_power_w + (tdp_w - floor_power_w) * np.minimum(dynamic, 1.0)


def step_time_at_clock_s(
    compute_time_s: Floats, memory_time_s: Floats, other_time_s: Floats, clock_fraction: Floats = 1.0
) -> np.ndarray:
    """Step time when the SM clock runs at `clock_fraction` of nominal [s].

    Operator groups are stacked on axis 0 of the compute and memory times:

    .. math:: t(f) = \\sum_{op} \\max(t_{c,op} / f,\\; t_{m,op}) + t_o
    """
    per_op = np.maximum(np.asarray(compute_time_s) / clock_fraction, np.asarray(memory_time_s))
    step_s: np.ndarray = per_op.sum(axis=0) + other_time_s
    return step_s


def capped_clock_fraction(
    compute_time_s: Floats,
    memory_time_s: Floats,
    other_time_s: Floats,
    floor_power_w: float,
    tdp_w: float,
    power_cap_w: float,
    compute_weight: float,
    memory_weight: float,
    clock_power_exponent: float,
    min_clock_fraction: float = 0.3,
    iterations: int = 24,
) -> np.ndarray:
    """Highest clock fraction :math:`f \\le 1` whose power stays under ``min(cap, TDP)`` (bisection).

    `compute_time_s` and `memory_time_s` stack the operator groups on axis 0; the step time at clock
    :math:`f` is :math:`t(f) = \\sum_{op} \\max(t_{c,op} / f, t_{m,op}) + t_o`, the tensor cores are busy
    :math:`\\sum t_c / f` of it and HBM :math:`\\sum t_m` (busy seconds at nominal clock).
    """
    cap = min(power_cap_w, tdp_w)
    tc = np.asarray(compute_time_s, dtype=float)
    tm = np.asarray(memory_time_s, dtype=float)
    to = np.asarray(other_time_s, dtype=float)
    compute_busy = tc.sum(axis=0)
    memory_busy = tm.sum(axis=0)

    def power(f: np.ndarray) -> np.ndarray:
        t = step_time_at_clock_s(tc, tm, to, f)
        return gpu_power_w(
            compute_busy / t,
            memory_busy / t,
            floor_power_w,
            tdp_w,
            compute_weight,
            memory_weight,
            f,
            clock_power_exponent,
        )

    shape = np.broadcast_shapes(tc.shape[1:], tm.shape[1:], to.shape)
    lo = np.full(shape, min_clock_fraction)
    hi = np.ones(shape)
    ok_at_full = power(hi) <= cap
    for _ in range(iterations):
        mid = 0.5 * (lo + hi)
        fits = power(mid) <= cap
        lo = np.where(fits, mid, lo)
        hi = np.where(fits, hi, mid)
    return np.where(ok_at_full, 1.0, lo)


def power_model_for(catalog: Catalog, architecture: str) -> PowerModel:
    """The power model of `architecture`, or the ``default`` entry."""
    models = catalog.all("power_models", PowerModel)
    for pm in models:
        if pm.architecture == architecture:
            return pm
    for pm in models:
        if pm.architecture == "default":
            return pm
    raise KeyError(f"no power model for architecture {architecture!r} and no 'default' entry")


def step_clock_and_power(
    compute_time_s: Floats,
    memory_time_s: Floats,
    other_time_s: Floats,
    gpu: Gpu,
    pm: PowerModel,
    clock_power_exponent: float,
    cap_w: float | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Clock fraction, step time [s] and board power [W] of steps on `gpu` under an optional cap.

    Takes the per-operator compute and memory times at nominal clock (stacked on axis 0) and the rest of
    the step (collectives, launch and scheduling overhead), during which the board draws its serving floor.
    """
    floor = serving_floor_w(gpu.idle_power_w, gpu.tdp_w, pm.floor_fraction, gpu.serving_floor_w)
    cap = gpu.tdp_w if cap_w is None else min(cap_w, gpu.tdp_w)
    tc = np.asarray(compute_time_s, dtype=float)
    tm = np.asarray(memory_time_s, dtype=float)
    args = (floor, gpu.tdp_w, cap, pm.compute_weight, pm.memory_weight, clock_power_exponent)
    clock = capped_clock_fraction(tc, tm, other_time_s, *args)
    t = step_time_at_clock_s(tc, tm, other_time_s, clock)
    power = gpu_power_w(
        tc.sum(axis=0) / t,
        tm.sum(axis=0) / t,
        floor,
        gpu.tdp_w,
        pm.compute_weight,
        pm.memory_weight,
        clock,
        clock_power_exponent,
    )
    return clock, t, np.minimum(power, cap)


# ---------------------------------------------------------------- energy per token on three bases


def node_overhead_power_w_per_gpu(
    rack_power_nominal_kw: float, gpus_per_rack: int, gpu_tdp_w: float
) -> float:
    """A GPU's share of everything else in its node and rack (CPUs, memory, NICs, fans, NVSwitch trays,
    power-shelf losses) at nominal load [W].

    .. math:: P_{host} = \\max\\!\\left(\\frac{P_{rack,nom}}{N_{GPU}} - P_{TDP},\\; 0\\right)

    The rack's nominal draw is the system's sourced full-load figure, so the share is what the rack draws
    beyond its GPUs at their rated power.
    """
    return max(rack_power_nominal_kw * 1000.0 / gpus_per_rack - gpu_tdp_w, 0.0)


def network_power_w_per_gpu(
    nics_per_gpu: int, switch_draw_w: float, switch_ports: int, transceiver_w: float, tiers: int = 2
) -> float:
    """A GPU's share of the scale-out network's switches and switch-side optics [W].

    A non-blocking fat tree of `tiers` levels uses :math:`2 t - 1` switch ports per endpoint (one down-port
    per tier, one up-port per tier below the top), each with one transceiver on the switch side (the NIC's own
    optic is in the node):

    .. math:: P_{net} = n_{NIC}\\,(2t - 1)\\left(\\frac{P_{switch}}{N_{ports}} + P_{xcvr}\\right)
    """
    ports = nics_per_gpu * (2 * tiers - 1)
    return ports * (switch_draw_w / switch_ports + transceiver_w)


@dataclass(frozen=True)
class EnergyBases:
    """Energy per output token on three bases, with the power per GPU each one counts [J/tok, W]."""

    board_j_per_token: float
    node_j_per_token: float
    facility_j_per_token: float
    board_w: float
    host_w: float
    network_w: float
    conversion_loss_w: float
    cooling_and_other_w: float
    pue: float
    conversion_efficiency: float

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["bases"] = {
            "board": "GPU board power only (nvidia-smi / ML.ENERGY convention)",
            "node": "board + the GPU's share of CPUs, memory, NICs, fans and NVSwitches (system catalog)",
            "facility": "node + scale-out network share, / power-conversion efficiency, x the rest of the PUE",
        }
        return doc


def energy_per_token_bases(
    board_power_w: float,
    tokens_per_s_per_gpu: float,
    host_power_w: float,
    network_power_w: float,
    pue: float,
    conversion_efficiency: float,
) -> EnergyBases:
    """J per token on the board, node and facility bases for one operating point.

    .. math::
        E_{board} = \\frac{P_{board}}{r}, \\quad E_{node} = \\frac{P_{board} + P_{host}}{r}, \\quad
        E_{fac} = \\frac{(P_{board} + P_{host} + P_{net})\\,\\max(PUE, 1/\\eta)}{r}

    with :math:`r` tokens/s per GPU and :math:`\\eta` the efficiency from grid to IT load (transformers, UPS,
    busway). The PUE already contains the conversion losses [4]_; they are split out as
    :math:`P_{IT}(1/\\eta - 1)` and the rest of the PUE as cooling and other load.
    """
    if not 0 < conversion_efficiency <= 1:
        raise ValueError("conversion_efficiency must be in (0, 1]")
    rate = tokens_per_s_per_gpu if tokens_per_s_per_gpu > 0 else float("nan")
    it_w = board_power_w + host_power_w + network_power_w
    facility_factor = max(pue, 1.0 / conversion_efficiency)
    loss_w = it_w * (1.0 / conversion_efficiency - 1.0)
    facility_w = it_w * facility_factor
    return EnergyBases(
        board_j_per_token=board_power_w / rate,
        node_j_per_token=(board_power_w + host_power_w) / rate,
        facility_j_per_token=facility_w / rate,
        board_w=board_power_w,
        host_w=host_power_w,
        network_w=network_power_w,
        conversion_loss_w=loss_w,
        cooling_and_other_w=facility_w - it_w - loss_w,
        pue=pue,
        conversion_efficiency=conversion_efficiency,
    )


def conversion_efficiency(catalog: Catalog) -> float:
    """Grid-to-IT efficiency of the catalog's default power chain: MV/LV transformer x UPS x busway [-]."""
    from tokenfab.catalog.models import Busway, Transformer, Ups

    mv_lv = [t for t in catalog.all("transformers", Transformer) if t.stage == "mv_lv"]
    ups = catalog.all("ups", Ups)
    busways = catalog.all("busways", Busway)
    eta = 1.0
    chain: list[Sequence[Transformer | Ups | Busway]] = [mv_lv, ups, busways]
    for parts in chain:
        if parts:
            eta *= sorted(parts, key=lambda p: p.name)[0].efficiency
    return eta


def system_overheads_w_per_gpu(
    catalog: Catalog, system: System, gpu: Gpu, fabric_tiers: int = 2
) -> tuple[float, float]:
    """(host, scale-out network) power per GPU of `system` [W]: `node_overhead_power_w_per_gpu` and
    `network_power_w_per_gpu` on the system's default fabric, switch and optics from the catalog."""
    from tokenfab.catalog.models import Switch, Transceiver

    host = node_overhead_power_w_per_gpu(system.rack_power_nominal_kw, system.gpus_per_rack, gpu.tdp_w)
    switches = [s for s in catalog.all("switches", Switch) if s.fabric == system.default_fabric]
    if not switches:
        return host, 0.0
    switch = sorted(switches, key=lambda s: s.name)[0]
    optics = [t for t in catalog.all("transceivers", Transceiver) if t.gbps >= switch.port_gbps]
    optic_w = min(optics, key=lambda t: t.gbps).maximum_draw_w if optics else 0.0
    ports_per_nic = -(-system.scaleout_nic_gbps // switch.port_gbps)
    nics = system.scaleout_nics_per_gpu * ports_per_nic
    return host, network_power_w_per_gpu(nics, switch.maximum_draw_w, switch.ports, optic_w, fabric_tiers)


def system_energy_bases(
    catalog: Catalog, system_name: str, board_power_w: float, tokens_per_s_per_gpu: float, pue: float
) -> EnergyBases:
    """`energy_per_token_bases` for a GPU of the catalog system `system_name`: its host and network shares
    (`system_overheads_w_per_gpu`) and the catalog power chain's `conversion_efficiency`."""
    from tokenfab.catalog.models import System

    system = catalog.typed("systems", system_name, System)
    host_w, network_w = system_overheads_w_per_gpu(catalog, system, catalog.typed("gpus", system.gpu, Gpu))
    return energy_per_token_bases(
        board_power_w, tokens_per_s_per_gpu, host_w, network_w, pue, conversion_efficiency(catalog)
    )
