"""The response cache (serving/gateway/cache.py): an LRU bounded in entries and bytes, per text under
(model, resolved version, cleaned text, top_k).

The LRU itself is tested alone; the gateway's use of it in-process through `create_app` with the
FakeUpstream (which records every predict call, so "not sent upstream" is observable); and once against
the real local model server, where the per-operation upstream latency histogram shows that a repeated
request made no predict call.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest
from click.testing import CliRunner

from data_prep.errors import UserError
from serving.gateway.cache import ResponseCache
from serving.gateway.config import GatewayConfig
from tests.support.fake_upstream import FakeUpstream, FakeVersion
from tests.support.openapi_check import check_response

# ---------------------------------------------------------------- the LRU alone


class Computer:
    """A `compute` callback that answers {"text": ...} and records which texts it was asked for."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.asked: list[list[str]] = []

    def __call__(self, positions: list[int]) -> list[dict[str, Any]]:
        batch = [self.texts[i] for i in positions]
        self.asked.append(batch)
        return [{"text": text} for text in batch]


def lookup(cache: ResponseCache, texts: list[str], *, version: int = 1, top_k: int = 1) -> list[str]:
    """The texts `cache` had to compute for this lookup (asserting the results come back in order)."""
    compute = Computer(texts)
    results = cache.results("m", version, top_k, texts, compute)
    assert results == [{"text": text} for text in texts]
    return [text for batch in compute.asked for text in batch]


def test_lru_evicts_the_least_recently_used_entry_past_the_entry_bound():
    cache = ResponseCache(2, 10**6)
    assert lookup(cache, ["a", "b"]) == ["a", "b"]
    assert lookup(cache, ["a"]) == []  # a hit, and now "b" is the least recently used
    assert lookup(cache, ["c"]) == ["c"]
    assert len(cache) == 2
    assert lookup(cache, ["a", "c"]) == []
    assert lookup(cache, ["b"]) == ["b"]  # evicted


def test_lru_evicts_past_the_byte_bound_and_skips_an_entry_larger_than_it():
    probe = ResponseCache(10, 10**6)
    lookup(probe, ["a"])
    one = probe.bytes  # one entry of this shape; "b" and "c" cost the same
    assert one > 0
    cache = ResponseCache(10, 2 * one + one // 2)
    lookup(cache, ["a", "b", "c"])
    assert len(cache) == 2 and cache.bytes == 2 * one
    assert lookup(cache, ["b", "c"]) == [] and lookup(cache, ["a"]) == ["a"]
    tiny = ResponseCache(10, one // 2)
    assert lookup(tiny, ["a"]) == ["a"] and lookup(tiny, ["a"]) == ["a"]  # never fits: answered, not kept
    assert len(tiny) == 0 and tiny.bytes == 0


def test_lru_key_holds_model_version_and_top_k_and_asks_each_missing_text_once():
    cache = ResponseCache(10, 10**6)
    assert lookup(cache, ["a", "b", "a", "b", "a"]) == ["a", "b"]  # duplicates go upstream once
    assert lookup(cache, ["a"], version=2) == ["a"]
    assert lookup(cache, ["a"], top_k=3) == ["a"]
    assert lookup(cache, ["a", "b"]) == []


def test_lru_caches_nothing_when_compute_fails_and_reports_its_lookups_and_size():
    looked: list[tuple[str, int, int]] = []
    sizes: list[tuple[int, int]] = []
    cache = ResponseCache(10, 10**6, on_lookup=lambda *a: looked.append(a), on_size=lambda *s: sizes.append(s))

    def broken(positions: list[int]) -> list[dict[str, Any]]:
        raise RuntimeError("upstream down")

    with pytest.raises(RuntimeError):
        cache.results("m", 1, 1, ["a"], broken)
    assert len(cache) == 0 and sizes == []
    lookup(cache, ["a", "b"])
    lookup(cache, ["a", "c"])
    assert looked == [("m", 0, 1), ("m", 0, 2), ("m", 1, 1)]
    assert [entries for entries, _ in sizes] == [2, 3] and sizes[-1][1] == cache.bytes
    cache.clear()
    assert (len(cache), cache.bytes, sizes[-1]) == (0, 0, (0, 0))


def test_lru_under_concurrent_threads_keeps_its_bounds_and_answers():
    cache = ResponseCache(50, 10**6)
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            for i in range(300):
                texts = [f"t{(seed * 7 + i * j) % 120}" for j in range(1, 5)]
                lookup(cache, texts)  # asserts every answer belongs to its text
        except BaseException as exc:  # noqa: BLE001 - reported to the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(cache) == 50
    last = [f"t{i}" for i in range(70, 120)]
    lookup(cache, last)  # now the cache holds exactly these 50
    probe = ResponseCache(100, 10**6)
    lookup(probe, last)
    assert cache.bytes == probe.bytes  # the byte count stayed exact through the concurrent updates


# ---------------------------------------------------------------- in the gateway, with the FakeUpstream


@pytest.fixture
def make_fake_client(make_fake_client):
    """conftest's, with the cache on."""

    def make(**overrides: object):
        return make_fake_client(**{"cache_entries": 100, **overrides})

    return make


@pytest.fixture
def openapi(make_fake_client):
    return make_fake_client().get("/openapi.json").get_json()


def classify(client, openapi, **body) -> dict[str, Any]:
    answer = client.post("/v1/classify", json=body)
    check_response(openapi, "/v1/classify", "post", answer.status_code, answer.get_json())
    assert answer.status_code == 200, answer.get_json()
    found: dict[str, Any] = answer.get_json()
    found.pop("request_id")
    return found


def predicted_values(fake: FakeUpstream) -> list[tuple]:
    """(version, values) of every predict call so far."""
    return [(call[2], call[4]) for call in fake.calls if call[0] == "predict"]


def metric(client, line_start: str) -> float:
    for line in client.get("/metrics").get_data(as_text=True).splitlines():
        if line.startswith(line_start + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_a_repeated_text_is_a_hit_and_never_sent_upstream_again(make_fake_client, fake, openapi):
    client = make_fake_client()
    first = classify(client, openapi, model="news", texts=["我喜欢看足球"])
    again = classify(client, openapi, model="news", texts=["我喜欢看足球"])
    assert again == first
    assert predicted_values(fake) == [(2, ("我 喜欢 看 足球",))]
    assert metric(client, 'textclf_gateway_cache_hits_total{model="news"}') == 1.0
    assert metric(client, 'textclf_gateway_cache_misses_total{model="news"}') == 1.0
    assert metric(client, "textclf_gateway_cache_entries") == 1.0
    assert metric(client, "textclf_gateway_cache_bytes") > 0


def test_a_batch_of_hits_and_misses_sends_only_the_misses_in_one_call(make_fake_client, fake, openapi):
    client = make_fake_client()
    classify(client, openapi, model="news", texts=["看足球", "天气"])
    mixed = classify(client, openapi, model="news", texts=["银行股票", "看足球", "电脑", "天气", "银行股票"])
    assert predicted_values(fake) == [(2, ("看 足球", "天气")), (2, ("银行 股票", "电脑"))]
    assert [r["label"] for r in mixed["results"]] == ["财经", "体育", "科技", "财经", "财经"]
    assert metric(client, 'textclf_gateway_cache_hits_total{model="news"}') == 2.0
    assert metric(client, 'textclf_gateway_cache_misses_total{model="news"}') == 5.0


@pytest.mark.parametrize(
    "body",
    [
        {"model": "news", "texts": ["银行股票", "看足球", "天气"]},
        {"model": "news", "texts": ["足球 股票 股票", "芯片"], "top_k": 3, "version_label": "stable"},
        {"model": "chars", "texts": ["机", "<b>股</b>"], "top_k": 50},  # no class_names: None labels
    ],
)
def test_cached_answers_are_identical_to_uncached_ones(make_fake_client, openapi, body):
    uncached = make_fake_client(cache_entries=0)
    cached = make_fake_client()
    classify(cached, openapi, **{**body, "texts": body["texts"][:1]})  # the first text is then a hit
    expected = classify(uncached, openapi, **body)
    assert classify(cached, openapi, **body) == expected  # a mix of hit and misses
    assert classify(cached, openapi, **body) == expected  # all hits


def test_the_key_is_the_cleaned_text_and_holds_top_k(make_fake_client, fake, openapi):
    client = make_fake_client()
    classify(client, openapi, model="news", texts=["看足球"])
    classify(client, openapi, model="news", texts=["  看足球 ", "<p>看足球</p>"])  # clean to the same text
    assert len(predicted_values(fake)) == 1
    classify(client, openapi, model="news", texts=["看足球"], top_k=2)
    assert len(predicted_values(fake)) == 2


def test_a_moved_label_or_a_new_latest_version_is_a_miss(make_fake_client, fake, openapi):
    client = make_fake_client(metadata_ttl_s=0)  # resolve every request afresh
    assert classify(client, openapi, model="news", texts=["银行"], version_label="stable")["version"] == 1
    fake.labels["news"]["stable"] = 2
    moved = classify(client, openapi, model="news", texts=["银行"], version_label="stable")
    assert moved["version"] == 2
    # the key is the RESOLVED version: version 1 by number hits what "stable" cached when it meant 1
    assert classify(client, openapi, model="news", texts=["银行"], version=1)["version"] == 1
    assert [version for version, _ in predicted_values(fake)] == [1, 2]
    fake.models["news"][3] = FakeVersion(bias=0)  # a new latest version loads
    latest = classify(client, openapi, model="news", texts=["银行"])
    assert latest["version"] == 3 and latest["results"] != moved["results"]
    assert [version for version, _ in predicted_values(fake)] == [1, 2, 3]


def test_a_stale_version_found_unloaded_is_answered_by_the_new_one_and_cached_under_it(make_fake_client, fake, openapi):
    client = make_fake_client(metadata_ttl_s=600)
    assert classify(client, openapi, model="news", texts=["看足球"])["version"] == 2
    fake.models["news"] = {3: FakeVersion(bias=0)}  # 2 unloaded; the gateway's signature still says 2
    body = classify(client, openapi, model="news", texts=["银行", "看足球"])
    assert body["version"] == 3  # the miss went to 2, got NOT_FOUND, was resolved again: no answer of 2 leaks
    assert classify(client, openapi, model="news", texts=["看足球", "银行"])["version"] == 3
    assert [version for version, _ in predicted_values(fake)] == [2, 2, 3]


@pytest.mark.parametrize("size", [{"cache_entries": 0}, {"cache_mb": 0}])
def test_size_zero_is_off(make_fake_client, fake, openapi, size):
    client = make_fake_client(**size)
    for _ in range(3):
        classify(client, openapi, model="news", texts=["看足球"])
    assert len(predicted_values(fake)) == 3
    assert "textclf_gateway_cache_hits_total{" not in client.get("/metrics").get_data(as_text=True)


def test_upstream_errors_are_not_cached(make_fake_client, fake, openapi):
    client = make_fake_client(retries=0)
    fake.fail("predict", "unavailable")
    failed = client.post("/v1/classify", json={"model": "news", "texts": ["看足球"]})
    assert (failed.status_code, failed.get_json()["error"]["code"]) == (503, "upstream_unavailable")
    classify(client, openapi, model="news", texts=["看足球"])
    classify(client, openapi, model="news", texts=["看足球"])
    assert len(predicted_values(fake)) == 2  # the failed call, then one that answered and was cached


def test_cache_settings_come_from_env_and_flags(monkeypatch):
    config = GatewayConfig.from_env(
        {"TEXTCLF_TFSERVING_GRPC": "localhost:8500", "TEXTCLF_CACHE_ENTRIES": "500", "TEXTCLF_CACHE_MB": "1.5"}
    )
    assert (config.cache_entries, config.cache_mb) == (500, 1.5)
    assert GatewayConfig(tfserving_grpc="localhost:8500").cache_entries == 0  # off by default
    with pytest.raises(UserError, match="cache_entries"):
        GatewayConfig(tfserving_grpc="localhost:8500", cache_entries=-1)

    import serving.gateway.app
    from serving.gateway.cli import serve

    seen: list[GatewayConfig] = []

    class NotRun:
        def run(self, **kwargs: object) -> None:
            pass

    def capture(config: GatewayConfig) -> NotRun:
        seen.append(config)
        return NotRun()

    monkeypatch.setattr(serving.gateway.app, "create_app", capture)
    result = CliRunner().invoke(
        serve, ["--dev", "--tfserving-grpc", "localhost:8500", "--cache-entries", "7", "--cache-mb", "2"], env={}
    )
    assert result.exit_code == 0, result.output
    assert (seen[0].cache_entries, seen[0].cache_mb) == (7, 2.0)


# ---------------------------------------------------------------- against the real model server


@pytest.mark.parametrize("protocol", ["rest", "grpc"])
def test_real_model_server_repeated_request_is_a_hit(make_client, model_server, protocol):
    upstream = (
        {"tfserving_rest": model_server.rest_url}
        if protocol == "rest"
        else {"tfserving_grpc": model_server.grpc_target}
    )
    client = make_client(cache_entries=1000, **upstream)
    uncached = make_client(**upstream)
    body = {"model": "news", "texts": ["我喜欢看足球", "银行股票大涨"], "version_label": "stable"}
    first = client.post("/v1/classify", json=body).get_json()
    predicts = 'textclf_gateway_upstream_seconds_count{operation="predict"}'
    assert metric(client, predicts) == 1.0
    second = client.post("/v1/classify", json=body).get_json()
    expected = uncached.post("/v1/classify", json=body).get_json()
    assert [r["label"] for r in first["results"]] == ["体育", "财经"]
    for answer in (first, second):
        assert {k: v for k, v in answer.items() if k != "request_id"} == {
            k: v for k, v in expected.items() if k != "request_id"
        }
    assert metric(client, predicts) == 1.0  # the second request never reached the model server
    assert metric(client, 'textclf_gateway_cache_hits_total{model="news"}') == 2.0
    assert metric(client, 'textclf_gateway_cache_misses_total{model="news"}') == 2.0
    assert metric(client, "textclf_gateway_cache_entries") == 2.0
