"""``best.yaml`` as people edit it before production training: `tuner train FILE` must refuse
each wrong one in one line naming the file and the field, before the output folder is made;
the file, the model and the data stay as they were. A few valid files train for real.

`tuner train` imports the training step (torch, accelerate) before it reads the file, so the
whole module is slow.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.hostile.cases import Hostile, Sweep, dump, params, replace, setting, write
from tests.hostile.harness import Case, Expect, accepted, refused, run_case

pytestmark = pytest.mark.slow

FILE = "best.yaml"
OUTPUT = "model-out"
TRAINED = accepted("Saved model and tokenizer", may_create=(f"{OUTPUT}/*",))
TA = "training_arguments"


def at(field: str, *more: str, absent: tuple[str, ...] = ()) -> Expect:
    return refused(FILE, field, *more, absent=absent)


def best_content(sweep: Sweep) -> dict[str, Any]:
    """A best.yaml as `tuner retrain` writes it, for the tiny model and data."""
    from tuner.handoff.best_file import HandOff, package_versions

    interval = {"mean": 0.4, "std": 0.01, "low": 0.38, "high": 0.42, "n": 2}
    content = {
        "sweep": "tiny",
        "run_dir": "/results/tiny-20261124-011412",
        "source_trial": "trial_00000",
        "created": "2026-11-24T01:14:12+0000",
        **{section: copy.deepcopy(sweep[section]) for section in ("model", "data", "task")},
        TA: {
            "learning_rate": 3.0e-3,
            "num_train_epochs": 1,
            "seed": 7,
            "per_device_train_batch_size": 32,
            "per_device_eval_batch_size": 64,
            "lr_scheduler_type": "linear",
            "weight_decay": 0.01,
            "output_dir": "tiny-best",
        },
        "evaluations_per_epoch": 1,
        "batches_by_length": True,
        "train_data_sha256": "0" * 64,
        "scores": {
            "metric": "eval_loss",
            "mode": "min",
            "seeds": [7, 8],
            "validation": interval,
            "test_metric": "test_loss",
            "test": interval,
            "tied_with": [],
        },
        "versions": package_versions(),
    }
    return HandOff.model_validate(content).model_dump(mode="json")


Make = Callable[[dict[str, Any], Path], Any]


def raw(data: str | bytes) -> Make:
    return lambda content, workdir: data


def arg(name: str, value: Any) -> Make:
    """training_arguments.NAME set to VALUE."""
    return lambda content, workdir: setting(f"{TA}.{name}", value)(content)


def key(dotted: str, value: Any) -> Make:
    return lambda content, workdir: setting(dotted, value)(content)


def without(dotted: str) -> Make:
    def make(content: dict[str, Any], workdir: Path) -> dict[str, Any]:
        content = copy.deepcopy(content)
        *sections, last = dotted.split(".")
        node = content
        for name in sections:
            node = node[name]
        node.pop(last)
        return content

    return make


def edited(edit: Callable[[str], str | bytes]) -> Make:
    """An edit of the written YAML text."""
    return lambda content, workdir: edit(dump(content))


def yaml_replace(old: str, new: str) -> Make:
    edit = replace(old, new)
    return lambda content, workdir: edit(content)


def data_file(text: str, dotted: str = "data.train", name: str = "train.tsv") -> Make:
    def make(content: dict[str, Any], workdir: Path) -> Any:
        write(workdir / name, text)
        return setting(dotted, str(workdir / name))(content)

    return make


def method(**settings: Any) -> Make:
    return key("method", settings)


TOKEN = "hf_" + "q" * 34

CASES: list[Hostile] = [
    # --- the file itself --------------------------------------------------------------------
    Hostile("empty-file", raw(""), at("holds no settings")),
    Hostile("only-a-comment", raw("# Train it: tuner train best.yaml\n"), at("holds no settings")),
    Hostile("invalid-yaml", raw("sweep: [\n"), at("not valid YAML")),
    Hostile(
        "tab-indented",
        edited(lambda t: t.replace("\n  learning_rate", "\n\tlearning_rate")),
        at("tab"),
    ),
    Hostile("utf16-file", edited(lambda t: t.encode("utf-16")), at(FILE)),
    Hostile(
        "json-twin-truncated",
        lambda content, workdir: json.dumps(content, indent=2)[:-40],
        at("not valid YAML"),
    ),
    Hostile(
        "argument-given-twice",
        yaml_replace("  learning_rate: 0.003\n", "  learning_rate: 0.003\n  learning_rate: 1\n"),
        at(f"{TA}.learning_rate", "twice"),
    ),
    Hostile("a-list-not-a-mapping", raw("- learning_rate: 0.001\n"), at("holds a list")),
    # --- hand edits of the keys -----------------------------------------------------------
    Hostile(
        "typo-training-argument-section",
        lambda content, workdir: {
            ("training_argument" if k == TA else k): v for k, v in content.items()
        },
        at("training_argument", "training_arguments"),
    ),
    Hostile("training-arguments-missing", without(TA), at(TA, "missing")),
    Hostile("training-arguments-a-list", key(TA, ["learning_rate=1e-4"]), at(TA)),
    Hostile("sha-missing", without("train_data_sha256"), at("train_data_sha256")),
    Hostile("model-path-missing-key", without("model.name_or_path"), at("model.name_or_path")),
    Hostile(
        "created-written-as-a-date",
        yaml_replace("created: 2026-11-24T01:14:12+0000", "created: 2026-11-24"),
        at("created"),
    ),
    Hostile(
        "score-edited-to-text", key("scores.validation.mean", "high"), at("scores.validation.mean")
    ),
    Hostile("versions-a-list", key("versions", ["torch==2.13"]), at("versions")),
    Hostile("method-unknown", method(method="qlora"), at("method")),
    Hostile(
        "method-setting-of-another",
        method(method="lora", frozen_layers=2),
        at("method", "frozen_layers is not a setting of lora"),
    ),
    Hostile("evaluations-per-epoch-zero", key("evaluations_per_epoch", 0), at("evaluations")),
    Hostile(
        "a-sweep-file-given-instead",
        lambda content, workdir: {
            "name": "tiny",
            "model": content["model"],
            "data": content["data"],
            "search_space": {},
        },
        at(FILE),
    ),
    # --- the training arguments' values -----------------------------------------------------
    Hostile("learning-rate-text", arg("learning_rate", "fast"), at(f"{TA}.learning_rate")),
    Hostile("learning-rate-nan", arg("learning_rate", float("nan")), at(f"{TA}.learning_rate")),
    Hostile("learning-rate-inf", arg("learning_rate", float("inf")), at(f"{TA}.learning_rate")),
    Hostile("learning-rate-negative", arg("learning_rate", -1e-4), at(f"{TA}.learning_rate")),
    Hostile("epochs-zero", arg("num_train_epochs", 0), at(f"{TA}.num_train_epochs")),
    Hostile("batch-size-zero", arg("per_device_train_batch_size", 0), at(f"{TA}.per_device")),
    Hostile("batch-size-fraction", arg("per_device_train_batch_size", 2.5), at(f"{TA}.per_device")),
    Hostile(
        "gradient-accumulation-zero",
        arg("gradient_accumulation_steps", 0),
        at(f"{TA}.gradient_accumulation_steps"),
    ),
    Hostile("warmup-negative", arg("warmup_steps", -1), at(f"{TA}.warmup_steps")),
    Hostile(
        "unknown-argument", arg("learning_rat", 1e-4), at(f"{TA}.learning_rat", "learning_rate")
    ),
    Hostile("seed-negative", arg("seed", -1), at(f"{TA}.seed")),
    Hostile("seed-2-to-the-40", arg("seed", 2**40), at(f"{TA}.seed")),
    Hostile("scheduler-typo", arg("lr_scheduler_type", "linaer"), at(TA, "linaer")),
    Hostile(
        "hub-token-literal",
        arg("hub_token", TOKEN),
        at(TA, "token", absent=(TOKEN,)),
    ),
    Hostile("max-length-beyond-positions", key("data.max_length", 100_000), at("data.max_length")),
    Hostile("max-length-two", key("data.max_length", 2), at("data.max_length")),
    # --- what the file points at ----------------------------------------------------------
    Hostile(
        "model-folder-gone", key("model.name_or_path", "/no/such/model"), at("model.name_or_path")
    ),
    Hostile("train-data-gone", key("data.train", "/no/such/train.tsv"), refused("data.train")),
    Hostile("train-data-now-empty", data_file(""), refused("data.train")),
    Hostile(
        "train-data-now-a-folder",
        lambda content, workdir: (
            (workdir / "d").mkdir() or setting("data.train", str(workdir / "d"))(content)
        ),
        refused("data.train"),
    ),
    Hostile(
        "partial-freezes-99-layers",
        method(method="partial", frozen_layers=99),
        at("method.frozen_layers"),
    ),
    Hostile(
        "lora-target-module-missing",
        method(method="lora", lora_target_modules="q_proj"),
        at("method.lora_target_modules"),
    ),
    # --- odd but valid: trains and saves the model ----------------------------------------
    Hostile("as-written", lambda content, workdir: content, TRAINED),
    Hostile("json-twin", lambda content, workdir: json.dumps(content, indent=2), TRAINED),
    Hostile("crlf-and-bom", edited(lambda t: "\ufeff" + t.replace("\n", "\r\n")), TRAINED),
]


@pytest.mark.parametrize("case", params(CASES))
def test_train_best_file(
    case: Hostile, base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    write(workdir / FILE, case.make(best_content(base_sweep), workdir))
    argv = ["train", FILE, "--output", OUTPUT]
    run_case(Case(argv, workdir, case.expect, watch=shared_inputs))


OVERRIDES: list[Hostile] = [
    Hostile("epochs-text", raw(f"{TA}.num_train_epochs=abc"), refused(f"{TA}.num_train_epochs")),
    Hostile("section-typo", raw("training_argument.seed=1"), refused("training_argument")),
    Hostile("section-replaced-by-a-value", raw("model=bert"), refused("override", "model")),
    Hostile("no-equals-sign", raw(f"{TA}.seed"), refused("override", f"{TA}.seed")),
    Hostile("learning-rate-nan", raw(f"{TA}.learning_rate=.nan"), refused(f"{TA}.learning_rate")),
    Hostile(
        "token-on-the-command-line",
        raw(f"{TA}.hub_token={TOKEN}"),
        refused(f"{TA}.hub_token", absent=(TOKEN,)),
    ),
]


@pytest.mark.parametrize("case", params(OVERRIDES))
def test_train_with_bad_overrides(
    case: Hostile, base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    write(workdir / FILE, best_content(base_sweep))
    override = case.make({}, workdir)
    run_case(
        Case(
            ["train", FILE, override, "--output", OUTPUT],
            workdir,
            case.expect,
            watch=shared_inputs,
        )
    )


@pytest.mark.parametrize(
    ("target", "expect"),
    [
        pytest.param("missing.yaml", refused("missing.yaml", "no such"), id="missing-file"),
        pytest.param("results", refused("results", "no such"), id="a-folder"),
    ],
)
def test_train_what_is_no_best_file(
    target: str, expect: Expect, workdir: Path, shared_inputs: list[Path]
) -> None:
    (workdir / "results").mkdir()
    run_case(Case(["train", target], workdir, expect, watch=shared_inputs))


def test_train_output_is_a_file(
    base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    write(workdir / FILE, best_content(base_sweep))
    write(workdir / "model.txt", "keep me\n")
    run_case(
        Case(
            ["train", FILE, "--output", "model.txt"],
            workdir,
            refused("model.txt"),
            watch=shared_inputs,
        )
    )


def test_train_into_the_files_output_dir_that_is_not_empty(
    base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    """No --output: the file's training_arguments.output_dir, which holds an older model."""
    write(workdir / FILE, best_content(base_sweep))
    write(workdir / "tiny-best" / "config.json", "{}")
    run_case(Case(["train", FILE], workdir, refused("tiny-best", "not empty"), watch=shared_inputs))
