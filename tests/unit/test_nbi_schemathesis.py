"""Property-based fuzzing of the NBI with schemathesis over its own /openapi.json, with a
valid bearer token, against a real NFVO (fake NFVI) holding an onboarded NSD and an NS
instance: no request may cause a 5xx, and every response must conform to the document
(status codes, content types, headers, bodies); requests the document forbids must be
refused. Run with -s to see how many requests were generated.

One check is left out, ``positive_data_acceptance`` (a schema-valid request must be
accepted): SOL013's filter grammar and opaque paging markers, and the subscription's
callback check (a GET answering 204), cannot be written in OpenAPI, so a request valid
for the document can rightly be refused with 400 or 422."""
from __future__ import annotations

import sys

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from nbi_helpers import Env, onboard
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from mano.nbi.auth import Auth

MAX_EXAMPLES = 40     # per operation and generation mode


def test_no_server_error_and_responses_conform(tmp_path):
    """Any request the document admits (and, in negative mode, many it does not) gets a
    non-5xx answer that conforms to the document; every operation is exercised."""
    env = Env(tmp_path)
    try:
        auth = Auth(env.records)
        env.app.state.auth = auth
        secret = auth.add_client("fuzz", "fuzz")
        token = env.client.post("/oauth2/token", data={"grant_type": "client_credentials"},
                                auth=("fuzz", secret)).json()["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        onboard(env.client, headers=headers)
        env.client.post("/nslcm/v1/ns_instances", headers=headers, json={
            "nsdId": "chain3", "nsName": "web", "nsDescription": ""})
        schema = schemathesis.openapi.from_asgi("/openapi.json", env.app)
        failures, operations, requests = [], 0, 0
        for result in schema.get_all_operations():
            op = result.ok()
            operations += 1
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @given(case=op.as_strategy(generation_mode=mode))
                @settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True,
                          database=None, suppress_health_check=list(HealthCheck))
                def run(case):
                    nonlocal requests
                    requests += 1
                    case.call_and_validate(headers={**(case.headers or {}), **headers},
                                           excluded_checks=[positive_data_acceptance])
                try:
                    run()
                except Unsatisfiable:
                    pass     # nothing to make invalid (no parameters, or only free strings)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 -- report all
                    failures.append(f"{op.label} ({mode.value}): {exc}")
        env.app.state.lcm.runner.join()
        print(f"\nschemathesis: {requests} generated requests over {operations} operations",
              file=sys.stderr)
        assert not failures, "\n\n".join(failures)
        assert operations >= 30 and requests > operations
    finally:
        env.close()
