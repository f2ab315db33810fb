"""The LSTM family: jieba words (the `tokens` feature) -> in-graph vocabulary -> (Bi)LSTM, beside hashed
character n-grams and a TF-IDF linear part (wide & deep).

preprocessor.py  string -> ids layers (the vocabulary lookup and n-gram hashing, inside the serving graph)
network.py       the Keras network and its custom layers
tfidf.py         the wide part: a linear model on the n-grams' TF-IDF
vocabulary.py    the word vocabulary of the train split, word2vec vectors
config.py        LSTMConfig
family.py        the adapter the shared trainer, evaluator and exporter call
cli.py           `textclf train lstm`
"""
