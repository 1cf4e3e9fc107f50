"""Auth, rate limiting, idempotency and the error envelope as 1.69.146 reads them."""

from __future__ import annotations

import time
import uuid

import pytest

from pictograph import AuthError, Client, ForbiddenError, NotFoundError, RateLimitError, ValidationError

from conftest import FREE_RATE_LIMIT
from helpers169 import API, unique_name


@pytest.mark.parametrize("bad_key", ["pk_live_not-a-real-key", "garbage"])
def test_bad_key_is_auth_error(server, bad_key, tmp_path):
    with Client(api_key=bad_key, base_url=server.base_url) as c:
        with pytest.raises(AuthError) as ei:
            c.datasets.list()
        assert (ei.value.status_code, ei.value.code) == (401, "unauthorized")
        with pytest.raises(AuthError):
            c.datasets.create(unique_name("unauthorised"))
        with pytest.raises(AuthError):
            c.images.download("ds", "a.jpg", tmp_path / "x.png")


def test_error_envelope_code_message_and_request_id(client):
    with pytest.raises(NotFoundError) as ei:
        client.datasets.get(unique_name("nothing-here"))
    err = ei.value
    assert (err.status_code, err.code) == (404, "not_found")
    assert err.request_id
    assert "not found" in str(err).lower()
    assert isinstance(err.response, dict) and err.response["error"]["code"] == "not_found"


def test_validation_errors_carry_field_errors(client, dataset):
    with pytest.raises(ValidationError) as ei:
        client.images.list(dataset.name, limit=100000)
    assert ei.value.status_code == 422 and ei.value.field_errors


def test_member_cannot_delete_datasets(member_client, dataset):
    with pytest.raises(ForbiddenError) as ei:
        member_client.datasets.delete(dataset.name)
    assert ei.value.code == "forbidden"


def test_idempotency_key_replays_create(raw, client):
    http = raw("owner")
    name = unique_name("idem")
    key = uuid.uuid4().hex
    first = http.post(f"{API}/datasets/", json={"name": name}, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201), first.text
    replay = http.post(f"{API}/datasets/", json={"name": name}, headers={"Idempotency-Key": key})
    assert replay.status_code == first.status_code, replay.text
    assert replay.json()["data"]["id"] == first.json()["data"]["id"]
    fresh = http.post(f"{API}/datasets/", json={"name": name}, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 409
    assert [d.name for d in client.datasets.list(limit=1000)].count(name) == 1


def test_free_key_rate_limit(server):
    """Uses the session's dedicated free-tier key (PICTOGRAPH_RATE_LIMIT_FREE=5)."""
    with Client(api_key=server.keys["free"], base_url=server.base_url, max_retries=0) as c:
        for i in range(FREE_RATE_LIMIT):
            assert isinstance(c.datasets.list(limit=1), list), f"request {i + 1} is within budget"
        with pytest.raises(RateLimitError) as ei:
            c.datasets.list(limit=1)
        assert (ei.value.status_code, ei.value.code) == (429, "rate_limited")
        assert ei.value.retry_after is not None and 120 < ei.value.retry_after <= 3600
    with Client(api_key=server.keys["free"], base_url=server.base_url) as c:
        started = time.monotonic()
        with pytest.raises(RateLimitError):
            c.datasets.list(limit=1)
        assert time.monotonic() - started < 10, "Retry-After > 120 s is raised, not waited for"
    with server.client("member") as member:
        member.datasets.list(limit=1)
