"""Random edits of valid designs and workloads (hypothesis): never a traceback; bad input is one line, exit 2.

An edit sets one field anywhere in the document to an odd value (zero, negative, huge, wrong type, null,
empty) or deletes it. Whatever the edit, the command either accepts the file (exit 0, or 1 for a failed
certification) and prints strict JSON, or refuses it with exit 2, one line on stderr and no file written.
"""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.badinput.corpus import dump, run_in_process

ODD_VALUES = [0, -1, 1, -1e9, 1e12, 1e308, 0.5, None, True, "", "x", "gb400-nvl999", [], {}, [0], {"a": 1}]
PROPERTY_SETTINGS = settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def leaf_paths(doc, prefix=()) -> list[tuple]:
    """Every path to a value in `doc` (containers included, so a whole list or mapping can be edited)."""
    paths = [prefix] if prefix else []
    if isinstance(doc, dict):
        for key, value in doc.items():
            paths += leaf_paths(value, (*prefix, key))
    elif isinstance(doc, list):
        for index, value in enumerate(doc[:3]):
            paths += leaf_paths(value, (*prefix, index))
    return paths


def edit(doc, path: tuple, value, delete: bool):
    doc = copy.deepcopy(doc)
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    if delete:
        del parent[path[-1]]
    else:
        parent[path[-1]] = value
    return doc


def edits(base) -> st.SearchStrategy:
    return st.tuples(st.sampled_from(leaf_paths(base)), st.sampled_from(ODD_VALUES), st.booleans())


def check_run(code: int, stdout: str, stderr: str, work) -> None:
    assert "Traceback" not in stdout + stderr
    assert "internal error" not in stderr, stderr
    assert code in (0, 1, 2), (code, stderr)
    if code == 2:
        assert len([line for line in stderr.splitlines() if line.strip()]) == 1, stderr
        assert not list(work.rglob("*")), "a refused input wrote files"
    else:
        json.loads(stdout, parse_constant=lambda name: pytest.fail(f"{name} in JSON output"))


@pytest.fixture(scope="module")
def bases():
    from tests.badinput.corpus import base_documents

    return base_documents()


@pytest.fixture(scope="module")
def design_base():
    from tests.badinput.corpus import base_documents

    return base_documents()["design"]


@pytest.fixture(scope="module")
def workload_base():
    from tests.badinput.corpus import base_documents

    return base_documents()["workload"]


def _case_dirs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("case")
    work = tmp / "work"
    work.mkdir()
    return tmp, work


@pytest.mark.parametrize("command", ["certify", "export"])
def test_random_design_edits(command, design_base, tmp_path_factory):
    @PROPERTY_SETTINGS
    @given(edits(design_base))
    def check(change):
        path, value, delete = change
        tmp, work = _case_dirs(tmp_path_factory)
        target = tmp / "design.json"
        target.write_text(dump("design", edit(design_base, path, value, delete)), encoding="utf-8")
        args = (
            ["certify", str(target), "--json"]
            if command == "certify"
            else ["export", "kueue", str(target), "-o", str(work / "out"), "--json"]
        )
        check_run(*run_in_process(args, work, tmp / "home"), work)

    check()


def test_random_workload_edits(bases, tmp_path_factory):
    design = tmp_path_factory.mktemp("design") / "design.json"
    design.write_text(dump("design", bases["design"]), encoding="utf-8")
    workload_base = bases["workload"]

    @settings(PROPERTY_SETTINGS, max_examples=30)
    @given(edits(workload_base))
    def check(change):
        path, value, delete = change
        tmp, work = _case_dirs(tmp_path_factory)
        target = tmp / "workload.yaml"
        target.write_text(dump("workload", edit(workload_base, path, value, delete)), encoding="utf-8")
        args = ["simulate", str(design), "-w", str(target), "-d", "0.01", "-o", str(work / "out"), "--json"]
        check_run(*run_in_process(args, work, tmp / "home"), work)

    check()
