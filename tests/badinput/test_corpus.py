"""The bad-input corpus (cases.yaml): every case exits 2 with one line, no traceback, nothing written.

Cases run in-process (fast); a handful also run as real processes, where the entry point, the exit status
and the streams are the operating system's.
"""

from __future__ import annotations

from collections import Counter

import pytest

from tests.badinput.corpus import contract_problems, load_cases, prepare, run_in_process, run_subprocess

CASES = load_cases()
SUBPROCESS_CASES = [
    "design-ups-units-0",
    "export-slurm-design-no-halls",
    "workload-model-unknown",
    "option-simulate-days-0",
    "option-tokens-tp-1024",
    "design-text-nan",
]


@pytest.fixture(scope="session")
def bases():
    from tests.badinput.corpus import base_documents

    return base_documents()


@pytest.fixture(scope="session")
def valid_inputs(bases, tmp_path_factory):
    from tests.badinput.corpus import write_valid_inputs

    return write_valid_inputs(bases, tmp_path_factory.mktemp("valid-inputs"))


def test_corpus_is_large_and_covers_every_command_and_file_kind():
    assert len(CASES) >= 150
    kinds = Counter(case.get("base") or ("text" if "text" in case else "options") for case in CASES)
    assert {"design", "workload", "mix", "sweep", "spec", "text", "options"} <= set(kinds)
    commands = {case["args"][0] for case in CASES}
    assert {
        "design",
        "certify",
        "export",
        "simulate",
        "tokens",
        "sweep",
        "serve",
        "catalog",
        "schema",
        "replay-openb",
        "run-example",
        "drain",
        "tenants",
        "submit",
        "status",
        "audit",
    } <= commands


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_bad_input_case(case, bases, valid_inputs, tmp_path):
    prepared = prepare(case, bases, tmp_path, valid_inputs)
    code, stdout, stderr = run_in_process(prepared.args, prepared.work, tmp_path / "home")
    assert contract_problems(case, code, stdout, stderr, prepared.work) == [], prepared.args


@pytest.mark.parametrize("case_id", SUBPROCESS_CASES)
def test_bad_input_case_as_a_process(case_id, bases, tmp_path):
    case = next(c for c in CASES if c["id"] == case_id)
    prepared = prepare(case, bases, tmp_path)
    code, stdout, stderr = run_subprocess(prepared.args, prepared.work, tmp_path / "home")
    assert contract_problems(case, code, stdout, stderr, prepared.work) == [], prepared.args
