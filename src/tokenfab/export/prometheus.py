"""Prometheus and Alertmanager configuration generated from a design (`tokenfab export prometheus`).

Scrape jobs (one target per rack's DCGM exporter, per inference service's vLLM endpoint, the facility
meters and CDUs, the control plane and the emulator), the rule files (`tokenfab.export.prometheus_rules`)
and an Alertmanager configuration whose webhook posts to the control plane with a bearer token
(``http_config.authorization.credentials_file``).

Scale path: with ``per_hall``, one Prometheus per hall scrapes only its hall's racks (and evaluates the
rules), and a global Prometheus federates the recorded series (``/federate`` with ``match[]`` on the
``tokenfab:`` and ``slo:`` series) plus the facility series; ``docs/ops.md`` sizes it for a 1 GW site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from tokenfab.blueprint.design import Design
from tokenfab.export.prometheus_rules import duration, rule_files
from tokenfab.names import inventory

FEDERATE_MATCH = (
    '{__name__=~"tokenfab:.*"}',
    '{__name__=~"slo:.*"}',
    '{__name__=~"facility_.*"}',
    '{__name__="ALERTS"}',
)


@dataclass(frozen=True)
class Endpoints:
    """Where the telemetry and the control plane listen, and how Prometheus and Alertmanager run."""

    emulator: str = "127.0.0.1:9400"
    control: str = "127.0.0.1:8000"
    alertmanager: str = "127.0.0.1:9093"
    control_token_file: str = "control-token"
    scrape_interval_s: float = 15.0
    evaluation_interval_s: float = 15.0
    dcgm_scrape_interval_s: float | None = None
    group_wait_s: float = 30.0
    group_interval_s: float = 5 * 60.0
    repeat_interval_s: float = 4 * 3600.0
    time_scale: float = 1.0


def scrape_configs(
    design: Design, services: list[tuple[str, str]], ep: Endpoints, halls: list[int] | None = None
) -> list[dict]:
    """Scrape jobs; `halls` limits the DCGM targets to those halls (one Prometheus per hall)."""
    inv = inventory(design)
    rack_hall = inv.rack_hall
    dcgm = []
    for r, name in enumerate(inv.rack_names):
        h = int(rack_hall[r])
        if halls is not None and h not in halls:
            continue
        dcgm.append(
            {
                "targets": [ep.emulator],
                "labels": {
                    "__metrics_path__": f"/dcgm/rack/{r}/metrics",
                    "rack": name,
                    "rack_id": str(r),
                    "hall": str(h),
                },
            }
        )
    dcgm_job = {"job_name": "dcgm", "static_configs": dcgm}
    if ep.dcgm_scrape_interval_s:
        dcgm_job["scrape_interval"] = duration(ep.dcgm_scrape_interval_s)
        dcgm_job["scrape_timeout"] = duration(min(ep.dcgm_scrape_interval_s, 10.0))
    jobs: list[dict[str, Any]] = [dcgm_job]
    if halls is None or 0 in halls:
        jobs.append(
            {
                "job_name": "vllm",
                "static_configs": [
                    {
                        "targets": [ep.emulator],
                        "labels": {
                            "__metrics_path__": f"/vllm/{name}/metrics",
                            "service": name,
                            "tenant": tenant,
                        },
                    }
                    for name, tenant in services
                ],
            }
        )
        jobs.append(
            {
                "job_name": "facility",
                "metrics_path": "/facility/metrics",
                "static_configs": [{"targets": [ep.emulator]}],
            }
        )
        jobs.append({"job_name": "emulator", "static_configs": [{"targets": [ep.emulator]}]})
        jobs.append(
            {
                "job_name": "tokenfab-control",
                "authorization": {"type": "Bearer", "credentials_file": ep.control_token_file},
                "static_configs": [{"targets": [ep.control]}],
            }
        )
    return jobs


def prometheus_config(
    design: Design,
    services: list[tuple[str, str]],
    ep: Endpoints,
    rule_paths: list[str],
    halls: list[int] | None = None,
) -> dict:
    return {
        "global": {
            "scrape_interval": duration(ep.scrape_interval_s),
            "scrape_timeout": duration(min(ep.scrape_interval_s, 10.0)),
            "evaluation_interval": duration(ep.evaluation_interval_s),
            "external_labels": {
                "factory": design.name,
                **({"hall": ",".join(map(str, halls))} if halls else {}),
            },
        },
        "rule_files": rule_paths,
        "alerting": {"alertmanagers": [{"static_configs": [{"targets": [ep.alertmanager]}]}]},
        "scrape_configs": scrape_configs(design, services, ep, halls),
    }


def federation_config(design: Design, hall_prometheus: list[str], ep: Endpoints) -> dict:
    """The global Prometheus: federates recorded series from each hall's Prometheus."""
    return {
        "global": {
            "scrape_interval": duration(max(ep.scrape_interval_s, 30.0)),
            "evaluation_interval": duration(ep.evaluation_interval_s),
            "external_labels": {"factory": design.name},
        },
        "scrape_configs": [
            {
                "job_name": "federate-halls",
                "honor_labels": True,
                "metrics_path": "/federate",
                "params": {"match[]": list(FEDERATE_MATCH)},
                "static_configs": [{"targets": hall_prometheus}],
            }
        ],
    }


def alertmanager_config(ep: Endpoints) -> dict:
    """Route every alert to the control plane's webhook, authenticated with a control-plane token."""
    return {
        "route": {
            "receiver": "tokenfab-control",
            "group_by": ["alertname", "Hostname", "service", "site", "hall", "cdu"],
            "group_wait": duration(ep.group_wait_s),
            "group_interval": duration(ep.group_interval_s),
            "repeat_interval": duration(ep.repeat_interval_s),
        },
        "receivers": [
            {
                "name": "tokenfab-control",
                "webhook_configs": [
                    {
                        "url": f"http://{ep.control}/api/v1/ops/alerts",
                        "send_resolved": True,
                        "http_config": {
                            "authorization": {"type": "Bearer", "credentials_file": ep.control_token_file}
                        },
                    }
                ],
            }
        ],
    }


def services_of(workload_spec) -> list[tuple[str, str]]:
    """(service, tenant) of a workload's inference services, as the emulator names them."""
    from tokenfab.emulate.workload import SERVING_TENANT

    return [(s.name, SERVING_TENANT) for s in workload_spec.inference.services] if workload_spec else []


def export_files(
    design: Design, services: list[tuple[str, str]], ep: Endpoints, per_hall: bool = False
) -> dict[str, str]:
    """Every file of the export: prometheus.yml (or one per hall + global), rules, alertmanager.yml."""
    dump = lambda doc: yaml.safe_dump(doc, sort_keys=False, width=200)  # noqa: E731
    slowest = max(ep.scrape_interval_s, ep.dcgm_scrape_interval_s or 0.0)
    rules = rule_files(ep.time_scale, 4 * slowest if ep.time_scale > 1 else 0.0)
    files = {f"rules/{name}": text for name, text in rules.items()}
    rule_paths = [f"rules/{name}" for name in rules]
    if per_hall:
        n_halls = sum(len(site.halls) for site in design.sites)
        for h in range(n_halls):
            files[f"prometheus-hall{h}.yml"] = dump(prometheus_config(design, services, ep, rule_paths, [h]))
        targets = [f"prometheus-hall{h}:9090" for h in range(n_halls)]
        files["prometheus-global.yml"] = dump(federation_config(design, targets, ep))
    else:
        files["prometheus.yml"] = dump(prometheus_config(design, services, ep, rule_paths))
    files["alertmanager.yml"] = dump(alertmanager_config(ep))
    return files
