"""What the model's configuration allows, read from its ``config.json`` alone (no weights):
rows no longer than its position embeddings reach. A longer ``data.max_length`` would fail in
every trial's first batch of long rows (an index error inside the embeddings), or train a
language model beyond the context it learnt."""

from __future__ import annotations

from typing import Any

from trainables.errors import FieldError
from trainables.sections import ModelSpec

# Models that count positions from the padding id + 1 (RoBERTa's scheme), so that
# max_position_embeddings = 514 reads 512 tokens.
POSITIONS_AFTER_PADDING = frozenset(
    {
        "camembert",
        "data2vec-text",
        "ibert",
        "longformer",
        "mpnet",
        "roberta",
        "roberta-prelayernorm",
        "xlm-roberta",
        "xlm-roberta-xl",
        "xmod",
    }
)


def position_limit(config: Any) -> tuple[int, str] | None:
    """The most tokens a row may have, and the configuration key that says so; None where the
    model has no absolute positions (relative or rotary ones without a stated length)."""
    if getattr(config, "position_biased_input", True) is False:
        return None  # DeBERTa-v2: relative positions only
    for key in ("max_position_embeddings", "n_positions"):
        limit = getattr(config, key, None)
        if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0:
            if getattr(config, "model_type", None) in POSITIONS_AFTER_PADDING:
                limit -= int(getattr(config, "pad_token_id", None) or 0) + 1
            return limit, key
    return None


def check_max_length(model: ModelSpec, max_length: int, field: str = "data.max_length") -> None:
    """``max_length`` tokens fit the model's position embeddings.

    A configuration that cannot be read is left to the checks that load the model and its
    tokenizer, which say why.

    Raises:
        FieldError: at ``field``, naming the model's limit.
    """
    from transformers import AutoConfig

    from trainables.modeling import model_location

    try:
        config = AutoConfig.from_pretrained(
            model_location(model),
            revision=model.revision,
            trust_remote_code=model.trust_remote_code,
        )
    except (OSError, ValueError, KeyError):
        return
    found = position_limit(config)
    if found is None or max_length <= found[0]:
        return
    limit, key = found
    raise FieldError(
        field,
        f"{max_length} tokens is beyond the model's {limit} positions ({key} in its "
        f"config.json); set max_length to at most {limit}",
    )
