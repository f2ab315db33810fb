"""The BERT family: cleaned text (the `text` feature) -> WordPiece in-graph -> KerasHub BertBackbone.

preprocessor.py  string -> BERT inputs layer (packing, padding trimmed per batch)
presets.py       where a backbone comes from: a scratch size or a local preset folder
vocabulary.py    the WordPiece vocabulary of a scratch model and its tokenizer
corpus.py        unlabeled text for pretraining
pretrain_mlm.py  masked-LM pretraining into a local preset
config.py        BertConfig
family.py        the adapter the shared trainer, evaluator and exporter call
cli.py           `textclf train bert`, `textclf pretrain-mlm`
"""
