"""Property-based tests from the OpenAPI schema (schemathesis) against a live `rag serve`: every generated
request, valid or not, gets a documented status and a body that matches the schema, and never a 5xx.

schemathesis's pytest plugin does not run under pytest 9, so its case strategies are driven by hypothesis here.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode, checks

pytestmark = pytest.mark.real_model

CHECKS = [checks.not_a_server_error, checks.status_code_conformance, checks.content_type_conformance,
          checks.response_schema_conformance]
OPERATIONS = [("GET", "/api/v1/health"), ("POST", "/api/v1/search"), ("POST", "/api/v1/ask"),
              ("GET", "/api/v1/collections"), ("GET", "/api/v1/collections/{name}/documents"),
              ("POST", "/api/v1/collections/{name}/documents"),
              ("DELETE", "/api/v1/collections/{name}/documents/{doc_id}")]
# invalid cases only where the schema constrains something: the bodies (any string is a valid path segment)
CASES = [(m, p, mode) for m, p in OPERATIONS for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode is GenerationMode.POSITIVE or m == "POST"]
EXAMPLES = 25  # per operation and mode (10 runs); about 20 s after the server is up, on 2 cores


@pytest.fixture(scope="module")
def api_schema(api_server):
    return schemathesis.openapi.from_url(api_server.url + "api/v1/openapi.json")


def test_every_operation_is_tested(api_schema):
    listed = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert listed == set(OPERATIONS)


@pytest.mark.parametrize("method,path,mode", CASES, ids=[f"{m} {p} {mode.value}" for m, p, mode in CASES])
def test_operation_conforms_to_the_schema(api_schema, api_server, method, path, mode):
    operation = api_schema[path][method]
    base = api_server.url.rstrip("/")
    statuses = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case):
        response = case.call_and_validate(base_url=base, checks=CHECKS, timeout=60)
        statuses.append(response.status_code)

    run()
    assert statuses and max(statuses) < 500
    if mode is GenerationMode.NEGATIVE:  # bodies that break the schema are refused
        assert any(400 <= s < 500 for s in statuses), statuses
