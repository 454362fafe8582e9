"""Loading the pretrained model and its tokenizer from the hub, a folder, or a package."""

from __future__ import annotations

import copy
import json
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from huggingface_hub import snapshot_download
from transformers import (
    AutoConfig,
    AutoTokenizer,
    PretrainedConfig,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)
from transformers.utils import logging as hf_logging

from trainables.errors import FieldError
from trainables.locations import is_local_reference, resolve
from trainables.sections import ModelSpec
from trainables.tasks import task_named


def model_location(model: ModelSpec) -> str:
    """A local folder path, or the hub id as written.

    Raises:
        FieldError: a local reference points at nothing.
    """
    return _location(model.name_or_path, "model.name_or_path")


def decoder_location(model: ModelSpec) -> str | None:
    """Where the decoder's checkpoint is (see `ModelSpec.decoder`), or None.

    Raises:
        FieldError: a local reference points at nothing.
    """
    return None if model.decoder is None else _location(model.decoder, "model.decoder")


def _location(reference: str, field: str) -> str:
    if not is_local_reference(reference):
        return reference
    try:
        path = resolve(reference)
    except LookupError as error:
        raise FieldError(field, str(error)) from None
    if not (path / "config.json").is_file():
        raise FieldError(
            field,
            f"{str(path)!r} is not a model folder (no config.json); give a folder saved by "
            "save_pretrained, or a hub id",
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise FieldError(
            field,
            f"the model folder {str(path)!r} has no weights (none of {', '.join(WEIGHT_FILES)}); "
            "save the model there with save_pretrained, or give a hub id",
        )
    _check_model_type(path / "config.json", field)
    return str(path)


# The files `save_pretrained` writes a PyTorch model's weights as: one of them must be there.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)


def _check_model_type(config_file: Path, field: str) -> None:
    """The folder's ``model_type`` is one this transformers knows, or its code ships with it
    (``auto_map``, loaded with ``trust_remote_code``)."""
    try:
        config = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise FieldError(field, f"{str(config_file)!r} is not readable JSON ({error})") from None
    kind = config.get("model_type") if isinstance(config, dict) else None
    known = transformers.CONFIG_MAPPING
    if isinstance(kind, str) and kind not in known and "auto_map" not in config:
        raise FieldError(
            field,
            f"{str(config_file)!r} names model_type {kind!r}, which transformers "
            f"{transformers.__version__} does not know; upgrade transformers, or fix model_type",
        )


# The files a tokenizer is saved as (`save_pretrained`): one of them at least must be there.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "tokenizer.model",
    "spiece.model",
    "sentencepiece.bpe.model",
)
# Fewer tokens than this is no real tokenizer: transformers builds one of a few special
# tokens, and every word unknown, for a folder without tokenizer files.
MIN_VOCABULARY = 100


def load_tokenizer(model: ModelSpec) -> PreTrainedTokenizerBase:
    """The model's tokenizer.

    Raises:
        FieldError: it cannot be loaded (no such hub id, no connection, no tokenizer files),
            or what loads has a vocabulary of a few tokens only.
    """
    location = model_location(model)
    fix = (
        "save the tokenizer beside the model (tokenizer.save_pretrained(folder)), or give "
        "the model's hub id"
    )
    if is_local_reference(location) and not any(
        (Path(location) / name).is_file() for name in TOKENIZER_FILES
    ):
        raise FieldError(
            "model.name_or_path",
            f"the model folder {location!r} has no tokenizer files (none of "
            f"{', '.join(TOKENIZER_FILES)}); {fix}",
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(
            location, revision=model.revision, trust_remote_code=model.trust_remote_code
        )
    except (OSError, ValueError) as error:
        message = " ".join(str(error).split())[:300]
        raise FieldError(
            "model.name_or_path", f"cannot load a tokenizer from {location!r}: {message}"
        ) from None
    if len(tokenizer) < MIN_VOCABULARY:
        raise FieldError(
            "model.name_or_path",
            f"the tokenizer of {location!r} knows only {len(tokenizer)} tokens, so nearly "
            f"every word would be unknown: its tokenizer files are missing or broken; {fix}",
        )
    return tokenizer


def load_task_model(
    model: ModelSpec,
    label_names: tuple[str, ...],
    task: str = "sequence_classification",
    weights: ModelWeights | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> PreTrainedModel:
    """The pretrained model with the task's head: a fresh one for ``label_names`` (one label
    per text, or one tag per token), or its own language-modelling head.

    With ``weights`` (see `read_weights`), no model file is read: the weights are copied from
    them into the new model. ``config_overrides`` (a run's dropout) are set in the model's
    configuration before its modules are built, on both sides of an encoder-decoder.
    """
    hf_logging.set_verbosity_error()  # the "newly initialised head" report is expected here
    hf_logging.disable_progress_bar()
    kind = task_named(task)
    overrides = dict(config_overrides or {})
    decoder = decoder_location(model)
    if decoder is not None:  # two encoder checkpoints, joined by new cross-attention
        from transformers import EncoderDecoderModel

        sides = {
            f"{side}_{key}": v for key, v in overrides.items() for side in ("encoder", "decoder")
        }
        return EncoderDecoderModel.from_encoder_decoder_pretrained(
            model_location(model),
            decoder,
            encoder_revision=model.revision,
            decoder_revision=model.revision,
            **sides,
        )
    if weights is not None:
        config = copy.deepcopy(weights.config)  # from_pretrained may adjust it
        for key, value in overrides.items():
            setattr(config, key, value)
        loaded = weights.model_class.from_pretrained(
            None,
            config=config,
            state_dict=weights.state_dict(),
            ignore_mismatched_sizes=kind.fresh_head,
        )
        # Loaded from no path, the model would name itself "None", which peft then looks up
        # on the hub; it keeps the folder its weights came from.
        loaded.config.name_or_path = loaded.name_or_path = weights.config.name_or_path
        return loaded
    return kind.auto_model().from_pretrained(
        model_location(model),
        revision=model.revision,
        trust_remote_code=model.trust_remote_code,
        # A head for other labels gives way to a fresh one.
        ignore_mismatched_sizes=kind.fresh_head,
        **kind.head_arguments(label_names),
        **overrides,
    )


# safetensors' names for the tensor types it stores.
SAFETENSORS_TYPES = {
    "F64": torch.float64,
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "I64": torch.int64,
    "I32": torch.int32,
    "I16": torch.int16,
    "I8": torch.int8,
    "U8": torch.uint8,
    "BOOL": torch.bool,
}


@dataclass(frozen=True)
class ModelWeights:
    """A model's configuration (with the task's head) and the bytes of its safetensors files.

    Read once per sweep by the driver and shipped with the job, they reach each node's Ray
    object store once; every trial on the node reads the same shared copy (numpy arrays come
    out of the store without a copy), so trials never open the model's files.
    """

    config: PretrainedConfig
    model_class: type[PreTrainedModel]  # the class the task's auto class picks for the config
    files: tuple[np.ndarray, ...]  # each a whole .safetensors file, as uint8

    @property
    def nbytes(self) -> int:
        return sum(blob.nbytes for blob in self.files)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The weights as tensors of the trial's own: copies, since training changes them."""
        tensors = {}
        with warnings.catch_warnings():  # the store's arrays are read-only; the copies are not
            warnings.filterwarnings("ignore", message="The given buffer is not writable")
            for blob in self.files:
                tensors.update(
                    {name: view.clone() for name, view in _safetensors_views(blob).items()}
                )
        return tensors


# Above this, each trial reads the model's files itself (memory-mapped, through the node's page
# cache): a copy in the driver and in every node's object store would cost more than it saves.
SHARED_WEIGHTS_LIMIT = 4 * 2**30


def read_weights(
    model: ModelSpec, label_names: tuple[str, ...], task: str = "sequence_classification"
) -> ModelWeights | None:
    """The model's weights for `load_task_model`, or None where each trial reads the files
    itself: models with their own code, checkpoints in PyTorch's pickle format rather than
    safetensors, models larger than `SHARED_WEIGHTS_LIMIT`, and hub models whose weights this
    machine can neither find in its hub cache nor fetch (see `_hub_snapshot`)."""
    if model.trust_remote_code or model.decoder is not None:
        return None
    location = model_location(model)  # a folder, or the hub id
    folder = Path(location) if is_local_reference(location) else _hub_snapshot(model)
    if folder is None:
        return None
    files = _weight_files(folder)
    if not files or sum(path.stat().st_size for path in files) > SHARED_WEIGHTS_LIMIT:
        return None
    kind = task_named(task)
    config = AutoConfig.from_pretrained(str(folder), **kind.head_arguments(label_names))
    config.name_or_path = location  # a hub model keeps its id, not the cache's folder
    blobs = tuple(np.fromfile(path, dtype=np.uint8) for path in files)
    for blob, path in zip(blobs, files, strict=True):
        try:
            _safetensors_views(blob)
        except (ValueError, KeyError, RuntimeError) as error:
            raise FieldError(
                "model.name_or_path", f"{path} is not a readable safetensors file ({error})"
            ) from None
    with torch.device("meta"):  # a weightless instance, only to learn its class
        model_class = type(kind.auto_model().from_config(config))
    return ModelWeights(config=config, model_class=model_class, files=blobs)


HUB_WEIGHT_FILES = [
    "config.json",
    "model.safetensors",
    "model.safetensors.index.json",
    "model-*-of-*.safetensors",
]


def _hub_snapshot(model: ModelSpec) -> Path | None:
    """A hub model's folder in this machine's hub cache, its safetensors weights fetched into
    it first if they are missing and fit `SHARED_WEIGHTS_LIMIT`: fetched once here, they then
    reach every node through Ray's object store, and no trial needs the hub or a cache of its
    own. Offline, the cache as it is. None where the weights cannot be had here."""
    try:
        listing = snapshot_download(
            model.name_or_path,
            revision=model.revision,
            allow_patterns=HUB_WEIGHT_FILES,
            dry_run=True,
        )
    except (OSError, ValueError):  # the hub's errors (HTTP, dry run, not cached) are OSErrors
        listing = None  # offline, or the hub cannot be reached: what the cache holds
    if listing is not None:
        sizes = [item.file_size or 0 for item in listing if item.filename.endswith(".safetensors")]
        if not sizes or sum(sizes) > SHARED_WEIGHTS_LIMIT:
            return None
    try:
        return Path(
            snapshot_download(
                model.name_or_path,
                revision=model.revision,
                allow_patterns=HUB_WEIGHT_FILES,
                local_files_only=listing is None,
            )
        )
    except (OSError, ValueError):
        return None


def _weight_files(folder: Path) -> list[Path]:
    """The folder's safetensors weights: ``model.safetensors``, or every shard its index
    names (none if one is missing)."""
    index = folder / "model.safetensors.index.json"
    if not index.is_file():
        whole = folder / "model.safetensors"
        return [whole] if whole.is_file() else []
    names = set(json.loads(index.read_text())["weight_map"].values())
    shards = [folder / name for name in sorted(names)]
    return shards if all(path.is_file() for path in shards) else []


def _safetensors_views(blob: np.ndarray) -> dict[str, torch.Tensor]:
    """Tensors that view ``blob``, a safetensors file: an 8-byte little-endian header size, a
    JSON header giving each tensor's type, shape and byte range, then the bytes."""
    header_size = int.from_bytes(blob[:8].tobytes(), "little")
    header = json.loads(blob[8 : 8 + header_size].tobytes())
    start = 8 + header_size
    views = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = SAFETENSORS_TYPES[entry["dtype"]]
        begin, end = entry["data_offsets"]
        count = (end - begin) // dtype.itemsize
        flat = torch.frombuffer(blob, dtype=dtype, count=count, offset=start + begin)
        views[name] = flat.view(entry["shape"])
    return views


def load_skeleton(
    model: ModelSpec, num_labels: int, task: str = "sequence_classification"
) -> PreTrainedModel:
    """The task model's architecture without its weights (on PyTorch's meta device): module
    names and layer counts for the checks, at no cost even for a big model."""
    location = model_location(model)
    config = AutoConfig.from_pretrained(
        location,
        revision=model.revision,
        trust_remote_code=model.trust_remote_code,
        **({"num_labels": num_labels} if num_labels else {}),
    )
    hf_logging.set_verbosity_error()
    decoder = decoder_location(model)
    if decoder is not None:
        from transformers import EncoderDecoderConfig, EncoderDecoderModel

        joined = EncoderDecoderConfig.from_encoder_decoder_configs(
            config, AutoConfig.from_pretrained(decoder, revision=model.revision)
        )
        with torch.device("meta"):
            return EncoderDecoderModel(config=joined)
    with torch.device("meta"):
        auto_model = task_named(task).auto_model()
        return auto_model.from_config(config, trust_remote_code=model.trust_remote_code)
