"""/metrics label values come from closed sets: a client sending made-up method tokens and paths (and
getting 401, 404 or 405 for them) adds no series. In-process on the fake upstream: the labels are the
gateway's own choice, whatever serves it."""

from __future__ import annotations

import random
import string

import pytest

from tests.support.fake_upstream import FakeUpstream, fake_app

pytestmark = pytest.mark.slow  # 20,000 requests: ~15 s of CPU

KEY = {"X-API-Key": "k1"}
REQUESTS = 20_000


def metrics_size(client) -> int:
    return len(client.get("/metrics", headers=KEY).get_data())


def test_random_methods_and_paths_do_not_grow_metrics():
    client = fake_app(FakeUpstream(), api_keys=("k1",)).test_client()
    rng = random.Random(20)

    def token() -> str:
        return "".join(rng.choices(string.ascii_uppercase + string.digits, k=8))

    def one(i: int) -> None:
        kind = 3 if i % 16 == 15 else i % 3  # one request in 16 is normal traffic
        if kind == 0:  # an unknown method token on a real route: 401 (no key), or 405 with the key
            client.open("/v1/classify", method=token(), headers=KEY if i % 8 == 0 else {})
        elif kind == 1:  # a random path without a key: 401
            client.get(f"/{token()}/{token()}")
        elif kind == 2:  # a random path with the key: 404
            client.open(f"/v1/{token()}", method=rng.choice(["GET", "POST", "DELETE", token()]), headers=KEY)
        else:  # and normal traffic (kind 3)
            client.post("/v1/classify", json={"model": "news", "texts": ["足球"]}, headers=KEY)

    for i in range(400):  # every kind of answer once, so each closed-set series exists
        one(i)
    before = metrics_size(client)
    for i in range(REQUESTS):
        one(i)
    after = metrics_size(client)
    # counts grow by a few digits; a series per token or path would grow it ~100-fold
    assert after < 1.2 * before, (before, after)
    text = client.get("/metrics", headers=KEY).get_data(as_text=True)
    assert 'method="other",route="other",status="401"' in text
    assert 'method="other",route="other",status="405"' in text
    assert 'method="GET",route="other",status="404"' in text
