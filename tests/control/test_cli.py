"""The CLI client against a real server: login saves 0600 credentials, submit/status/drain/tenants with
--json and tables, 4xx answers exit 2 with a one-line message."""

from __future__ import annotations

import json
import stat

import pytest
from control_helpers import ThreadServer
from typer.testing import CliRunner

from tokenfab.cli import app


@pytest.mark.xdist_group("control_e2e")
def test_cli_client_round_trip(row_design, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("TOKENFAB_TOKEN", raising=False)
    monkeypatch.delenv("TOKENFAB_SERVER", raising=False)
    runner = CliRunner()
    with ThreadServer(row_design, f"sqlite:///{tmp_path / 'cli.db'}") as server:
        result = runner.invoke(app, ["login", "--server", server.url, "--token", server.operator_token])
        assert result.exit_code == 0, result.output
        credentials = tmp_path / ".config" / "tokenfab" / "credentials.json"
        assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
        assert json.loads(credentials.read_text())["server"] == server.url

        assert runner.invoke(app, ["tenants", "add", "acme", "--quota-gpus", "200"]).exit_code == 0
        submitted = runner.invoke(app, ["submit", "train", "--gpus", "72", "--tenant", "acme", "--json"])
        assert submitted.exit_code == 0, submitted.output
        workload = json.loads(submitted.stdout)
        assert workload["state"] == "running"
        table = runner.invoke(app, ["status"])
        assert table.exit_code == 0 and workload["id"] in table.stdout

        over = json.loads(
            runner.invoke(app, ["submit", "big", "--gpus", "144", "--tenant", "acme", "--json"]).stdout
        )
        assert over["state"] == "queued" and "over quota" in over["queue_reason"]
        queue = json.loads(runner.invoke(app, ["queue", "--json"]).stdout)["data"]
        assert [w["id"] for w in queue] == [over["id"]]

        rack = workload["placement"]["racks"][0]
        drained = runner.invoke(app, ["drain", "--rack", str(rack), "--reason", "CDU swap", "--json"])
        assert drained.exit_code == 0 and workload["id"] in json.loads(drained.stdout)["requeued"]
        nodes = json.loads(runner.invoke(app, ["nodes", "--rack", str(rack), "--json"]).stdout)["data"]
        assert {n["health"] for n in nodes} == {"draining"}
        tenants = json.loads(runner.invoke(app, ["tenants", "--json"]).stdout)["data"]
        assert tenants[0]["name"] == "acme" and tenants[0]["gpus_allocated"] == 72
        assert json.loads(runner.invoke(app, ["tenants", "list", "-j"]).stdout)["data"] == tenants

        created = json.loads(
            runner.invoke(app, ["api-token", "create", "acme-ci", "--tenant", "acme", "--json"]).stdout
        )
        mine = runner.invoke(app, ["status", "--json", "--token", created["token"]])
        assert {w["tenant"] for w in json.loads(mine.stdout)["data"]} == {"acme"}

        notebook = runner.invoke(
            app,
            [
                "submit",
                "nb",
                "--kind",
                "small",
                "--gpu-fraction",
                "0.25",
                "--cpu-cores",
                "4",
                "--memory-gb",
                "32",
                "--tenant",
                "acme",
                "--json",
            ],
        )
        assert notebook.exit_code == 0 and json.loads(notebook.stdout)["placement"]["gpu_fraction"] == 0.25
        assert "0.25" in runner.invoke(app, ["status"]).stdout
        no_share = runner.invoke(app, ["submit", "nb2", "--kind", "small", "--tenant", "acme"])
        assert no_share.exit_code == 2 and "gpu_fraction" in no_share.output

        missing = runner.invoke(app, ["cancel", "w-000000000000"])
        assert missing.exit_code == 2 and "not found" in missing.output
        bad = runner.invoke(app, ["submit", "x", "--gpus", "0", "--tenant", "acme"])
        assert bad.exit_code == 2 and "gpus" in bad.output
        assert runner.invoke(app, ["status", "--token", "tf_000000000000_nope"]).exit_code == 2


def test_serve_refuses_bad_input_with_exit_2(row_design_path, tmp_path):
    runner = CliRunner()
    missing = runner.invoke(app, ["serve", "--design", str(tmp_path / "nope.json")])
    assert missing.exit_code == 2 and "file not found" in missing.output
    bad_url = runner.invoke(app, ["serve", "--design", str(row_design_path), "--db", "nonsense://x"])
    assert bad_url.exit_code == 2 and "--db" in bad_url.output
