"""Code shape, enforced: no source file over 600 lines, no function over 80 lines (DESIGN.md's rooms).

Database migrations (`control/migrations`) are exempt: each is one linear script of schema steps.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "tokenfab"
MAX_FILE_LINES = 600
MAX_FUNCTION_LINES = 80
EXEMPT_DIRS = ("control/migrations",)

# Only what an open branch is still splitting when this check landed (file -> who splits it); an entry goes
# when its split lands (`test_allow_list_is_not_stale` says so), as do the ones `ruff format` pushed over the
# limit when it was first applied. Nothing else may be added here.
ALLOWED_LONG_FILES: dict[str, str] = {
    "src/tokenfab/certify/rules/network.py": "issue 14: over the limit once ruff format wrapped its lines; to split",
}
ALLOWED_LONG_FUNCTIONS: dict[str, str] = {
    "src/tokenfab/perf/curve.py::estimate": "issue 11 (perf-fit): the estimate orchestrator",
    "src/tokenfab/cli/tokens.py::tokens_command": "issue 11 (perf-fit): the tokens command",
    "src/tokenfab/blueprint/netparts.py::management_networks": "issue 12 (facility-net): network parts",
    "src/tokenfab/emulate/factory.py::__init__": "issue 15 (ops): the emulated factory",
    "src/tokenfab/emulate/server.py::create_app": "issue 15 (ops): the emulator's app",
    "src/tokenfab/blueprint/parts.py::resolve": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/blueprint/power_chain.py::power_chain": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/certify/rules/network.py::optics_reach": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/cli/design.py::summary_table": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/cli/emulate.py::emulate": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/cli/replay_openb.py::replay_openb": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/cli/simulate.py::simulate_command": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/cli/sweep.py::sweep_command": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/emulate/exposition.py::facility_text": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/emulate/stack.py::start": "issue 14: over the limit once ruff format wrapped its lines; to split",
    "src/tokenfab/export/prometheus_rules.py::alert_rules": "issue 14: over the limit once ruff format wrapped its lines; to split",
}


def _sources() -> list[Path]:
    return sorted(
        path
        for path in SRC.rglob("*.py")
        if not any(path.relative_to(SRC).as_posix().startswith(exempt) for exempt in EXEMPT_DIRS)
    )


def _relative(path: Path) -> str:
    return path.relative_to(SRC.parents[1]).as_posix()


def file_lengths() -> dict[str, int]:
    """Lines of every checked source file, by path from the repository root."""
    return {_relative(path): len(path.read_text(encoding="utf-8").splitlines()) for path in _sources()}


def function_lengths() -> dict[str, tuple[int, int]]:
    """`path::name` -> (line of the `def`, lines from the first decorator to the end) of every function."""
    found = {}
    for path in _sources():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = (node.end_lineno or node.lineno) - start + 1
                key = f"{_relative(path)}::{node.name}"
                found[key] = max(found.get(key, (node.lineno, 0)), (node.lineno, length), key=lambda v: v[1])
    return found


def test_no_source_file_over_the_limit() -> None:
    too_long = [
        f"{path}:{lines} lines (limit {MAX_FILE_LINES})"
        for path, lines in file_lengths().items()
        if lines > MAX_FILE_LINES and path not in ALLOWED_LONG_FILES
    ]
    assert too_long == []


def test_no_function_over_the_limit() -> None:
    too_long = [
        f"{key.split('::')[0]}:{line} {key.split('::')[1]} ({length} lines, limit {MAX_FUNCTION_LINES})"
        for key, (line, length) in function_lengths().items()
        if length > MAX_FUNCTION_LINES and key not in ALLOWED_LONG_FUNCTIONS
    ]
    assert too_long == []


def test_allow_list_is_not_stale() -> None:
    files, functions = file_lengths(), function_lengths()
    fixed = [path for path in ALLOWED_LONG_FILES if files.get(path, 0) <= MAX_FILE_LINES]
    fixed += [key for key in ALLOWED_LONG_FUNCTIONS if functions.get(key, (0, 0))[1] <= MAX_FUNCTION_LINES]
    assert fixed == [], "now within the limits: remove them from the allow-list"


def test_the_checks_see_every_package() -> None:
    packages = {path.relative_to(SRC).parts[0] for path in _sources()}
    assert {"blueprint", "catalog", "certify", "control", "sched", "twin"} <= packages
