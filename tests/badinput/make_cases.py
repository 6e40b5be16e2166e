"""Write cases.yaml, the bad-input corpus: `python tests/badinput/make_cases.py` (commit both files).

Each case is one command line and, where it needs one, the bad file it reads: a valid base (a compiled
design.json, workload, mix, sweep or spec) with fields set or deleted the way a hand edit would, or a
literal text. test_corpus.py runs every case and expects exit 2, one line on stderr, no traceback and no
file written. Placeholders in args: {file} (the case's file), {design}, {spec}, {workload}, {mix} (valid
inputs), {out} (an output folder that must not appear), {files} (tests/badinput/files), {missing}, {dir}.
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
SIM = ["simulate", "{design}", "-w", "{file}", "-d", "0.01", "-o", "{out}", "--json"]

DESIGN_EDITS = [
    # (id, {path: value} or None, [paths to delete], expected text)
    ("schema-9.9", {"schema_version": "9.9"}, [], "unsupported design schema '9.9'"),
    ("schema-int", {"schema_version": 1}, [], "schema_version"),
    ("schema-missing", None, ["schema_version"], "schema_version: required field is missing"),
    ("system-unknown", {"sites.0.system": "gb400-nvl999"}, [], "unknown system 'gb400-nvl999'"),
    ("rack-system-unknown", {"sites.0.rack.system": "gb400-nvl999"}, [], "sites[0].rack.system"),
    ("gpu-unknown", {"sites.0.gpu": "z100"}, [], "unknown GPU 'z100'"),
    ("region-unknown", {"sites.0.region": "mars-1"}, [], "unknown region 'mars-1'"),
    ("switch-unknown", {"sites.0.fabric.switch": "sw-9000"}, [], "unknown switch"),
    ("cdu-unknown", {"sites.0.cooling.cdu_model": "cdu-9000"}, [], "unknown CDU"),
    ("hall-cdu-unknown", {"sites.0.halls.0.cdu_model": "cdu-9000"}, [], "sites[0].halls[0].cdu_model"),
    ("equipment-unknown", {"sites.0.power.stages.0.equipment": "tx-9000"}, [], "unknown equipment"),
    ("ups-units-0", {"sites.0.power.stages.stage=ups.units_installed": 0}, [], "units_installed"),
    (
        "ups-rating-0",
        {"sites.0.power.stages.stage=ups.unit_rating_kw": 0},
        [],
        "unit_rating_kw: must be greater than 0",
    ),
    (
        "ups-units-negative",
        {"sites.0.power.stages.stage=ups.units_installed": -2},
        [],
        "must not be negative",
    ),
    ("stage-efficiency-0", {"sites.0.power.stages.stage=busway.efficiency": 0}, [], "efficiency"),
    ("stage-units-required-0", {"sites.0.power.stages.stage=busway.units_required": 0}, [], "units_required"),
    ("rack-gpus-0", {"sites.0.rack.gpus": 0}, [], "rack.gpus"),
    ("rack-gpus-71", {"sites.0.rack.gpus": 71}, [], "rack.gpus"),
    ("rack-nodes-0", {"sites.0.rack.nodes": 0}, [], "rack.nodes"),
    ("rack-domains-0", {"sites.0.rack.nvlink_domains": 0}, [], "rack.nvlink_domains"),
    ("rack-domain-gpus-0", {"sites.0.rack.gpus_per_nvlink_domain": 0}, [], "gpus_per_nvlink_domain"),
    ("rack-power-0", {"sites.0.rack.power_max_kw": 0}, [], "power_max_kw"),
    ("rack-power-negative", {"sites.0.rack.power_nominal_kw": -1.0}, [], "power_nominal_kw"),
    ("rack-gpus-text", {"sites.0.rack.gpus": "many"}, [], "sites[0].rack.gpus"),
    ("rack-gpus-float", {"sites.0.rack.gpus": 72.5}, [], "sites[0].rack.gpus"),
    ("no-halls", {"sites.0.halls": []}, [], "a site needs at least one hall"),
    ("no-sites", {"sites": []}, [], "sites"),
    ("su-racks-empty", {"sites.0.halls.0.su_racks": []}, [], "su_racks"),
    ("su-racks-0", {"sites.0.halls.0.su_racks.0": 0}, [], "su_racks[0]"),
    ("su-racks-text", {"sites.0.halls.0.su_racks": "six"}, [], "su_racks"),
    ("hall-racks-sum", {"sites.0.halls.0.racks": 999}, [], "halls[0].racks"),
    ("hall-gpus-sum", {"sites.0.halls.0.gpus": 1}, [], "halls[0].gpus"),
    ("hall-rows-0", {"sites.0.halls.0.rows": 0}, [], "halls[0].rows"),
    ("hall-racks-per-row-0", {"sites.0.halls.0.racks_per_row": 0}, [], "racks_per_row"),
    ("hall-cdus-negative", {"sites.0.halls.0.cdus_installed": -1}, [], "cdus_installed"),
    ("hall-cdus-short", {"sites.0.halls.0.cdus_installed": 0}, [], "cdus_installed"),
    ("hall-field-deleted", None, ["sites.0.halls.0.gpus"], "required field is missing"),
    ("site-metrics-gpus", {"sites.0.metrics.gpus": 1}, [], "sites[0].metrics.gpus"),
    ("site-metrics-halls", {"sites.0.metrics.halls": 5}, [], "sites[0].metrics.halls"),
    ("site-metrics-racks", {"sites.0.metrics.racks": 0}, [], "sites[0].metrics.racks"),
    ("metrics-gpus", {"metrics.gpus": 1}, [], "metrics.gpus"),
    ("metrics-sites", {"metrics.sites": 2}, [], "metrics.sites"),
    ("metrics-racks-negative", {"metrics.racks": -1}, [], "metrics.racks"),
    ("coolant-dt-0", {"sites.0.cooling.coolant_delta_t_k": 0}, [], "coolant_delta_t_k"),
    ("coolant-density-0", {"sites.0.cooling.coolant_density_kg_m3": 0}, [], "coolant_density_kg_m3"),
    ("pue-0", {"sites.0.cooling.pue_design": 0}, [], "pue_design"),
    ("switch-ports-0", {"sites.0.fabric.switch_ports": 0}, [], "switch_ports"),
    ("link-gbps-0", {"sites.0.fabric.link_gbps": 0}, [], "link_gbps"),
    ("unknown-field", {"sites.0.colour": "blue"}, [], "unknown field"),
    ("name-deleted", None, ["name"], "name: required field is missing"),
    ("spec-deleted", None, ["spec"], "spec: required field is missing"),
    ("spec-site-renamed", {"spec.sites.0.name": "row-z"}, [], "differs from the spec's site"),
    ("spec-bad", {"spec.sites.0.grid_mw": -5}, [], "spec.sites[0].grid_mw"),
    ("sites-not-list", {"sites": {"a": 1}}, [], "sites"),
    ("capex-text", {"metrics.capex_usd": "lots"}, [], "metrics.capex_usd"),
]

DESIGN_TEXTS = [
    ("empty", "", "malformed JSON"),
    ("truncated", '{\n  "schema_version": "1.0",\n  "name": "x",\n  "sites": [\n', "malformed JSON"),
    ("trailing-comma", '{"schema_version": "1.0", "name": "x",}', "malformed JSON"),
    ("nan", '{"schema_version": "1.0", "name": NaN}', "malformed JSON"),
    ("infinity", '{"schema_version": "1.0", "x": Infinity}', "malformed JSON"),
    ("array", "[1, 2, 3]", "a design.json is an object"),
    ("null", "null", "a design.json is an object"),
    ("string", '"design"', "a design.json is an object"),
    ("yaml-not-json", "schema_version: 1.0\nname: x\n", "malformed JSON"),
    ("only-version", '{"schema_version": "1.0"}', "required field is missing"),
]

# the traceback causes the issue found, through every command that reads a design
TRACEBACK_EDITS = ["ups-units-0", "rack-gpus-0", "no-halls", "system-unknown", "schema-9.9"]
DESIGN_COMMANDS = {
    "certify": ["certify", "{file}", "--json"],
    "export-slurm": ["export", "slurm", "{file}", "-o", "{out}"],
    "export-kueue": ["export", "kueue", "{file}", "-o", "{out}"],
    "export-netbox": ["export", "netbox", "{file}", "-o", "{out}"],
    "simulate": ["simulate", "{file}", "-w", "{workload}", "-d", "0.01", "-o", "{out}"],
    "tokens-factory": ["tokens", "--design", "{file}", "--mix", "{mix}", "-o", "{out}"],
    "serve": ["serve", "--design", "{file}", "--db", "sqlite:///{out}/x.db"],
}

WORKLOAD_EDITS = [
    ("model-unknown", {"inference.services.0.model": "gpt-17"}, [], "unknown model 'gpt-17'"),
    ("cdu-hall-missing", {"failures.cdu_failures.0.hall": 7}, [], "hall 7 does not exist"),
    ("cdu-units-too-many", {"failures.cdu_failures.0.units": 999}, [], "999 CDUs cannot fail"),
    ("cdu-hall-negative", {"failures.cdu_failures.0.hall": -1}, [], "cdu_failures[0].hall"),
    ("trace-missing", {"inference.services.0.trace": "nowhere.csv"}, [], "trace 'nowhere.csv' not found"),
    ("cluster-unknown", {"training.cluster": "Mars"}, [], "unknown Acme cluster"),
    ("load-negative", {"training.load": -1}, [], "training.load"),
    ("tick-0", {"tick_min": 0}, [], "tick_min"),
    ("name-deleted", None, ["name"], "name: required field is missing"),
    ("request-level-unknown", {"inference.request_level": "nope"}, [], "request_level"),
    ("cut-fraction-2", {"power.grid_events.0.cut_fraction": 2}, [], "cut_fraction"),
    ("grid-duration-0", {"power.grid_events.0.duration_h": 0}, [], "duration_h"),
    ("unknown-field", {"colour": "blue"}, [], "colour: unknown field"),
    ("cap-0", {"power.facility_cap_fraction": 0}, [], "facility_cap_fraction"),
    ("ttft-0", {"inference.services.0.ttft_ms": 0}, [], "ttft_ms"),
    ("share-2", {"inference.services.0.peak_gpu_share": 2}, [], "peak_gpu_share"),
    ("services-not-list", {"inference.services": "chat"}, [], "inference.services"),
    ("service-name-bad", {"inference.services.0.name": "../x"}, [], "inference.services[0].name"),
    ("model-number", {"inference.services.0.model": 7}, [], "inference.services[0].model"),
    ("failures-rate-negative", {"failures.rate_multiplier": -1}, [], "rate_multiplier"),
]

WORKLOAD_TEXTS = [
    ("yaml-syntax", "name: x\ntraining: [\n", "malformed YAML"),
    ("list-root", "- a\n- b\n", "is a mapping"),
    ("empty", "", "is a mapping"),
    ("tabs", "name: x\n\ttraining: {}\n", "malformed YAML"),
]

MIX_EDITS = [
    ("model-unknown", {"workloads.0.model": "gpt-17"}, [], "unknown model 'gpt-17'"),
    ("no-workloads", {"workloads": []}, [], "workloads"),
    ("share-1.5", {"workloads.0.share": 1.5}, [], "workloads[0].share"),
    ("shares-over-1", {"workloads.1.share": 0.9}, [], "more than 1"),
    ("utilisation-0", {"utilisation": 0}, [], "utilisation"),
    ("precision-fp3", {"workloads.0.precision": "fp3"}, [], "workloads[0].precision"),
    ("mode-bad", {"workloads.0.mode": "sideways"}, [], "workloads[0].mode"),
    ("unknown-field", {"colour": "blue"}, [], "unknown field"),
    ("isl-0", {"workloads.0.isl": 0}, [], "workloads[0].isl"),
]

SWEEP_EDITS = [
    ("base-missing", {"base": "nowhere.yaml"}, [], "base"),
    (
        "system-unknown",
        {"parameters": {"sites[0].system": ["gb200-nvl72", "gb400-nvl999"]}},
        [],
        "unknown system 'gb400-nvl999'",
    ),
    ("climate-unknown", {"parameters": {"sites[0].climate": ["atlantis"]}}, [], "atlantis"),
    ("model-unknown", {"tokens.model": "gpt-17"}, [], "gpt-17"),
    ("unknown-field", {"colour": "blue"}, [], "unknown field"),
    ("parameter-unknown", {"parameters": {"sites[0].colour": ["blue"]}}, [], "parameters"),
    ("sampling-bad", {"sampling": "sideways"}, [], "sampling"),
    ("grid-mw-negative", {"parameters": {"sites[0].grid_mw": [-5]}}, [], "parameters"),
    (
        "workload-model-unknown",
        {"scenario": {"workload": "{files}/workload-bad-model.yaml", "days": 0.1}},
        [],
        "gpt-17",
    ),
]

SPEC_EDITS = [
    ("grid-0", {"sites.0.grid_mw": 0}, [], "sites[0].grid_mw"),
    ("system-unknown", {"sites.0.system": "gb400-nvl999"}, [], "gb400-nvl999"),
    ("climate-unknown", {"sites.0.climate": "atlantis"}, [], "atlantis"),
    ("both-power", {"sites.0.it_mw": 1.0}, [], "exactly one of grid_mw or it_mw"),
    ("name-deleted", None, ["name"], "name: required field is missing"),
    ("version-2", {"version": 2}, [], "version"),
    ("no-sites", {"sites": []}, [], "sites"),
    ("redundancy-bad", {"sites.0.redundancy.power": "3N"}, [], "redundancy.power"),
    ("unknown-field", {"sites.0.colour": "blue"}, [], "unknown field"),
    ("grid-huge", {"sites.0.grid_mw": 1e9}, [], "sites[0].grid_mw"),
]

OPTION_CASES = [
    ("design-no-arg", ["design"], "Missing argument"),
    ("design-bogus-option", ["design", "{spec}", "--bogus"], "No such option"),
    ("design-missing-file", ["design", "{missing}", "-o", "{out}"], "file not found"),
    ("design-dir", ["design", "{dir}", "-o", "{out}"], "directory"),
    ("unknown-command", ["frobnicate"], "No such command"),
    ("simulate-days-0", ["simulate", "{design}", "-w", "{workload}", "-d", "0"], "--days"),
    ("simulate-days-text", ["simulate", "{design}", "-w", "{workload}", "-d", "abc"], "--days"),
    ("simulate-days-400", ["simulate", "{design}", "-w", "{workload}", "-d", "400"], "--days"),
    ("simulate-policy", ["simulate", "{design}", "-w", "{workload}", "-p", "magic", "-o", "{out}"], "magic"),
    (
        "simulate-compare",
        ["simulate", "{design}", "-w", "{workload}", "--compare-policies", "a,b"],
        "unknown policy",
    ),
    ("simulate-no-workload", ["simulate", "{design}"], "--workload"),
    (
        "simulate-workload-missing",
        ["simulate", "{design}", "-w", "{missing}", "-o", "{out}"],
        "file not found",
    ),
    ("simulate-seed-text", ["simulate", "{design}", "-w", "{workload}", "-s", "x"], "--seed"),
    (
        "tokens-tp-1024",
        ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--tp", "1024", "-o", "{out}"],
        "tp 1024",
    ),
    ("tokens-tp-0", ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--tp", "0"], "--tp"),
    (
        "tokens-tp-heads",
        ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--tp", "3", "-o", "{out}"],
        "does not divide",
    ),
    ("tokens-precision", ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "-p", "fp3"], "fp3"),
    ("tokens-isl-0", ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--isl", "0"], "--isl"),
    (
        "tokens-mode",
        ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--mode", "x", "-o", "{out}"],
        "mode",
    ),
    ("tokens-nothing", ["tokens"], "--model"),
    ("tokens-model-unknown", ["tokens", "-m", "gpt-17", "-s", "gb200-nvl72", "-o", "{out}"], "gpt-17"),
    (
        "tokens-system-unknown",
        ["tokens", "-m", "llama-3.3-70b", "-s", "gb400-nvl999", "-o", "{out}"],
        "gb400",
    ),
    ("tokens-mix-no-design", ["tokens", "--mix", "{design}"], "--mix needs --design"),
    (
        "tokens-ep-dense",
        ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--ep", "4", "-o", "{out}"],
        "no experts",
    ),
    ("tokens-pue", ["tokens", "-m", "llama-3.3-70b", "-s", "gb200-nvl72", "--pue", "0.5"], "--pue"),
    ("export-leaves", ["export", "slurm", "{design}", "--leaves", "x", "-o", "{out}"], "--leaves"),
    ("export-no-arg", ["export", "kueue"], "Missing argument"),
    ("export-unknown-tool", ["export", "lsf", "{design}"], "No such command"),
    ("schema-kind", ["schema", "widget"], "widget"),
    ("catalog-kind", ["catalog", "list", "widgets"], "unknown catalog kind"),
    ("catalog-show", ["catalog", "show", "nope-9000"], "nope-9000"),
    ("catalog-dir-missing", ["catalog", "list", "-c", "{missing}"], "catalog directory not found"),
    ("certify-missing", ["certify", "{missing}"], "file not found"),
    ("certify-dir", ["certify", "{dir}"], "not a file"),
    ("certify-catalog-missing", ["certify", "{design}", "-c", "{missing}"], "catalog directory not found"),
    (
        "replay-seeds",
        ["replay-openb", "--nodes", "{files}/nodes-ok.csv", "--pods", "{files}/pods-bad.csv", "--seeds", "x"],
        "--seeds",
    ),
    (
        "replay-inflation",
        [
            "replay-openb",
            "--nodes",
            "{files}/nodes-ok.csv",
            "--pods",
            "{files}/pods-bad.csv",
            "--inflation",
            "0",
        ],
        "--inflation",
    ),
    (
        "replay-jobs",
        ["replay-openb", "--nodes", "{files}/nodes-ok.csv", "--pods", "{files}/pods-bad.csv", "--jobs", "-1"],
        "--jobs",
    ),
    (
        "replay-policy",
        ["replay-openb", "--nodes", "{files}/nodes-ok.csv", "--pods", "{files}/pods-bad.csv", "-p", "magic"],
        "magic",
    ),
    ("replay-no-nodes", ["replay-openb", "--pods", "{files}/pods-bad.csv"], "--nodes"),
    (
        "replay-nodes-bad",
        ["replay-openb", "--nodes", "{files}/nodes-bad.csv", "--pods", "{files}/pods-bad.csv"],
        "nodes-bad.csv",
    ),
    (
        "replay-pods-bad",
        ["replay-openb", "--nodes", "{files}/nodes-ok.csv", "--pods", "{files}/pods-bad.csv"],
        "pods-bad.csv",
    ),
    ("run-example-days", ["run-example", "-d", "-1", "-o", "{out}"], "--days"),
    ("run-example-spec", ["run-example", "--spec", "{missing}", "-o", "{out}"], "file not found"),
    ("sweep-missing", ["sweep", "{missing}", "-o", "{out}"], "file not found"),
    ("sweep-workers-0", ["sweep", "{missing}", "-n", "0"], "--workers"),
    ("sweep-stray-address", ["sweep", "{missing}", "auto"], "a Ray address goes after --ray"),
    ("serve-port", ["serve", "--design", "{design}", "--port", "70000"], "--port"),
    ("serve-design-missing", ["serve", "--design", "{missing}"], "file not found"),
    ("drain-neither", ["drain", "-t", "x", "-s", "http://127.0.0.1:9"], "exactly one of --rack or --node"),
    (
        "drain-both",
        ["drain", "--rack", "1", "--node", "2", "-t", "x", "-s", "http://127.0.0.1:9"],
        "exactly one of --rack or --node",
    ),
    ("drain-rack-text", ["drain", "--rack", "one"], "--rack"),
    (
        "tenants-sites-text",
        ["tenants", "add", "t", "--sites", "a,b", "-t", "x", "-s", "http://127.0.0.1:9"],
        "comma-separated integers",
    ),
    ("audit-limit-0", ["audit", "--limit", "0"], "--limit"),
    ("submit-no-name", ["submit"], "Missing argument"),
    ("submit-gpus-text", ["submit", "x", "--gpus", "many"], "--gpus"),
    ("power-cap-text", ["power", "--cap-kw", "abc"], "--cap-kw"),
    ("status-no-token", ["status", "-s", "http://127.0.0.1:9"], "no API token"),
    ("scale-no-replicas", ["scale", "w1"], "--replicas"),
    ("api-token-no-name", ["api-token", "create"], "Missing argument"),
    ("tenants-list-bogus", ["tenants", "list", "--bogus"], "No such option"),
]


def _case(cid: str, args: list[str], expect: str, **extra) -> dict:
    return {"id": cid, "args": args, "expect": expect, **extra}


def cases() -> list[dict]:
    out = []
    for cid, sets, deletes, expect in DESIGN_EDITS:
        out.append(
            _case(
                f"design-{cid}",
                DESIGN_COMMANDS["certify"],
                expect,
                base="design",
                set=sets or {},
                delete=deletes,
            )
        )
    for cid, text, expect in DESIGN_TEXTS:
        out.append(
            _case(f"design-text-{cid}", DESIGN_COMMANDS["certify"], expect, text=text, name="design.json")
        )
    edits = {cid: (sets, deletes, expect) for cid, sets, deletes, expect in DESIGN_EDITS}
    for cid in TRACEBACK_EDITS:
        sets, deletes, expect = edits[cid]
        for command, args in DESIGN_COMMANDS.items():
            if command != "certify":
                out.append(
                    _case(
                        f"{command}-design-{cid}", args, expect, base="design", set=sets or {}, delete=deletes
                    )
                )
    for cid, sets, deletes, expect in WORKLOAD_EDITS:
        out.append(_case(f"workload-{cid}", SIM, expect, base="workload", set=sets or {}, delete=deletes))
    for cid, text, expect in WORKLOAD_TEXTS:
        out.append(_case(f"workload-text-{cid}", SIM, expect, text=text, name="workload.yaml"))
    for cid, sets, deletes, expect in MIX_EDITS:
        out.append(
            _case(
                f"mix-{cid}",
                ["tokens", "--design", "{design}", "--mix", "{file}", "-o", "{out}"],
                expect,
                base="mix",
                set=sets or {},
                delete=deletes,
            )
        )
    for cid, sets, deletes, expect in SWEEP_EDITS:
        out.append(
            _case(
                f"sweep-{cid}",
                ["sweep", "{file}", "-o", "{out}", "-n", "1"],
                expect,
                base="sweep",
                set=sets or {},
                delete=deletes,
            )
        )
    for cid, sets, deletes, expect in SPEC_EDITS:
        out.append(
            _case(
                f"spec-{cid}",
                ["design", "{file}", "-o", "{out}"],
                expect,
                base="spec",
                set=sets or {},
                delete=deletes,
            )
        )
    for cid, args, expect in OPTION_CASES:
        out.append(_case(f"option-{cid}", args, expect))
    return out


def main() -> None:
    items = cases()
    ids = [c["id"] for c in items]
    assert len(ids) == len(set(ids)), "case ids must be unique"
    lines = [
        "# Generated by make_cases.py; edit that file and run it again.",
        f"# {len(items)} cases",
        "cases:",
    ]
    lines += [f"  - {json.dumps(c, ensure_ascii=False)}" for c in items]
    (HERE / "cases.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {len(items)} cases")


if __name__ == "__main__":
    main()
