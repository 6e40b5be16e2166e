"""CLI conventions (README, "CLI conventions"): --version, -h, short options, --json everywhere with one
shape, full ids and numbers when piped, files 0644, one-line errors and the documented exit codes."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from tokenfab.cli import app
from tokenfab.cli.app import print_json, strict_json

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def leaf_commands():
    """(command path, click command) for every command a user can run."""
    root = typer.main.get_command(app)

    def walk(command, path):
        subcommands = getattr(command, "commands", None)
        if subcommands:
            if getattr(command, "invoke_without_command", False) and path:
                yield path, command
            for name, sub in subcommands.items():
                yield from walk(sub, [*path, name])
        else:
            yield path, command

    return list(walk(root, []))


def test_version_and_short_help():
    for flag in ("--version", "-V"):
        result = runner.invoke(app, [flag])
        assert result.exit_code == 0 and result.stdout.startswith("tokenfab ")
    for args in (["-h"], ["design", "-h"], ["export", "slurm", "-h"], ["tenants", "list", "-h"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0 and "Usage:" in result.stdout, args


def test_every_command_has_json_and_short_options():
    commands = leaf_commands()
    assert len(commands) > 30
    missing = [
        " ".join(path) for path, command in commands if not any("--json" in p.opts for p in command.params)
    ]
    assert missing == []
    flags = {opt for _, command in commands for p in command.params for opt in p.opts}
    assert {"-o", "-c", "-j", "-w", "-d", "-m", "-s", "-t", "-p", "-h"} - {"-h"} <= flags
    assert any(path == ["tenants", "list"] for path, _ in commands)


def test_option_errors_are_one_line_and_exit_2():
    for args in (
        ["simulate", "x.yaml", "-w", "w.yaml", "--days", "0"],
        ["design"],
        ["frobnicate"],
        ["tokens", "--isl", "zero"],
        ["design", "x.yaml", "--bogus"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: tokenfab"), (args, result.stderr)
        assert "╭" not in result.stderr and "Traceback" not in result.output


def test_json_shape_and_strict_numbers(capsys):
    print_json([1, 2])
    assert json.loads(capsys.readouterr().out) == {"data": [1, 2]}
    print_json({"value": float("inf"), "rows": [float("nan"), 1.5]})
    text = capsys.readouterr().out
    assert "Infinity" not in text and "NaN" not in text
    assert json.loads(text) == {"value": None, "rows": [None, 1.5]}
    assert strict_json({"a": (1.0, float("-inf"))}) == {"a": [1.0, None]}
    result = runner.invoke(app, ["catalog", "list", "systems", "--json"])
    doc = json.loads(result.stdout)
    assert set(doc) == {"data"} and all({"kind", "name"} <= set(row) for row in doc["data"])


def test_certify_json_is_strict(tmp_path):
    result = runner.invoke(app, ["certify", str(REPO / "examples" / "row-1mw.yaml"), "--json"])
    assert result.exit_code in (0, 1)
    json.loads(result.stdout, parse_constant=lambda name: pytest.fail(f"{name} in certify --json"))


def test_piped_output_keeps_full_names_and_numbers():
    result = runner.invoke(app, ["catalog", "list"])  # CliRunner output is not a terminal
    assert result.exit_code == 0
    from tokenfab.catalog.load import load_catalog

    catalog = load_catalog()
    for kind in ("systems", "models"):
        for entry in catalog.kind(kind).values():
            assert entry.name in result.stdout
            assert entry.description in result.stdout, entry.description
    assert "…" not in result.stdout


def test_files_are_written_0644(tmp_path):
    old = os.umask(0o022)
    try:
        result = runner.invoke(app, ["design", str(REPO / "examples" / "row-1mw.yaml"), "-o", str(tmp_path)])
        assert result.exit_code == 0, result.output
        result = runner.invoke(
            app, ["export", "slurm", str(tmp_path / "design.json"), "-o", str(tmp_path / "slurm")]
        )
        assert result.exit_code == 0, result.output
    finally:
        os.umask(old)
    written = [tmp_path / "design.json", *(tmp_path / "slurm").iterdir()]
    assert {stat.S_IMODE(p.stat().st_mode) for p in written} == {0o644}


def test_service_that_cannot_start_exits_3(tmp_path):
    pytest.importorskip("sqlalchemy")
    result = runner.invoke(
        app,
        [
            "serve",
            "--design",
            str(REPO / "examples" / "row-1mw.yaml"),
            "--db",
            "postgresql+psycopg://tokenfab@127.0.0.1:1/none?connect_timeout=2",
        ],
    )
    assert result.exit_code == 3, result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_unreachable_server_exits_1_with_one_line(tmp_path):
    result = runner.invoke(
        app,
        ["tenants", "list", "-s", "http://127.0.0.1:9", "-t", "secret", "--json"],
        env={"HOME": str(tmp_path)},
    )
    assert result.exit_code == 1, result.output
    assert len([line for line in result.stderr.splitlines() if line.strip()]) == 1


def test_readme_documents_exit_codes_and_conventions():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "## CLI conventions" in readme
    for line in ("| 0 |", "| 1 |", "| 2 |", "| 3 |"):
        assert line in readme


def test_help_imports_no_heavy_layer():
    import subprocess
    import sys

    import tokenfab

    code = (
        "import sys\nfrom tokenfab.cli import app\n"
        "try:\n    app(['--help'], prog_name='tokenfab')\nexcept SystemExit:\n    pass\n"
        "heavy = ['numpy', 'pandas', 'matplotlib', 'pydantic', 'CoolProp', 'fastapi', 'uvicorn', 'sqlalchemy',\n"
        "         'jinja2', 'scipy', 'yaml', 'tokenfab.blueprint', 'tokenfab.catalog.load']\n"
        "print('HEAVY:' + ','.join(m for m in heavy if m in sys.modules))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(tokenfab.__file__).resolve().parents[1]))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.strip().splitlines()[-1] == "HEAVY:"
