"""LSTMConfig: the LSTM family's settings and its values for the shared ones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from tfmodels.config import TrainConfig, at_least, in_range, positive

EXPORT_DTYPES = ("int8", "float16", "float32")


@dataclass(frozen=True)
class LSTMConfig(TrainConfig):
    # Tuned on the builtin corpus's dev accuracy: small data overfits fast, so heavy dropout at four places
    # (words, embeddings, n-grams, features), weight decay, label smoothing and a short cosine schedule.
    family: ClassVar[str] = "lstm"
    CHOICES: ClassVar[dict[str, tuple[str, ...]]] = {
        **TrainConfig.CHOICES,
        "pooling": ("mean", "mean_max"),
        "export_dtype": EXPORT_DTYPES,
    }
    # runs saved before the n-gram branch (and its wide part) existed were trained without them
    LEGACY: ClassVar[dict[str, Any]] = {"ngram_n": 0, "wide": False}
    EXPORT_ONLY: ClassVar[frozenset[str]] = frozenset({"export_min_df", "export_dtype"})

    embedding_dim: int = 128
    lstm_units: int = 96
    lstm_layers: int = 1
    bidirectional: bool = True
    pooling: str = "mean_max"
    word_dropout: float = 0.3  # share of words turned into OOV while training
    embed_dropout: float = 0.3
    dropout: float = 0.5
    min_count: int = 2
    max_vocab: int = 50000
    oov_chars: bool = True  # unknown words fall back to their (frequent) characters
    embeddings: str | None = None  # word2vec text file; its dimension replaces embedding_dim
    ngram_n: int = 3  # character 1..n-grams of the same text, hashed, mean-pooled; 0 turns the branch off
    ngram_buckets: int = 2**18
    ngram_dim: int = 32
    ngram_dropout: float = 0.5  # share of n-grams left out of the mean while training
    wide: bool = True  # add a linear model on the n-grams' TF-IDF (wide & deep); needs ngram_n > 0
    wide_scale: float = 10.0  # 1 learns the linear part too slowly in a few epochs, 30 overfits it
    # export only (tfmodels.lstm.compact): n-gram rows kept, and how the embedding tables are stored
    export_min_df: int = 5  # n-grams in fewer train texts are left out of the export; 0 keeps every row
    export_dtype: str = "int8"  # int8 (per-row scale), float16 or float32
    # the shared settings this family sets otherwise
    epochs: int = 5
    lr: float = 1.5e-3
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    ema: float = 0.998  # dev/test use a moving average of ~2 epochs of weights: steadier than the last step

    def validate(self) -> None:
        super().validate()
        at_least(self, 1, "embedding_dim", "lstm_units", "lstm_layers", "max_vocab", "ngram_buckets", "ngram_dim")
        at_least(self, 0, "min_count", "ngram_n", "export_min_df")
        positive(self, "wide_scale")
        in_range(self, "word_dropout", "embed_dropout", "dropout", "ngram_dropout")
