"""Auth, rate limiting, and the error surface every SDK call shares."""

from __future__ import annotations

import time
import uuid

import pytest

from pictograph import AuthError, Client, NotFoundError, RateLimitError

from compat_helpers import API, unique_name
from conftest import FREE_RATE_LIMIT


def test_cli_keys_look_like_live_keys(server):
    for name, key in server.keys.items():
        assert key.startswith("pk_live_"), f"{name} key {key!r}"
    assert len(set(server.keys.values())) == len(server.keys), "every minted key is distinct"


@pytest.mark.parametrize("bad_key", ["pk_live_not-a-real-key", "garbage"])
def test_bad_key_is_auth_error(server, bad_key, tmp_path):
    with Client(api_key=bad_key, base_url=server.base_url) as c:
        with pytest.raises(AuthError) as ei:
            c.datasets.list()
        assert ei.value.status_code == 401
        with pytest.raises(AuthError):
            c.images.get(str(uuid.uuid4()))
        with pytest.raises(AuthError):
            c.projects.create(unique_name("unauthorised"))
        with pytest.raises(AuthError):
            c.images.download(str(uuid.uuid4()), tmp_path / "x.png")


def test_missing_key_header_is_401(raw):
    r = raw(None).get(f"{API}/datasets/", params={"limit": 1})
    assert r.status_code == 401


def test_errors_carry_request_id_and_json_body(client):
    with pytest.raises(NotFoundError) as ei:
        client.datasets.get(unique_name("nothing-here"))
    err = ei.value
    assert err.status_code == 404
    assert err.request_id, "responses carry X-Request-Id, surfaced as ApiError.request_id"
    assert isinstance(err.response, dict), f"error bodies are JSON objects, got {err.response!r}"


def test_idempotency_key_replays_create(server, raw, client):
    http = raw("owner")
    name = unique_name("idem")
    key = uuid.uuid4().hex
    first = http.post(f"{API}/projects/", json={"name": name}, headers={"Idempotency-Key": key})
    assert first.status_code in (200, 201), first.text
    replay = http.post(f"{API}/projects/", json={"name": name}, headers={"Idempotency-Key": key})
    assert replay.status_code == first.status_code, f"replay must not 409: {replay.text[:200]}"
    assert replay.json()["project"]["id"] == first.json()["project"]["id"]
    fresh = http.post(f"{API}/projects/", json={"name": name}, headers={"Idempotency-Key": uuid.uuid4().hex})
    assert fresh.status_code == 409
    assert [d.name for d in client.datasets.list(limit=1000)].count(name) == 1


def test_free_key_rate_limit(server):
    """Uses the session's dedicated free-tier key (PICTOGRAPH_RATE_LIMIT_FREE=5); no other test uses it."""
    with Client(api_key=server.keys["free"], base_url=server.base_url) as c:
        for i in range(FREE_RATE_LIMIT):
            assert isinstance(c.datasets.list(limit=1), list), f"request {i + 1} is within budget"

        # max_retries=0 first, so a too-small Retry-After cannot make the SDK sleep here.
        with Client(api_key=server.keys["free"], base_url=server.base_url, max_retries=0) as once:
            with pytest.raises(RateLimitError) as ei:
                once.datasets.list(limit=1)
        err = ei.value
        assert err.status_code == 429
        assert err.retry_after is not None and err.retry_after > 120, (
            f"Retry-After must exceed the SDK's 120 s auto-wait for a 5/hour budget, got {err.retry_after}"
        )
        assert err.retry_after <= 3600

        # With default retries the SDK gives up at once because Retry-After > 120.
        started = time.monotonic()
        with pytest.raises(RateLimitError) as ei:
            c.datasets.list(limit=1)
        assert time.monotonic() - started < 10
        assert ei.value.retry_after is not None and ei.value.retry_after > 120

    # other keys of the same org are not affected
    with server.client("member") as member:
        member.datasets.list(limit=1)
