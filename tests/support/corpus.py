"""A generated two-class corpus of jieba-like word sequences: learnable in seconds, no files needed."""

from __future__ import annotations

import random

LABELS = ["negative", "positive"]
WORDS = {
    "negative": ["难吃", "太差", "失望", "退货", "糟糕", "慢", "贵", "脏"],
    "positive": ["好吃", "满意", "推荐", "便宜", "干净", "快", "喜欢", "不错"],
}
SHARED = ["这个", "酒店", "服务", "房间", "我们", "的", "了", "还", "很", "非常", "早餐", "位置"]


def generated_rows(n: int, seed: int = 7) -> list[tuple[str, int]]:
    """(tokens, label id) rows: each text mixes shared words with 1-3 words of its label (some noise)."""
    rng = random.Random(seed)
    rows: list[tuple[str, int]] = []
    for i in range(n):
        label = i % 2
        own = rng.sample(WORDS[LABELS[label]], rng.randint(1, 3))
        words = rng.sample(SHARED, rng.randint(2, 10)) + own
        rng.shuffle(words)
        rows.append((" ".join(words), label))
    return rows


# the smallest network that still learns the generated corpus, so training tests stay quick
SMALL = ["--epochs", "2", "--batch-size", "32", "--embedding-dim", "16", "--lstm-units", "8", "--min-count", "1"]
