"""Property-based fuzzing of the whole API from its OpenAPI document (schemathesis), against the
real server on loopback: no server error (5xx) and no response that breaks the documented schema."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis (the API fuzzer) is not installed")

from hypothesis import HealthCheck, settings  # noqa: E402

from api.app import Settings, create_app  # noqa: E402
from tests.api.server import LiveServer  # noqa: E402

EXAMPLES = 25  # per operation; the whole run takes about a minute
# No 5xx, and every response as documented (status code, content type, headers, body schema).
# Not "every schema-valid request is accepted": random bytes are a valid upload and a valid
# enrollment photo by schema, and refusing to enroll a photo with no face is the point.
from schemathesis.checks import not_a_server_error  # noqa: E402
from schemathesis.specs.openapi.checks import (  # noqa: E402
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    app = create_app(
        str(tmp_path_factory.mktemp("fuzz") / "ws"),
        settings=Settings(
            max_upload_bytes=1 << 20,
            key_rate_per_minute=10**6,
            address_rate_per_minute=10**6,
            auth_failure_rate_per_minute=10**6,
        ),
    )
    keys = {role: app.state.service.keys.create_key(role, "fuzzer")[1] for role in ("admin", "intake")}
    with LiveServer(app) as srv:
        yield srv.url, keys


def test_api_never_errors_and_keeps_its_schema(live):
    """Every operation of /openapi.json, EXAMPLES generated cases each (schemathesis strategies run
    by Hypothesis here: schemathesis's own pytest plugin does not run under pytest 9)."""
    from hypothesis import given

    url, keys = live
    intake_routes = {"/v1/verifications", "/v1/subjects/{subject_id}/verification"}  # an admin is refused there
    api = schemathesis.openapi.from_url(f"{url}/openapi.json")
    operations = [result.ok() for result in api.get_all_operations()]
    assert len(operations) >= 11
    assert intake_routes <= {op.path for op in operations}
    for op in operations:
        key = keys["intake" if op.path in intake_routes else "admin"]

        @given(case=op.as_strategy())
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            case.call_and_validate(headers={"Authorization": f"Bearer {key}"}, checks=CHECKS)

        run()
