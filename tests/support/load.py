"""Background client load for drills: N threads POST /v1/classify in a loop and record every answer."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

import requests

TEXTS = ["这场足球比赛很精彩", "新手机的电脑芯片", "银行股票下跌了", "今天天气不错"]


@dataclass
class Answer:
    started: float  # time.monotonic()
    seconds: float
    status: int  # 0: no HTTP answer (connection error or client timeout)
    body: Any  # parsed JSON, or the exception text when status is 0


class Load:
    """`with Load(url, model) as load:` keeps `threads` clients busy until the block ends."""

    def __init__(self, url: str, model: str, *, threads: int = 4, client_timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/v1/classify"
        self.model = model
        self.client_timeout_s = client_timeout_s
        self.answers: list[Answer] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.hung: list[str] = []
        self._threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(self.client_timeout_s + 5)
        self.hung = [t.name for t in self._threads if t.is_alive()]

    def _run(self, index: int) -> None:
        with requests.Session() as session:
            n = index
            while not self._stop.is_set():
                n += 1
                started = time.monotonic()
                try:
                    r = session.post(
                        self.url,
                        json={"model": self.model, "texts": [TEXTS[n % len(TEXTS)]]},
                        timeout=self.client_timeout_s,
                    )
                    answer = Answer(started, time.monotonic() - started, r.status_code, _json(r))
                except requests.RequestException as exc:
                    answer = Answer(started, time.monotonic() - started, 0, repr(exc))
                with self._lock:
                    self.answers.append(answer)

    def since(self, moment: float) -> list[Answer]:
        with self._lock:
            return [a for a in self.answers if a.started >= moment]

    def wait_for(self, count: int, *, after: float, timeout_s: float = 30.0) -> list[Answer]:
        """Block until `count` answers to requests started after `after` are in."""
        deadline = time.monotonic() + timeout_s
        while len(self.since(after)) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.since(after)


def _json(response: requests.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return {"not_json": response.text[:200]}
