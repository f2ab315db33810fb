"""The gateway's web page at `/`, in a real browser: Debian's chromium (headless, via chromedriver and
selenium), the real gateway app served over loopback HTTP, the real local model server (conftest) with
the tiny news model, whose labels are topic classifications of Chinese text. Nothing is mocked."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.support.browser import (
    CHROMIUM,
    PHONE,
    chromium,
    classify,
    console_entries,
    horizontal_overflow,
    open_page,
    shown_results,
    text_of,
    wait_for,
)
from tests.support.gated_upstream import serving

pytestmark = [
    pytest.mark.slow,
    # CI (CI=true; .ci/run installs chromium) must run it: there a missing browser fails, it does not skip
    pytest.mark.skipif(
        not CHROMIUM.exists() and not os.environ.get("CI"), reason=f"no {CHROMIUM}: apt-get install chromium"
    ),
]

# reviews of hotels, phones, banks and a match: the tiny news model tells 体育 / 科技 / 财经 by keywords (the
# phones' review names a bank too: a word against its label)
REVIEWS = (
    "这家酒店很干净，服务也好",
    "房间太脏了，再也不来了",
    "新买的手机和电脑都很好用，就是银行太慢",
    "银行推荐的股票太差了",
    "昨晚的比赛看得很过瘾，足球真好看",
)
MAX_TEXT_CHARS = 50
KEY = "s3cret-key"


@pytest.fixture
def page_gateway(model_server: Any) -> Iterator[Any]:
    """`with page_gateway(**settings) as url:` the gateway app (gRPC to the model server) on a loopback port,
    behind `front` (a WSGI middleware) when given."""
    from serving.gateway.app import create_app
    from serving.gateway.config import GatewayConfig
    from serving.gateway.context import gateway

    @contextlib.contextmanager
    def start(front: Callable[[Any], Any] | None = None, **settings: Any) -> Iterator[str]:
        upstream = {"tfserving_grpc": model_server.grpc_target, "models": model_server.models}
        app = create_app(GatewayConfig(**upstream, max_text_chars=MAX_TEXT_CHARS, **settings))
        try:
            with serving(front(app) if front else app) as url:
                yield url
        finally:
            gateway(app).upstream.close()

    return start


def html_proxy(app: Any) -> Any:
    """A proxy in front of the gateway answering the API's routes with its own HTML page and a 200 (a captive
    portal, a misrouted path prefix); the page and its files still come from the gateway."""

    def front(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ["PATH_INFO"].startswith("/v1/"):
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [b"<!doctype html><title>Sign in</title><p>Sign in to use this network.</p>"]
        return app(environ, start_response)  # type: ignore[no-any-return]

    return front


def api_classify(url: str, headers: dict[str, str] | None = None, **body: Any) -> dict[str, Any]:
    answer = requests.post(f"{url}/v1/classify", json=body, headers=headers or {}, timeout=30)
    return dict(answer.json())


def expected_results(answer: dict[str, Any], texts: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {"text": text, "label": result["label"], "top_k": [entry["label"] for entry in result["top_k"]]}
        for text, result in zip(texts, answer["results"], strict=True)
    ]


def shown_explanations(driver: Any) -> list[list[dict[str, Any]]]:
    """Once every classified text is explained: per text, its highlighted tokens as the page draws them."""
    explained = "return document.querySelectorAll('#results .tokens').length === Number(arguments[0])"
    wait_for(driver, lambda d: d.execute_script(explained, len(shown_results(d))))
    script = """return [...document.querySelectorAll('#results .tokens')].map((line) =>
        [...line.querySelectorAll('.token')].map((t) => ({token: t.firstChild.textContent, side: t.classList[1],
        importance: Number(t.dataset.importance), title: t.title, visible: t.checkVisibility()})))"""
    return list(driver.execute_script(script))


def side(importance: float) -> str:
    """The class page.js gives a token: its importance for the label, against it, or about none."""
    return "for" if importance > 0.0005 else "against" if importance < -0.0005 else "neutral"


def problems(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Console errors and warnings, but for the network log of an API answer the test made fail (a page
    file that failed to load, a script error or a CSP violation all count)."""
    expected = [e for e in entries if e.get("source") == "network" and "/v1/" in e["message"]]
    return [e for e in entries if e["level"] in ("SEVERE", "WARNING") and e not in expected]


def test_page_classifies_as_the_api_does(page_gateway: Any, tmp_path: Path) -> None:
    with page_gateway() as url, chromium(tmp_path / "profile") as driver:
        assert requests.get(f"{url}/", timeout=10).headers["Content-Security-Policy"].startswith("default-src 'self'")
        open_page(driver, f"{url}/")
        listed = requests.get(f"{url}/v1/models", timeout=10).json()["models"]
        rows = driver.execute_script(
            "return [...document.querySelectorAll('#models tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
        )
        assert sorted(map(tuple, rows)) == sorted(
            (m["name"], str(v["version"]), v["state"]) for m in listed for v in m["versions"]
        )
        assert "AVAILABLE" in {row[2] for row in rows}

        # the model field starts at the first model the gateway lists (news), the version at the latest
        assert classify(driver, REVIEWS, **{"top-k": "2"}) == ""
        answer = api_classify(url, model="news", texts=list(REVIEWS), top_k=2)
        assert shown_results(driver) == expected_results(answer, REVIEWS)
        assert len({r["label"] for r in answer["results"]}) == 3, "texts chosen so that every label shows"
        assert text_of(driver, "answer-version") == f"news v{answer['version']}"
        assert re.fullmatch(r"[0-9a-f]{32}", text_of(driver, "answer-request-id"))
        assert re.fullmatch(r"\d+ ms", text_of(driver, "answer-latency"))
        # every text is explained at once: its tokens highlighted in its place, as /v1/explain answers
        for text, shown in zip(REVIEWS, shown_explanations(driver), strict=True):
            explained = requests.post(
                f"{url}/v1/explain", json={"model": "news", "text": text, "version": answer["version"]}, timeout=30
            ).json()
            assert [(t["token"], t["importance"]) for t in shown] == [
                (t["token"], pytest.approx(t["importance"])) for t in explained["tokens"]
            ]
            for token in shown:
                assert token["side"] == side(token["importance"]) and token["visible"], token
                assert token["title"].startswith(f"{token['token']}: ") and explained["label"] in token["title"]
        sides = {token["side"] for shown in shown_explanations(driver) for token in shown}
        assert {"for", "against"} <= sides, "the texts hold words for and against their labels"
        assert driver.execute_script("return [...document.querySelectorAll('.result-text')].every((p) => p.hidden)")
        driver.save_screenshot(str(tmp_path / "page.png"))

        # the latest version (the canary) leans to 财经: the stable label answers differently
        assert classify(driver, REVIEWS, **{"version-label": "stable"}) == ""
        stable = api_classify(url, model="news", texts=list(REVIEWS), version_label="stable", top_k=2)
        assert shown_results(driver) == expected_results(stable, REVIEWS) != expected_results(answer, REVIEWS)
        assert text_of(driver, "answer-version") == "news v1"
        assert problems(console_entries(driver)) == []

        driver.set_window_size(*PHONE)
        assert driver.execute_script("return window.innerWidth") <= PHONE[0]
        assert horizontal_overflow(driver) == 0
        driver.save_screenshot(str(tmp_path / "page-phone.png"))

        too_long = "好" * (MAX_TEXT_CHARS + 1)
        message = classify(driver, [too_long], **{"version-label": ""})
        error = api_classify(url, model="news", texts=[too_long])["error"]
        assert error["code"] == "text_too_long"
        assert message.startswith(f"text_too_long: {error['message']} (request id ")
        assert horizontal_overflow(driver) == 0
        assert problems(console_entries(driver)) == []
    assert (tmp_path / "page.png").read_bytes().startswith(b"\x89PNG")


def test_page_is_public_and_asks_for_the_api_key(page_gateway: Any, tmp_path: Path) -> None:
    with page_gateway(api_keys=(KEY,)) as url, chromium(tmp_path / "profile") as driver:
        for public in ("/", "/static/page.js", "/static/page.css"):
            assert requests.get(f"{url}{public}", timeout=10).status_code == 200, public
        assert requests.get(f"{url}/v1/models", timeout=10).status_code == 401

        open_page(driver, f"{url}/")
        assert driver.find_element("id", "key-field").is_displayed()
        assert text_of(driver, "models-message").startswith("unauthorized: missing or wrong X-API-Key")

        message = classify(driver, REVIEWS, **{"api-key": "wrong", "model": "news"})
        assert message.startswith("unauthorized: missing or wrong X-API-Key")

        texts = (*REVIEWS, "<br>")  # nothing left after cleaning: the API answers an error for that text alone
        assert classify(driver, texts, **{"api-key": KEY, "model": "news"}) == ""
        answer = api_classify(url, {"X-API-Key": KEY}, model="news", texts=list(texts), top_k=3)
        assert answer["results"][-1]["label"] is None
        assert shown_results(driver) == expected_results(answer, texts)
        error = answer["results"][-1]["error"]
        assert driver.find_elements("css selector", "#results .result .message")[0].text == (
            f"{error['code']}: {error['message']}"
        )
        # the key's change event reloaded the models panel with the key
        rows = "return document.querySelectorAll('#models tbody tr').length"
        wait_for(driver, lambda d: d.execute_script(rows) >= 2)  # news and chars
        assert driver.find_element("id", "models-message").is_displayed() is False
        assert problems(console_entries(driver)) == []


def test_a_2xx_answer_that_is_not_json_is_a_message(page_gateway: Any, tmp_path: Path) -> None:
    """Drawing it would throw (an unhandled rejection, a page that never says anything): it is shown instead."""
    with page_gateway(front=html_proxy) as url, chromium(tmp_path / "profile") as driver:
        assert requests.get(f"{url}/v1/models", timeout=10).status_code == 200
        open_page(driver, f"{url}/")
        assert text_of(driver, "models-message") == "unexpected answer (not JSON) from v1/models (HTTP 200)"
        message = classify(driver, REVIEWS, model="news")
        assert message == "unexpected answer (not JSON) from v1/classify (HTTP 200)"
        assert driver.find_element("id", "answer").is_displayed() is False
        assert problems(console_entries(driver)) == []
