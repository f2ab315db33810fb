"""The LSTM family's adapter: build (vocabulary, network, idf) from the train split, save and load
RUN_DIR/model/ (model.keras + vocab.txt), and the smaller copy `export` serves (tfmodels.lstm.compact)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import keras
import tensorflow as tf

from data_prep.dataset_format import TOKENS
from serving.contract import TOKENS_INPUT
from tfmodels.family import Built
from tfmodels.lstm.compact import ServingPlan, bucket_rows, compact_network, train_ngram_rows
from tfmodels.lstm.config import LSTMConfig
from tfmodels.lstm.network import build_network
from tfmodels.lstm.preprocessor import LSTMInputs, TokenIds, split_chars, split_words, word_count
from tfmodels.lstm.tfidf import document_frequencies, smooth_idf
from tfmodels.lstm.vocabulary import RESERVED, build_vocabulary, load_word2vec, read_vocabulary, write_vocabulary

MODEL_FILE = "model.keras"
VOCAB_FILE = "vocab.txt"


class LSTMFamily:
    """Words in, logits out; the vocabulary comes from the train split only."""

    name = "lstm"
    input_feature = TOKENS
    serving_input = TOKENS_INPUT
    config_class = LSTMConfig
    length_fn = staticmethod(word_count)

    def preprocessor(self, config: LSTMConfig, words: list[str]) -> keras.layers.Layer:
        """The string -> model inputs layer over a vocabulary: token ids, plus n-grams if the branch is on."""
        token_ids = TokenIds(
            words,
            config.max_len,
            pad_to_max=not config.bucketing,
            oov_chars=config.oov_chars,
            name="token_ids",
        )
        if config.ngram_n <= 0:
            return token_ids
        return LSTMInputs(token_ids, config.ngram_n, config.ngram_buckets, name="lstm_inputs")

    def build(self, config: LSTMConfig, train_strings: tf.data.Dataset, num_classes: int) -> Built:
        word_batches = train_strings.batch(1024).map(lambda s: split_words(s).flat_values)
        if config.oov_chars:  # count characters too (once per word occurrence)
            word_batches = word_batches.map(lambda w: tf.concat([w, split_chars(w).flat_values], 0))
        words = build_vocabulary(
            word_batches.as_numpy_iterator(), min_count=config.min_count, max_size=config.max_vocab
        )
        vectors = None
        if config.embeddings:
            vectors = load_word2vec(Path(config.embeddings), words, seed=config.seed)
            config = replace(config, embedding_dim=int(vectors.shape[1]))  # the file decides; model.keras keeps it
        model = build_network(config, len(words) + RESERVED, num_classes)
        if vectors is not None:
            model.get_layer("embedding").set_weights([vectors])
        preprocessor = self.preprocessor(config, words)
        if config.ngram_n > 0 and config.wide:
            ngram_batches = train_strings.batch(1024).map(preprocessor.char_ngrams)
            df, docs = document_frequencies(ngram_batches, config.ngram_buckets)
            model.get_layer("wide").idf.assign(smooth_idf(df, docs, config.min_count))
        return Built(preprocessor=preprocessor, model=model)

    def save(self, built: Built, model_dir: Path) -> None:
        model_dir.mkdir(parents=True, exist_ok=True)
        token_ids = getattr(built.preprocessor, "token_ids", built.preprocessor)
        words = token_ids.lookup.get_vocabulary()[RESERVED:]
        write_vocabulary(model_dir / VOCAB_FILE, words)
        built.model.save(model_dir / MODEL_FILE)

    def load(self, model_dir: Path, config: LSTMConfig) -> Built:
        model = keras.saving.load_model(model_dir / MODEL_FILE, compile=False)  # inference only
        return Built(preprocessor=self.preprocessor(config, read_vocabulary(model_dir / VOCAB_FILE)), model=model)

    def for_serving(self, built: Built, config: LSTMConfig) -> Built:
        """A copy whose n-gram rows of fewer than export_min_df train texts are left out (the ids remapped
        in the graph) and whose tables are in export_dtype; `built` (model.keras) stays whole."""
        plan = ServingPlan(Path(config.data), config.export_min_df, config.export_dtype)
        if config.ngram_n <= 0 or plan.min_df <= 0:
            return Built(preprocessor=built.preprocessor, model=compact_network(built.model, None, plan.dtype))
        inputs = built.preprocessor
        kept = train_ngram_rows(inputs, plan)
        remapped = LSTMInputs(
            inputs.token_ids,
            inputs.ngram_n,
            inputs.ngram_buckets,
            ngram_rows=bucket_rows(kept, inputs.ngram_buckets),
            name=inputs.name,
        )
        return Built(preprocessor=remapped, model=compact_network(built.model, kept, plan.dtype))


FAMILY = LSTMFamily()
