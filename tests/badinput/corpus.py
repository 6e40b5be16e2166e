"""Running bad-input cases: build each case's files from valid bases, run the CLI, check the contract.

The contract (README, "CLI conventions"): exit 2, exactly one line on stderr naming the problem, nothing
on stdout, no traceback, and no file written.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
FILES = HERE / "files"
REPO = HERE.parents[1]
EXAMPLES = REPO / "examples"
DEFAULT_NAMES = {
    "design": "design.json",
    "workload": "workload.yaml",
    "mix": "mix.yaml",
    "sweep": "sweep.yaml",
    "spec": "spec.yaml",
}


def load_cases() -> list[dict]:
    return yaml.safe_load((HERE / "cases.yaml").read_text(encoding="utf-8"))["cases"]


def base_documents() -> dict[str, dict]:
    """The valid documents every case edits: a compiled 1 MW design, a small workload, a mix, a sweep, a spec."""
    from tokenfab.blueprint.compile import compile
    from tokenfab.catalog.load import load_catalog
    from tokenfab.spec import load_spec

    spec, _ = load_spec(EXAMPLES / "row-1mw.yaml")
    design = json.loads(compile(spec, load_catalog()).model_dump_json())
    workload = yaml.safe_load((FILES / "workload-base.yaml").read_text(encoding="utf-8"))
    workload["inference"]["services"][0]["trace"] = str(FILES / "tiny-trace.csv")
    sweep = yaml.safe_load((EXAMPLES / "sweep-systems.yaml").read_text(encoding="utf-8"))
    sweep["base"] = str(EXAMPLES / "row-1mw.yaml")
    return {
        "design": design,
        "workload": workload,
        "mix": yaml.safe_load((EXAMPLES / "mix-inference.yaml").read_text(encoding="utf-8")),
        "sweep": sweep,
        "spec": yaml.safe_load((EXAMPLES / "row-1mw.yaml").read_text(encoding="utf-8")),
    }


def _parts(path: str) -> list[str | int]:
    """Dotted path parts: keys, list indices, or ``key=value`` (the list item whose `key` is `value`, so a case
    names the UPS stage, not whichever index the power chain gives it)."""
    return [int(p) if p.lstrip("-").isdigit() else p for p in path.split(".")]


def _step(doc, part):
    if isinstance(part, str) and "=" in part and isinstance(doc, list):
        key, value = part.split("=", 1)
        return next(item for item in doc if str(item.get(key)) == value)
    return doc[part]


def set_path(doc, path: str, value) -> None:
    *parents, last = _parts(path)
    for part in parents:
        doc = _step(doc, part)
    doc[last] = value


def delete_path(doc, path: str) -> None:
    *parents, last = _parts(path)
    for part in parents:
        doc = _step(doc, part)
    del doc[last]


def _substitute(value, places: dict[str, str]):
    if isinstance(value, str):
        for key, text in places.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [_substitute(v, places) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, places) for k, v in value.items()}
    return value


def dump(kind: str, doc) -> str:
    return json.dumps(doc, indent=2) if kind == "design" else yaml.safe_dump(doc, sort_keys=False)


@dataclass
class Prepared:
    args: list[str]
    work: Path
    out: Path
    inputs: Path


def write_valid_inputs(bases: dict[str, dict], folder: Path) -> dict[str, str]:
    """The valid design, workload, mix and spec as files (written once, read by many cases)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind in ("design", "workload", "mix", "spec"):
        path = folder / f"valid-{DEFAULT_NAMES[kind]}"
        path.write_text(dump(kind, bases[kind]), encoding="utf-8")
        paths[kind] = str(path)
    return paths


def prepare(case: dict, bases: dict[str, dict], tmp: Path, valid: dict[str, str] | None = None) -> Prepared:
    """Write the case's inputs under tmp/inputs and return its command line (run from the empty tmp/work)."""
    inputs, work, empty = tmp / "inputs", tmp / "work", tmp / "empty-dir"
    for folder in (inputs, work, empty):
        folder.mkdir(parents=True, exist_ok=True)
    places = {
        "files": str(FILES),
        "out": str(work / "out"),
        "missing": str(inputs / "missing.yaml"),
        "dir": str(empty),
    }
    places.update(valid or write_valid_inputs(bases, inputs))
    if "base" in case or "text" in case:
        kind = case.get("base")
        name = case.get("name") or DEFAULT_NAMES[kind]
        if "text" in case:
            text = case["text"]
        else:
            doc = copy.deepcopy(bases[kind])
            for path, value in case.get("set", {}).items():
                set_path(doc, path, _substitute(value, places))
            for path in case.get("delete", []):
                delete_path(doc, path)
            text = dump(kind, doc)
        target = inputs / name
        target.write_text(text, encoding="utf-8")
        places["file"] = str(target)
    args = [_substitute(a, places) for a in case["args"]]
    return Prepared(args=args, work=work, out=work / "out", inputs=inputs)


def contract_problems(case: dict, code: int, stdout: str, stderr: str, work: Path) -> list[str]:
    """What the run did against the contract; empty when it kept it."""
    problems = []
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code != 2:
        problems.append(f"exit {code}, expected 2")
    if "Traceback" in stdout + stderr:
        problems.append("traceback")
    if len(lines) != 1:
        problems.append(f"{len(lines)} lines on stderr, expected 1: {stderr!r}")
    elif not lines[0].startswith("error: "):
        problems.append(f"stderr does not start with 'error: ': {lines[0]!r}")
    elif case.get("expect") and case["expect"] not in lines[0]:
        problems.append(f"{case['expect']!r} not in {lines[0]!r}")
    if stdout.strip():
        problems.append(f"stdout not empty: {stdout[:200]!r}")
    written = sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    if written:
        problems.append(f"files written: {written[:5]}")
    return problems


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENFAB_") or k == "TOKENFAB_DATA_DIR"}
    env["HOME"] = str(home)
    env["XDG_CONFIG_HOME"] = str(home / ".config")
    return env


@cache
def root_command():
    """The Click command tree of the CLI, built once (Typer rebuilds it on every invoke otherwise)."""
    import typer

    from tokenfab.cli import app

    return typer.main.get_command(app)


def run_in_process(args: list[str], work: Path, home: Path) -> tuple[int, str, str]:
    from unittest import mock

    import typer.testing

    from tokenfab.cli import app

    cwd = os.getcwd()
    os.chdir(work)
    try:
        env = {k: None for k in os.environ if k.startswith("TOKENFAB_") and k != "TOKENFAB_DATA_DIR"}
        env.update({"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config")})
        with mock.patch.object(typer.testing, "_get_command", lambda _app: root_command()):
            result = typer.testing.CliRunner().invoke(app, args, env=env, prog_name="tokenfab")
    finally:
        os.chdir(cwd)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        import traceback

        trace = "".join(traceback.format_exception(result.exception))
        return 99, result.stdout, result.stderr + "\nTraceback (in process):\n" + trace
    return result.exit_code, result.stdout, result.stderr


def run_subprocess(args: list[str], work: Path, home: Path) -> tuple[int, str, str]:
    import tokenfab

    env = clean_env(home)
    env["PYTHONPATH"] = str(Path(tokenfab.__file__).resolve().parents[1])
    proc = subprocess.run(
        [sys.executable, "-m", "tokenfab.cli", *args],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout, proc.stderr
