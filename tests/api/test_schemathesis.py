"""Property-based tests of the API against its own OpenAPI document (schemathesis).

Every operation gets generated requests, once with the generated ids and once with ids of real
objects, as a department user and as an admin; checks: no server error, only documented status
codes, responses matching their schemas.
"""

from __future__ import annotations

import io
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from tests.api.conftest import Cast
from tests.factories import add_evidence
from web.api.contract import openapi_document
from workflow.demo import demo_pdf
from workflow.jobs import start_job
from workflow.routine import submit_routine
from workflow.schemes import import_shipped
from workflow.users import issue_token

CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
MAX_EXAMPLES = 8


@pytest.mark.slow  # a property-based run over every operation
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_api_conforms_to_its_openapi_document(
    app: Flask, session: Session, cast: Cast, mode: GenerationMode
) -> None:
    w = cast.world
    item = w.item(session, w.dep_a, "1")
    evidence = add_evidence(session, app.extensions["store"], item, w.member_a)
    _, sacrificial = issue_token(session, w.member_b)
    record = submit_routine(
        session, app.extensions["store"], w.assessment, w.member_a, kind="monthly_info",
        period="2018-08", title="信息", stream=io.BytesIO(demo_pdf("routine")),
        filename="信息.pdf", max_size=1 << 20,
    )  # fmt: skip
    stored = import_shipped(session)[0].record
    job = start_job(session, w.admin, "audit_verify", {}).job  # queued: its download is a 409
    session.commit()
    real_ids = {
        "aid": w.assessment.id,
        "iid": item.id,
        "eid": evidence.id,
        "token_id": sacrificial.id,
        "did": w.dep_a.id,
        "rid": record.id,
        "nid": 1,  # no notice exists: the documented 404
        "sid": stored.id,
        "code": "AAAA-BBBB-CCCC-DDDD",  # no such verification code: the documented 404
        "jid": job.id,
        "stage": "submit",  # a stage of the calendar (自评提交截止)
        "oid": 1,  # no calendar override exists: the documented 404
        "uid": w.dep_a.unit_id,  # department A's unit (its history, the unit's own user)
    }
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    with app.app_context():
        paths = openapi_document()["paths"]
    documented = {f"{m.upper()} {p}" for p, ops in paths.items() for m in ops}
    # schemathesis leaves out the document's own path.
    assert {op.label for op in operations} == documented - {"GET /api/v1/openapi.json"}
    for operation in operations:
        strategy = operation.as_strategy(generation_mode=mode)

        @given(case=strategy)
        @settings(
            max_examples=MAX_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            phases=[Phase.explicit, Phase.generate],
            suppress_health_check=list(HealthCheck),
        )
        def run(case: Any) -> None:
            for role in ("admin", "own"):
                case.call_and_validate(headers=cast.headers(role), checks=CHECKS)
            if case.path_parameters and mode is GenerationMode.POSITIVE:
                case.path_parameters = {k: real_ids[k] for k in case.path_parameters}
                case.call_and_validate(headers=cast.headers("own"), checks=CHECKS)

        try:
            run()
        except Unsatisfiable:
            # Negative mode: an operation without parameters or body has nothing to break.
            assert mode is GenerationMode.NEGATIVE and not _has_inputs(operation)


def _has_inputs(operation: Any) -> bool:
    raw = operation.definition.raw
    return bool(raw.get("parameters") or raw.get("requestBody"))
