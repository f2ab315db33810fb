"""Public routes say only what an orchestrator needs: /readyz gives readiness, the breaker state and model
states (not where TF Serving lives), /v1/models gives names, versions, states and status codes (not TF
Serving's messages, which name files on the model server). The details go to the gateway's log."""

from __future__ import annotations

import logging

from serving.gateway.errors import UpstreamError
from serving.gateway.upstream import VersionStatus
from tests.support.fake_upstream import FakeUpstream, fake_app
from tests.support.openapi_check import check_response

SECRET_PATH = "/srv/secret/models/news/3"


class FailedVersionUpstream(FakeUpstream):
    """The fake, with a version 3 of news that failed to load, as TF Serving reports one."""

    def status(self, model: str) -> list[VersionStatus]:
        listed = super().status(model)
        if model == "news":
            listed.append(VersionStatus(3, "END", "NOT_FOUND", f"Could not find SavedModel .pb at {SECRET_PATH}"))
        return listed


def test_readyz_does_not_name_the_upstream():
    for keys in ((), ("k1",)):
        client = fake_app(FakeUpstream(target="tfserving.internal:8500"), api_keys=keys).test_client()
        answer = client.get("/readyz")
        assert answer.status_code == 200 and set(answer.get_json()) == {"ready", "circuit_breaker", "models"}
        assert "tfserving.internal" not in answer.get_data(as_text=True)


def test_models_passes_no_model_server_messages(caplog):
    fake = FailedVersionUpstream()
    fake.fail("status", error=UpstreamError("not_found", "Could not find base path /srv/secret/models/chars"))
    client = fake_app(fake, models=("chars", "news")).test_client()  # the failure hits the first: chars
    openapi = client.get("/openapi.json").get_json()
    with caplog.at_level(logging.WARNING, logger="textclf.gateway"):
        answer = client.get("/v1/models")
    check_response(openapi, "/v1/models", "get", answer.status_code, answer.get_json())
    chars, news = answer.get_json()["models"]
    assert news["versions"][-1] == {"version": 3, "state": "END", "error_code": "NOT_FOUND"}
    assert chars["error"]["code"] == "model_not_found"
    assert "/srv/secret" not in answer.get_data(as_text=True)
    assert SECRET_PATH in caplog.text  # the operator still finds it in the log
