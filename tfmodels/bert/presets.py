"""Where a BERT comes from: a built-in size trained from scratch, or a LOCAL preset folder.

A preset folder is either KerasHub's own layout (written by `save_to_preset`, e.g. by `textclf pretrain-mlm`)
or a Hugging Face Transformers folder (`config.json` + `model.safetensors` + `vocab.txt`, e.g. a downloaded
`bert-base-chinese`); KerasHub converts the latter on load. Nothing is ever downloaded: a preset that is
not an existing folder is refused before KerasHub could treat it as a hub name.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from data_prep.errors import UserError
from data_prep.json_file import read_json_object

# The BERT miniatures of Turc et al. (2019) plus BERT-base; tiny is the CPU default.
SIZES: dict[str, dict[str, int]] = {
    "tiny": {"num_layers": 2, "hidden_dim": 128, "num_heads": 2, "intermediate_dim": 512},
    "mini": {"num_layers": 4, "hidden_dim": 256, "num_heads": 4, "intermediate_dim": 1024},
    "small": {"num_layers": 4, "hidden_dim": 512, "num_heads": 8, "intermediate_dim": 2048},
    "base": {"num_layers": 12, "hidden_dim": 768, "num_heads": 12, "intermediate_dim": 3072},
}
MAX_POSITIONS = 512  # position-embedding rows of a scratch backbone, as in every released BERT
HF_TOKENIZER_CONFIG = "tokenizer_config.json"


def check_size(size: str) -> None:
    if size not in SIZES:
        raise UserError(f"unknown BERT size {size!r}; choose one of {', '.join(SIZES)}")


def scratch_backbone(size: str, vocabulary_size: int, *, dropout: float = 0.1) -> Any:
    """A randomly initialised BertBackbone of one of SIZES (build inside strategy.scope())."""
    import keras
    import keras_hub

    check_size(size)
    return keras_hub.models.BertBackbone(
        vocabulary_size=vocabulary_size,
        max_sequence_length=MAX_POSITIONS,
        dropout=dropout,
        dtype=keras.config.dtype_policy().name,
        **SIZES[size],
    )


def preset_layout(preset: Path) -> str:
    """ "keras" or "transformers", from the preset's config.json; a UserError for anything else."""
    preset = Path(preset)
    if not preset.is_dir():
        raise UserError(
            f"--preset {preset} is not a local folder (textclf never downloads models; "
            "give a KerasHub preset folder or a Hugging Face BERT folder)"
        )
    config_path = preset / "config.json"
    if not config_path.is_file():
        raise UserError(f"{preset} has no config.json: not a KerasHub or Hugging Face model folder")
    config = read_json_object(config_path)
    if "registered_name" in config:
        if "Bert" not in config["registered_name"]:
            raise UserError(f"{preset} holds a {config['registered_name']}, not a BERT backbone")
        return "keras"
    if config.get("model_type") == "bert":
        missing = [name for name in ("vocab.txt", "model.safetensors") if not (preset / name).is_file()]
        if missing and not (preset / "model.safetensors.index.json").is_file():
            raise UserError(f"{preset} is a Hugging Face BERT folder without {', '.join(missing)}")
        return "transformers"
    raise UserError(
        f"{preset}/config.json describes neither a KerasHub BERT nor a Hugging Face "
        f"model_type 'bert' (found model_type={config.get('model_type')!r})"
    )


def load_preset(preset: Path, *, dropout: float | None = None) -> tuple[Any, Any]:
    """(BertBackbone with the preset's weights, its BertTokenizer) from a local folder of either layout."""
    import keras
    import keras_hub

    from tfmodels.bert.vocabulary import make_tokenizer

    preset = Path(preset)
    layout = preset_layout(preset)
    kwargs: dict[str, Any] = {"dtype": keras.config.dtype_policy().name}
    if dropout is not None:
        kwargs["dropout"] = dropout
    try:
        backbone = keras_hub.models.BertBackbone.from_preset(str(preset), **kwargs)
        if layout == "keras":
            tokenizer = keras_hub.models.BertTokenizer.from_preset(str(preset))
        else:
            tokenizer = make_tokenizer(str(preset / "vocab.txt"), lowercase=hf_lowercase(preset))
    except (ValueError, KeyError, FileNotFoundError) as exc:
        raise UserError(f"cannot load BERT preset {preset}: {exc}") from None
    return backbone, tokenizer


def hf_lowercase(preset: Path) -> bool:
    """`do_lower_case` of tokenizer_config.json; Transformers' BertTokenizer defaults it to True."""
    path = preset / HF_TOKENIZER_CONFIG
    if not path.is_file():
        return True
    config = read_json_object(path)
    return bool(config.get("do_lower_case", True))


def save_task_preset(task: Any, preset_dir: Path) -> None:
    """`task.save_to_preset` without the optimizer state, which would otherwise ride along in
    task.weights.h5 (twice the backbone's size with Adam) although no preset reader uses it."""
    optimizer, task.optimizer = task.optimizer, None
    try:
        task.save_to_preset(str(preset_dir))
    finally:
        task.optimizer = optimizer
