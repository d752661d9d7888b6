"""Schemathesis against the centre's own OpenAPI: whatever a station, an approver or a monitoring program
sends, the centre answers with a refusal or a result, never a server error."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error

from playout.fleet.centre import Centre, desk_state
from playout.fleet.centre_app import create_centre_app


@pytest.fixture(scope="module")
def centre(tmp_path_factory):
    c = Centre(tmp_path_factory.mktemp("centre-schema") / "centre")
    c.init()
    tokens = {"approver": c.add_approver("tinh"), "reader": c.add_token("fuzz", ["admin"])}
    c.add_station("dong-hai", centre_url="http://127.0.0.1:1/")
    tokens["station"] = (c.folder / "stations" / "dong-hai" / "token").read_text().strip()
    state = desk_state(c, previews=False)
    state.desk._ring = False
    yield create_centre_app(state), tokens
    c.close()


def test_no_operation_answers_a_server_error(centre):
    app, tokens = centre
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checked = []
    for result in schema.get_all_operations():
        operation = result.ok()
        path = operation.path
        who = (
            "station"
            if path.startswith("/api/fleet/asrun")
            else "approver"
            if "/bulletins" in path
            else "reader"
        )

        bearer = f"Bearer {tokens[who]}"

        @given(case=operation.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def answers(case):
            case.headers = {**(case.headers or {}), "Authorization": bearer}  # noqa: B023 - run at once
            case.call_and_validate(checks=[not_a_server_error])

        answers()
        checked.append(operation.label)
    assert len(checked) >= 6, checked
