"""Telemetry of the emulated factory in the formats real equipment emits (Prometheus text, via
``prometheus_client``'s metric families):

* per rack, NVIDIA DCGM-exporter metrics: the exporter's default counter list (`DCGM_COUNTERS_CSV`, the
  exporter's own file) plus the ECC and NVLink error counters (`EXTRA_COUNTERS`), with the exporter's
  labels ``gpu``, ``UUID``, ``pci_bus_id``, ``device``, ``modelName``, ``Hostname`` and
  ``DCGM_FI_DRIVER_VERSION``;
* per inference service, vLLM's ``/metrics`` (names as vLLM v1 exports them, label ``model_name``);
* the facility: utility meter, grid limit, UPS and PDU power, CDU supply/return temperature, flow and
  pump state (``facility_*``, SI units in the names as Prometheus' conventions ask).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.utils import floatToGoString

from tokenfab.emulate.factory import KIND_INFERENCE, KIND_TRAINING, EmulatedFactory
from tokenfab.twin import power

DCGM_COUNTERS_CSV = Path(__file__).parent / "data" / "dcgm-default-counters.csv"
EXTRA_COUNTERS = (
    "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL",
    "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL",
    "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL",
    "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL",
)
"""Counters the exporter ships commented out, enabled here (as operators do) for the fault alerts."""
DRIVER_VERSION = "570.124.06"
"""estimate: the driver version label (any recent data-centre driver)."""
SM_CLOCK_MAX_MHZ = 1965.0
"""estimate: SM boost clock of a Blackwell data-centre GPU [MHz]."""
SM_CLOCK_IDLE_MHZ = 345.0
MEM_CLOCK_MHZ = 3996.0
DCGM_LABELS = ("gpu", "UUID", "pci_bus_id", "device", "modelName", "Hostname", "DCGM_FI_DRIVER_VERSION")
FB_USED_SHARE = {0: 0.005, KIND_TRAINING: 0.92, KIND_INFERENCE: 0.88}
"""estimate: framebuffer share in use by state (weights + KV cache fill inference GPUs) [-]."""


def read_counter_list(
    path: Path = DCGM_COUNTERS_CSV, extra: tuple[str, ...] = EXTRA_COUNTERS
) -> list[tuple[str, str, str]]:
    """(field, type, help) of every counter the exporter reports: uncommented rows, plus `extra`."""
    rows = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        enabled = not line.startswith("#")
        body = line.lstrip("#").strip()
        if not body.startswith("DCGM_FI_"):
            continue
        parts = [p.strip() for p in body.split(",", 2)]
        if len(parts) == 3 and (enabled or parts[0] in extra):
            rows.append((parts[0], parts[1], parts[2]))
    return rows


class _Families:
    """An object with `collect()`, as `generate_latest` wants, over prepared metric families."""

    def __init__(self, families):
        self.families = families

    def collect(self):
        return self.families


def render(families) -> bytes:
    return generate_latest(_Families(families))


class DcgmView:
    """DCGM-exporter metrics of one rack's GPUs."""

    def __init__(self, factory: EmulatedFactory, node_names: list[str], model_name: str, fb_total_mib: float):
        self.f = factory
        self.counters = read_counter_list()
        self.node_names = node_names
        self.model_name = model_name
        self.fb_total_mib = fb_total_mib
        n = factory.n_gpus
        self.uuids = [
            f"GPU-{hashlib.sha1(f'{factory.design.name}/{i}'.encode()).hexdigest()[:8]}-emu" for i in range(n)
        ]
        self._labels: dict[int, str] = {}
        self.pci = [f"00000000:{(0x18 + 0x10 * int(s)) & 0xFF:02X}:00.0" for s in factory.gpu_slot]

    def _values(self, field: str, g: np.ndarray) -> np.ndarray:
        f = self.f
        p = f.gpu_power_w[g]
        util = f.gpu_util[g]
        c = f.counters
        if field == "DCGM_FI_DEV_SM_CLOCK":
            limit = np.maximum(p, f.idle_w)
            frac = np.asarray(
                [
                    power.training_clock_fraction(x, f.train_full_w, f.idle_w, f.fig.clock_power_exponent)
                    for x in limit
                ]
            )
            return np.where(util > 0, SM_CLOCK_MAX_MHZ * frac, SM_CLOCK_IDLE_MHZ)
        table = {
            "DCGM_FI_DEV_MEM_CLOCK": lambda: np.full(len(g), MEM_CLOCK_MHZ),
            "DCGM_FI_DEV_MEMORY_TEMP": lambda: f.gpu_temp_c[g] + 3.0,
            "DCGM_FI_DEV_GPU_TEMP": lambda: f.gpu_temp_c[g],
            "DCGM_FI_DEV_POWER_USAGE": lambda: p,
            "DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION": lambda: f.gpu_energy_mj[g],
            "DCGM_FI_DEV_PCIE_TX_THROUGHPUT": lambda: c["nvlink_bytes"][g] / 4.0e4,
            "DCGM_FI_DEV_PCIE_RX_THROUGHPUT": lambda: c["nvlink_bytes"][g] / 3.0e4,
            "DCGM_FI_DEV_PCIE_REPLAY_COUNTER": lambda: c["pcie_replay"][g],
            "DCGM_FI_DEV_GPU_UTIL": lambda: util,
            "DCGM_FI_DEV_MEM_COPY_UTIL": lambda: util * 0.6,
            "DCGM_FI_DEV_XID_ERRORS": lambda: f.gpu_xid[g].astype(float),
            "DCGM_FI_DEV_FB_USED": lambda: self._fb_used(g),
            "DCGM_FI_DEV_FB_FREE": lambda: self.fb_total_mib - self._fb_used(g),
            "DCGM_FI_DEV_ECC_SBE_VOL_TOTAL": lambda: c["ecc_sbe"][g],
            "DCGM_FI_DEV_ECC_DBE_VOL_TOTAL": lambda: c["ecc_dbe"][g],
            "DCGM_FI_DEV_NVLINK_CRC_FLIT_ERROR_COUNT_TOTAL": lambda: np.floor(c["nvlink_crc_flit"][g]),
            "DCGM_FI_DEV_NVLINK_CRC_DATA_ERROR_COUNT_TOTAL": lambda: np.floor(c["nvlink_crc_data"][g]),
            "DCGM_FI_DEV_NVLINK_REPLAY_ERROR_COUNT_TOTAL": lambda: np.floor(c["nvlink_replay"][g]),
            "DCGM_FI_DEV_NVLINK_RECOVERY_ERROR_COUNT_TOTAL": lambda: np.floor(c["nvlink_recovery"][g]),
            "DCGM_FI_DEV_NVLINK_BANDWIDTH_TOTAL": lambda: c["nvlink_bytes"][g],
        }
        return table.get(field, lambda: np.zeros(len(g)))()

    def _fb_used(self, g: np.ndarray) -> np.ndarray:
        share = np.vectorize(FB_USED_SHARE.get)(self.f.gpu_kind[g].astype(int))
        return np.round(share * self.fb_total_mib)

    def _label_text(self, i: int) -> str:
        f = self.f
        slot = int(f.gpu_slot[i])
        values = [
            str(slot),
            self.uuids[i],
            self.pci[i],
            f"nvidia{slot}",
            self.model_name,
            self.node_names[int(f.gpu_node[i])],
            DRIVER_VERSION,
        ]
        return ",".join(f'{k}="{_escape(v)}"' for k, v in zip(DCGM_LABELS, values, strict=True))

    def rack_text(self, rack: int) -> bytes | None:
        """The exporter page of one rack, or None when the whole rack is down (the exporter is silent).

        The page holds thousands of samples per scrape, so each GPU's label set is escaped once (on first
        use) and the page is written line by line in the text format (0.0.4) that `generate_latest`
        writes, with its float formatting (`floatToGoString`)."""
        f = self.f
        with f.lock:
            if f.rack_down[rack]:
                return None
            lo, hi = int(f.rack_first_gpu[rack]), int(f.rack_first_gpu[rack + 1])
            g = np.arange(lo, hi)
            g = g[~f.nodes_off()[f.gpu_node[g]]]  # a node that is down reports nothing
            labels = []
            for i in g.tolist():
                if i not in self._labels:
                    self._labels[i] = self._label_text(i)
                labels.append(self._labels[i])
            out = []
            for field, kind, help_text in self.counters:
                out.append(f"# HELP {field} {help_text}\n# TYPE {field} {kind}\n")
                values = self._values(field, g).tolist()
                out.extend(
                    f"{field}{{{lab}}} {floatToGoString(v)}\n" for lab, v in zip(labels, values, strict=True)
                )
        return "".join(out).encode()


def _escape(value: str) -> str:
    """Label value escaping of the Prometheus text format: backslash, double quote, newline."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def vllm_text(f: EmulatedFactory, service: int) -> bytes:
    """vLLM's /metrics for one service (all its replicas together)."""
    with f.lock:
        svc = f.workload.services[service]
        st = f.services[service]
        labels = ["model_name", "engine"]
        row = [svc.model, "0"]

        def gauge(name, doc, value):
            m = GaugeMetricFamily(name, doc, labels=labels)
            m.add_metric(row, value)
            return m

        def counter(name, doc, value, extra=None):
            m = CounterMetricFamily(name, doc, labels=labels + list(extra or {}))
            m.add_metric(row + list((extra or {}).values()), value)
            return m

        def histogram(name, doc, bounds, buckets, count, total):
            m = HistogramMetricFamily(name, doc, labels=labels)
            pairs = [(floatToGoString(b), float(v)) for b, v in zip(bounds, buckets, strict=True)]
            pairs.append(("+Inf", float(count)))
            m.add_metric(row, pairs, float(total))
            return m

        families = [
            gauge("vllm:num_requests_running", "Number of requests in model execution batches.", st.running),
            gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.", st.backlog),
            gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.", st.kv_usage),
            counter("vllm:prompt_tokens", "Number of prefill tokens processed.", st.prompt_tokens),
            counter("vllm:generation_tokens", "Number of generation tokens processed.", st.generation_tokens),
            counter(
                "vllm:request_success",
                "Count of successfully processed requests.",
                st.requests,
                {"finished_reason": "length"},
            ),
            histogram(
                "vllm:time_to_first_token_seconds",
                "Histogram of time to first token in seconds.",
                st.ttft_bounds_s,
                st.ttft_buckets,
                st.ttft_count,
                st.ttft_sum,
            ),
            histogram(
                "vllm:inter_token_latency_seconds",
                "Histogram of inter-token latency in seconds.",
                st.itl_bounds_s,
                st.itl_buckets,
                st.itl_count,
                st.itl_sum,
            ),
        ]
        slo = GaugeMetricFamily(
            "tokenfab_service_slo_info",
            "The service's latency targets (le labels match its histogram buckets).",
            labels=["model_name", "ttft_le", "itl_le", "objective"],
        )
        slo.add_metric(
            [svc.model, floatToGoString(svc.ttft_target_s), floatToGoString(svc.itl_target_s), "0.99"], 1.0
        )
        families += [slo, gauge("tokenfab_service_gpus", "GPUs serving the service now.", st.gpus)]
    return render(families)


def facility_text(f: EmulatedFactory, site: str, rack_names: list[str]) -> bytes:
    """Utility meter, grid limit, UPS/PDU power and CDUs of the site."""
    with f.lock:
        families = []

        def one(name, doc, labels, rows):
            m = GaugeMetricFamily(name, doc, labels=labels)
            for label_values, value in rows:
                m.add_metric(label_values, float(value))
            families.append(m)

        one(
            "facility_meter_power_watts",
            "Facility draw at the utility meter [W].",
            ["site", "meter"],
            [([site, "utility"], f.facility_kw * 1000.0)],
        )
        one(
            "facility_it_power_watts",
            "IT draw (GPUs, hosts, fabric) [W].",
            ["site"],
            [([site], f.it_kw * 1000.0)],
        )
        one(
            "facility_grid_power_limit_watts",
            "Draw the grid allows now (connection or grid-event cap) [W].",
            ["site"],
            [([site], f.grid_limit_kw * 1000.0)],
        )
        one(
            "facility_grid_event_active",
            "1 while the grid asks the site to shed load.",
            ["site"],
            [([site], 1.0 if f.grid_event_active() else 0.0)],
        )
        one(
            "facility_pue_ratio",
            "Power usage effectiveness used for the facility draw [-].",
            ["site"],
            [([site], f.fig.pue)],
        )
        rack_it_w = np.bincount(f.gpu_rack, weights=f.gpu_power_w, minlength=f.fleet.n_racks)
        host = np.bincount(
            f.gpu_rack,
            weights=np.where(f.gpu_power_w > 0, f.fig.host_w_per_gpu, 0.0),
            minlength=f.fleet.n_racks,
        )
        rack_w = rack_it_w + host
        hall_w = np.bincount(f.rack_hall, weights=rack_w, minlength=len(f.hall_supply_c))
        one(
            "facility_ups_output_power_watts",
            "UPS output power per hall [W].",
            ["site", "hall", "ups"],
            [([site, str(h), f"h{h}-ups"], hall_w[h]) for h in range(len(hall_w))],
        )
        one(
            "facility_pdu_power_watts",
            "Rack PDU power [W].",
            ["site", "hall", "rack"],
            [([site, str(int(f.rack_hall[r])), rack_names[r]], rack_w[r]) for r in range(f.fleet.n_racks)],
        )
        one(
            "facility_rack_power_limit_ratio",
            "Rack power limit as a share of nominal (derating) [-].",
            ["site", "hall", "rack"],
            [
                ([site, str(int(f.rack_hall[r])), rack_names[r]], f.rack_limit_fraction[r])
                for r in range(f.fleet.n_racks)
            ],
        )
        cdu_rows = [
            [site, str(int(h)), f"h{int(h)}-cdu{int(c)}"]
            for h, c in zip(f.cdu_hall, f.cdu_in_hall, strict=True)
        ]
        lab = ["site", "hall", "cdu"]
        one(
            "facility_cdu_supply_temperature_celsius",
            "CDU secondary supply temperature [°C].",
            lab,
            [(r, f.hall_supply_c[int(r[1])]) for r in cdu_rows],
        )
        one(
            "facility_cdu_return_temperature_celsius",
            "CDU secondary return temperature [°C].",
            lab,
            [(r, f.hall_return_c[int(r[1])]) for r in cdu_rows],
        )
        one(
            "facility_cdu_flow_liters_per_minute",
            "CDU secondary flow [L/min].",
            lab,
            [(r, f.cdu_flow_lpm[i] if f.cdu_pump_ok[i] else 0.0) for i, r in enumerate(cdu_rows)],
        )
        one(
            "facility_cdu_pump_running",
            "1 while the CDU's pump runs.",
            lab,
            [(r, 1.0 if f.cdu_pump_ok[i] else 0.0) for i, r in enumerate(cdu_rows)],
        )
        one(
            "facility_cdu_heat_watts",
            "Heat the CDU carries [W].",
            lab,
            [(r, f.cdu_heat_kw[i] * 1000.0) for i, r in enumerate(cdu_rows)],
        )
        one(
            "facility_cdu_required",
            "CDUs the hall needs to carry its design heat (N).",
            ["site", "hall"],
            [([site, str(h)], f.hall_cdus_required[h]) for h in range(len(f.hall_cdus_required))],
        )
    return render(families)
