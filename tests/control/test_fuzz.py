"""Fuzz the API from its own OpenAPI document (schemathesis, in-process ASGI): no input gives a 5xx.

Valid and invalid inputs are generated for every operation (bounded: 10 of each per operation,
derandomized so CI runs are repeatable). Requests carry the operator token so they reach past authentication.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from tokenfab.control.api import create_app
from tokenfab.control.service import ControlService


@pytest.fixture(scope="module")
def fuzz_target(row_design, tmp_path_factory):
    db_url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    opened = ControlService.open(row_design, db_url)
    app = create_app(row_design, db_url, service=opened.service)
    # something to act on: a tenant with a running workload and a queued one
    from fastapi.testclient import TestClient

    client = TestClient(app)
    headers = {"Authorization": f"Bearer {opened.bootstrap_token}"}
    client.post("/api/v1/tenants", headers=headers, json={"name": "acme", "quota_gpus": 300})
    client.post("/api/v1/workloads", headers=headers, json={"name": "a", "gpus": 72, "tenant": "acme"})
    client.post("/api/v1/workloads", headers=headers, json={"name": "b", "gpus": 288, "tenant": "acme"})
    return app, headers


EXAMPLES_PER_MODE = 10


def test_no_input_gives_a_server_error(fuzz_target):
    app, headers = fuzz_target
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 20
    failures: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @given(case=operation.as_strategy(generation_mode=mode))
            @settings(
                max_examples=EXAMPLES_PER_MODE,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
                phases=[Phase.generate],
            )
            def call(case) -> None:
                response = case.call(headers=headers)
                if response.status_code >= 500:
                    failures.append(
                        f"{case.method} {case.formatted_path} {case.body!r} -> {response.status_code}"
                    )
                elif response.status_code >= 400 and "error" not in response.json():
                    failures.append(f"{case.method} {case.formatted_path}: 4xx without an error body")

            try:
                call()
            except Unsatisfiable:  # nothing to make invalid (e.g. an operation without parameters)
                assert mode == GenerationMode.NEGATIVE
    assert not failures, "\n".join(failures[:20])
