"""The API says what it does: schemathesis drives every operation in /openapi.json with
generated valid and invalid input, without a token, with an admin's and with a union's,
and checks each response against the document (status, content type, headers, body).
No input earns a 5xx.

Bounded: a few examples an operation (the coverage phase's exhaustive boundary values
are left out), on SQLite and PostgreSQL, so it runs in well under a minute.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.strategies import SearchStrategy
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Err
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.main import create_app
from tests.letters.factories import confirm, sign
from tests.organisers.factories import World, make_world

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CONFIG: dict[str, Any] = {}
# Generated requests per operation and mode (each sent three times).
EXAMPLES = 5


@pytest.fixture
def world(session: Session, settings: Settings) -> World:
    """An appeal with two unions, their tokens, and a confirmed letter signed through one."""
    world = make_world(session)
    letter = sign(session, world.appeal, settings, org="unite")
    confirm(session, letter, settings)
    session.commit()
    return world


def test_every_operation_does_what_the_document_says(world: World, settings: Settings) -> None:
    app = create_app(settings, deliver_in_process=False)
    failures: dict[str, str] = {}
    with TestClient(app):  # the app's lifespan runs
        schema = schemathesis.openapi.from_asgi(
            "/openapi.json", app, config=schemathesis.Config.from_dict(CONFIG)
        )
        operations = []
        for result in schema.get_all_operations():
            if isinstance(result, Err):  # an operation the document cannot describe
                raise result.err()
            operations.append(result.ok())
        assert len(operations) >= 22
        for operation in operations:
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                strategy = operation.as_strategy(
                    generation_mode=mode,
                    path_parameters={"slug": "free-them"} if "{slug}" in operation.path else None,
                )
                try:
                    _exercise(strategy, world)
                except Unsatisfiable:
                    assert mode is GenerationMode.NEGATIVE  # nothing to get wrong: no input
                except Exception as exc:
                    failures[f"{operation.label} ({mode.value})"] = str(exc)[:2000]
    assert not failures, "\n\n".join(f"{label}:\n{why}" for label, why in failures.items())


def _exercise(strategy: SearchStrategy[Any], world: World) -> None:
    @given(case=strategy)
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    def run(case: Any) -> None:
        # Each generated request three times: anonymous, as an admin, as a union.
        for who in ("none", "admin", "unite"):
            case.call_and_validate(headers=world.auth(who), checks=CHECKS)

    run()
