"""Sweep files as people write them: `tuner validate FILE` must refuse each wrong one with one
line naming the file and the field, and accept the odd but valid ones, without touching the
file, the data or the model.

Most cases are refused by the file's own checks (YAML, keys, types, bounds) and never import
torch; the few that get as far as the data and model checks are marked slow.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.hostile.cases import (
    Hostile,
    Sweep,
    drop,
    dump,
    params,
    rename,
    replace,
    setting,
    settings,
    text,
    write,
)
from tests.hostile.harness import Case, Expect, accepted, refused, run_case

FILE = "sweep.yaml"


def at(field: str, *more: str, absent: tuple[str, ...] = ()) -> Expect:
    """Refused, the line naming the file and ``field``."""
    return refused(FILE, field, *more, absent=absent)


VALID = accepted("is valid")
LR = "search_space.learning_rate"


def entry(**values: Any) -> Any:
    """An edit that replaces the learning_rate entry of the search space."""
    return setting(LR, values)


def lines(*added: str) -> Any:
    """The file with ``added`` lines appended."""
    return text(lambda written: written + "".join(line + "\n" for line in added))


BILLION_LAUGHS = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(98 + i)}: &{chr(98 + i)} [{','.join(['*' + chr(97 + i)] * 9)}]" for i in range(8)]
)


def nested(depth: int) -> str:
    return "name: tiny\ntraining: {x: " + "[" * depth + "]" * depth + "}\n"


def two_documents(written: str) -> str:
    return written + "---\n" + written


def windows_line_endings(written: str) -> str:
    return written.replace("\n", "\r\n")


def old_mac_line_endings(written: str) -> str:
    return written.replace("\n", "\r")


def tab_indented(written: str) -> str:
    return written.replace("\n  num_trials", "\n\tnum_trials")


def merge_key_defaults(content: Sweep) -> str:
    """A YAML anchor and merge key (<<) sharing a range between two entries."""
    written = dump(content)
    return written.replace(
        "  weight_decay:\n    type: float\n    low: 0.0\n    high: 0.1\n",
        "  weight_decay:\n    <<: *unit\n    high: 0.1\n",
    ).replace("  warmup_steps:\n    type: float\n", "  warmup_steps: &unit\n    type: float\n")


def aliased_choices(content: Sweep) -> str:
    written = dump(content)
    return written.replace(
        "    choices:\n    - 16\n    - 32\n", "    choices: &batches [16, 32]\n"
    ).replace("training:\n", "training:\n  gradient_accumulation_steps: 1\n", 1)


def huge_file(content: Sweep) -> str:
    return dump(content) + "# " + "x" * (5 * 2**20) + "\n"


def very_long_name(content: Sweep) -> Sweep:
    return setting("name", "n" * 20_000)(content)


def raw(data: str | bytes) -> Any:
    return lambda content: data


CASES: list[Hostile] = [
    # --- what the file is, before any YAML -------------------------------------------------
    Hostile("empty-file", raw(""), at("holds no settings")),
    Hostile("only-comments", raw("# my sweep\n# TODO\n"), at("holds no settings")),
    Hostile("only-whitespace", raw("\n\n   \n"), at("holds no settings")),
    Hostile("top-level-list", raw("- name: tiny\n- model: x\n"), at("holds a list")),
    Hostile("top-level-scalar", raw("hello world\n"), at("holds a str")),
    Hostile("top-level-number", raw("42\n"), at("holds a int")),
    Hostile("utf16-file", text(lambda w: w.encode("utf-16")), at("sweep.yaml")),
    Hostile("latin1-comment", text(lambda w: ("# réglages\n" + w).encode("latin-1")), at("UTF-8")),
    Hostile("nul-byte", text(lambda w: w.encode() + b"\x00\x00"), at("binary")),
    Hostile("control-character", text(lambda w: w.replace("tiny", "ti\x07ny", 1)), at(":1:")),
    Hostile("larger-than-4mib", huge_file, at("too large")),
    # --- YAML syntax -------------------------------------------------------------------------
    Hostile("tab-indentation", text(tab_indented), at("tab")),
    Hostile("unclosed-bracket", raw("name: tiny\nmodel: {name_or_path: m\n"), at("not valid YAML")),
    Hostile("unclosed-quote", replace("name: tiny", 'name: "tiny'), at("not valid YAML")),
    Hostile("missing-colon", replace("name: tiny", "name tiny"), at("not valid YAML")),
    Hostile("no-space-after-colon", replace("search:\n", "search:sampler: tpe\n"), at("sweep")),
    Hostile("bad-indentation", replace("  num_trials: 6", "   num_trials: 6"), at("sweep.yaml:")),
    Hostile("two-documents", text(two_documents), at("second YAML document")),
    Hostile("undefined-alias", replace("seed: 3", "seed: *the_seed"), at("not valid YAML")),
    Hostile("billion-laughs", raw(BILLION_LAUGHS + "\nname: *i\n"), at("aliases")),
    Hostile("recursive-alias", raw("name: tiny\ntraining: &t {x: [*t]}\n"), at("training")),
    Hostile("nesting-10000-deep", raw(nested(10_000)), at("nested")),
    Hostile("nesting-60-deep", raw(nested(60)), at("nested")),
    Hostile(
        "python-object-tag",
        raw('name: !!python/object/apply:os.system ["echo pwned > pwned.txt"]\n'),
        at("sweep.yaml:1"),
    ),
    Hostile("unknown-local-tag", replace("name: tiny", "name: !secret tiny"), at("sweep.yaml:1")),
    Hostile(
        "windows-path-double-quoted",
        replace("name: tiny", 'name: tiny\nnotes: "C:\\Users\\me\\data\\train.csv"'),
        at("sweep.yaml:2"),
    ),
    Hostile("nbsp-indentation", replace("  num_trials: 6", "\u00a0\u00a0num_trials: 6"), at(FILE)),
    # --- keys given twice ---------------------------------------------------------------------
    Hostile("duplicate-section", lines("search:", "  num_trials: 2"), at("search", "twice")),
    Hostile(
        "duplicate-nested-key",
        replace("  num_trials: 6\n", "  num_trials: 6\n  num_trials: 60\n"),
        at("search.num_trials", "twice"),
    ),
    Hostile(
        "duplicate-key-in-flow-mapping",
        replace(
            "  weight_decay:\n    type: float\n",
            "  weight_decay: {type: float, type: int}\n  old_weight_decay:\n    type: float\n",
        ),
        at("search_space.weight_decay.type", "twice"),
    ),
    Hostile(
        "duplicate-search-space-entry",
        replace("  weight_decay:\n", "  learning_rate:\n"),
        at(LR, "twice"),
    ),
    # --- unknown, misspelt and missing keys --------------------------------------------------
    Hostile("typo-top-level", rename("objective", "objectve"), at("objectve", "objective")),
    Hostile("typo-search-space", rename("search_space", "serach_space"), at("serach_space")),
    Hostile("typo-nested", rename("search.num_trials", "num_trails"), at("search.num_trails")),
    Hostile("capitalised-section", rename("search", "Search"), at("Search")),
    Hostile("hyphen-for-underscore", rename("search.num_trials", "num-trials"), at("num-trials")),
    Hostile("key-with-trailing-space", rename("name", "name "), at("name")),
    Hostile(
        "zero-width-space-in-key",
        rename("search.num_trials", "num_trials\u200b"),
        at("search.num_trials", "num_trials"),
    ),
    Hostile("typo-entry-key", setting(f"{LR}.logg", True), at(f"{LR}.logg")),
    Hostile(
        "typo-choices-key",
        rename("search_space.per_device_train_batch_size.choices", "choice"),
        at("search_space.per_device_train_batch_size.choice", "did you mean 'choices'?"),
    ),
    Hostile("ray-tune-config-key", setting("param_space", {"lr": 1}), at("param_space")),
    Hostile("numeric-key", lines("123: abc"), at("123")),
    Hostile("null-key", lines("~: abc"), at(FILE)),
    Hostile("complex-key", lines("? [a, b]", ": c"), at(FILE)),
    Hostile("missing-model", drop("model"), at("model", "missing")),
    Hostile("missing-data", drop("data"), at("data", "missing")),
    Hostile("missing-search-space", drop("search_space"), at("search_space", "missing")),
    Hostile("missing-name", drop("name"), at("name", "missing")),
    Hostile("empty-search-space", setting("search_space", {}), at("search_space")),
    Hostile("null-search-space", setting("search_space", None), at("search_space")),
    Hostile("null-model", setting("model", None), at("model")),
    Hostile("model-as-string", setting("model", "bert-base-uncased"), at("model")),
    Hostile("objective-as-string", setting("objective", "accuracy"), at("objective")),
    Hostile("task-as-string", setting("task", "sequence_classification"), at("task")),
    Hostile("data-as-list", setting("data", ["train.csv", "dev.csv"]), at("data")),
    # --- the name --------------------------------------------------------------------------
    Hostile("name-with-spaces", setting("name", "my sweep"), at("name")),
    Hostile("name-with-slash", setting("name", "team/sweep"), at("name")),
    Hostile("name-path-traversal", setting("name", "../../etc/cron.d/x"), at("name")),
    Hostile("name-unicode", setting("name", "süß-sweep"), at("name")),
    Hostile("name-emoji", setting("name", "sweep-🚀"), at("name")),
    Hostile("name-with-newline", setting("name", "a\nb"), at("name")),
    Hostile("name-too-long", setting("name", "n" * 200), at("name")),
    Hostile("name-20k-characters", very_long_name, at("name")),
    Hostile("name-is-number", setting("name", 2024), at("name")),
    Hostile("name-is-date", replace("name: tiny", "name: 2026-11-24"), at("name")),
    Hostile("name-null", setting("name", None), at("name")),
    # --- numbers: types, signs, NaN, infinity, huge ------------------------------------------
    Hostile("num-trials-text", setting("search.num_trials", "many"), at("search.num_trials")),
    Hostile("num-trials-zero", setting("search.num_trials", 0), at("search.num_trials")),
    Hostile("num-trials-negative", setting("search.num_trials", -5), at("search.num_trials")),
    Hostile("num-trials-fraction", setting("search.num_trials", 4.5), at("search.num_trials")),
    Hostile("num-trials-1e100", setting("search.num_trials", 1e100), at("search.num_trials")),
    Hostile("num-trials-nan", setting("search.num_trials", float("nan")), at("search.num_trials")),
    Hostile("num-trials-list", setting("search.num_trials", [4, 8]), at("search.num_trials")),
    Hostile("search-seed-negative", setting("search.seed", -1), at("search.seed")),
    Hostile("search-seed-2-to-the-32", setting("search.seed", 2**32), at("search.seed")),
    Hostile("search-seed-huge", setting("search.seed", 10**40), at("search.seed")),
    Hostile("training-seed-2-to-the-40", setting("training.seed", 2**40), at("training.seed")),
    Hostile(
        "retrain-seeds-past-the-limit",
        settings(training__seed=2**32 - 2, retrain__enabled=True, retrain__seeds=3),
        at("training.seed"),
    ),
    Hostile(
        "max-concurrent-zero",
        setting("search.max_concurrent_trials", 0),
        at("search.max_concurrent_trials"),
    ),
    Hostile(
        "startup-trials-negative",
        setting("search.n_startup_trials", -1),
        at("search.n_startup_trials"),
    ),
    Hostile(
        "random-fraction-one", setting("search.random_fraction", 1.0), at("search.random_fraction")
    ),
    Hostile(
        "random-fraction-nan",
        setting("search.random_fraction", float("nan")),
        at("search.random_fraction"),
    ),
    Hostile("time-budget-zero", setting("search.time_budget_s", 0), at("search.time_budget_s")),
    Hostile(
        "time-budget-as-text", setting("search.time_budget_s", "1h"), at("search.time_budget_s")
    ),
    Hostile(
        "time-budget-negative-inf",
        setting("search.time_budget_s", float("-inf")),
        at("search.time_budget_s"),
    ),
    Hostile(
        "epochs-zero", setting("training.num_train_epochs", 0), at("training.num_train_epochs")
    ),
    Hostile(
        "epochs-negative", setting("training.num_train_epochs", -3), at("training.num_train_epochs")
    ),
    Hostile(
        "epochs-nan",
        setting("training.num_train_epochs", float("nan")),
        at("training.num_train_epochs"),
    ),
    Hostile(
        "epochs-inf",
        setting("training.num_train_epochs", float("inf")),
        at("training.num_train_epochs"),
    ),
    Hostile(
        "epochs-overflow-1e400",
        replace("num_train_epochs: 3", "num_train_epochs: 1.0e400"),
        at("training.num_train_epochs"),
    ),
    Hostile(
        "epochs-as-text",
        setting("training.num_train_epochs", "three"),
        at("training.num_train_epochs"),
    ),
    Hostile(
        "evaluations-per-epoch-zero",
        setting("training.evaluations_per_epoch", 0),
        at("training.evaluations_per_epoch"),
    ),
    Hostile(
        "evaluations-per-epoch-1000",
        setting("training.evaluations_per_epoch", 1000),
        at("training.evaluations_per_epoch"),
    ),
    Hostile(
        "fixed-training-value-nan",
        setting("training.weight_decay", float("nan")),
        at("training.weight_decay"),
    ),
    Hostile(
        "decimal-comma",
        replace("    low: 1.0e-05", "    low: 0,00001"),
        at(LR),
    ),
    # --- the search space -------------------------------------------------------------------
    Hostile("low-above-high", entry(type="float", low=1e-3, high=1e-5), at(LR)),
    Hostile("log-with-zero-low", entry(type="float", low=0.0, high=1e-3, log=True), at(LR)),
    Hostile("log-with-negative-low", entry(type="float", low=-1e-5, high=1e-3, log=True), at(LR)),
    Hostile("bound-nan", entry(type="float", low=float("nan"), high=1e-3), at(LR)),
    Hostile("bound-inf", entry(type="float", low=1e-5, high=float("inf")), at(LR)),
    Hostile("bound-negative-inf", entry(type="float", low=float("-inf"), high=1e-3), at(LR)),
    Hostile("bound-as-text", entry(type="float", low="tiny", high=1e-3), at(LR)),
    Hostile("entry-without-type", entry(low=1e-5, high=1e-3), at(LR, "type")),
    Hostile("optuna-old-uniform", entry(type="uniform", low=1e-5, high=1e-3), at(LR)),
    Hostile("ray-loguniform-type", entry(type="loguniform", low=1e-5, high=1e-3), at(LR)),
    Hostile("ray-tune-call-as-text", setting(LR, "tune.loguniform(1e-5, 1e-3)"), at(LR)),
    Hostile("fixed-value-in-space", setting(LR, 1e-4), at(LR)),
    Hostile(
        "wandb-style-list",
        setting("search_space.per_device_train_batch_size", [16, 32]),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "wandb-style-values",
        setting("search_space.per_device_train_batch_size", {"values": [16, 32]}),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "choices-empty",
        setting("search_space.per_device_train_batch_size.choices", []),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "choices-scalar",
        setting("search_space.per_device_train_batch_size.choices", 16),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "choices-duplicated",
        setting("search_space.per_device_train_batch_size.choices", [16, 16, 32]),
        at("search_space.per_device_train_batch_size", "twice"),
    ),
    Hostile(
        "choices-with-nan",
        setting("search_space.per_device_train_batch_size.choices", [16, float("nan")]),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "choices-nested-list",
        setting("search_space.per_device_train_batch_size.choices", [[16, 32]]),
        at("search_space.per_device_train_batch_size"),
    ),
    Hostile(
        "int-entry-fraction-bound",
        setting("search_space.gradient_accumulation_steps", {"type": "int", "low": 1.5, "high": 4}),
        at("search_space.gradient_accumulation_steps"),
    ),
    Hostile(
        "int-entry-step-zero",
        setting(
            "search_space.gradient_accumulation_steps",
            {"type": "int", "low": 1, "high": 4, "step": 0},
        ),
        at("search_space.gradient_accumulation_steps"),
    ),
    Hostile(
        "float-log-and-step",
        setting(
            "search_space.weight_decay",
            {"type": "float", "low": 0.01, "high": 0.1, "log": True, "step": 0.01},
        ),
        at("search_space.weight_decay"),
    ),
    Hostile(
        "method-entry-wrong-type",
        setting("search_space.method", {"type": "categorical", "choices": ["full", "lora"]}),
        at("search_space"),
    ),
    Hostile(
        "method-unknown",
        setting("search_space.method", {"type": "method", "choices": {"qlora": {}}}),
        at("search_space.method"),
    ),
    # --- training techniques (trainables.sections.TrainingTechniques) -------------------------
    Hostile(
        "oversampling-above-1", setting("training.oversampling", 3), at("training.oversampling")
    ),
    Hostile(
        "class-weight-exponent-text",
        setting("training.class_weight_exponent", "inverse"),
        at("training.class_weight_exponent"),
    ),
    Hostile(
        "layerwise-decay-zero",
        setting("training.layerwise_lr_decay", 0),
        at("training.layerwise_lr_decay"),
    ),
    # --- objective, task, search, scheduler, resources, retrain ------------------------------
    Hostile("metric-unknown", setting("objective.metric", "acc"), at("objective.metric")),
    Hostile("metric-of-another-task", setting("objective.metric", "f1"), at("objective.metric")),
    Hostile(
        "metric-trailing-space", setting("objective.metric", "accuracy "), at("objective.metric")
    ),
    Hostile("mode-maximize", setting("objective.mode", "maximize"), at("objective.mode")),
    Hostile("mode-against-metric", setting("objective.mode", "max"), at("objective.mode")),
    Hostile("task-unknown", setting("task.type", "classification"), at("task.type")),
    Hostile("sampler-unknown", setting("search.sampler", "bayesian"), at("search.sampler")),
    Hostile("sampler-uppercase", setting("search.sampler", "TPE"), at("search.sampler")),
    Hostile("scheduler-unknown", setting("scheduler.type", "hyperband"), at("scheduler.type")),
    Hostile("scheduler-unit-steps", setting("scheduler.unit", "steps"), at("scheduler.unit")),
    Hostile(
        "reduction-factor-one",
        setting("scheduler.reduction_factor", 1),
        at("scheduler.reduction_factor"),
    ),
    Hostile(
        "grace-period-zero", setting("scheduler.grace_period", 0), at("scheduler.grace_period")
    ),
    Hostile(
        "grace-period-negative", setting("scheduler.grace_period", -1), at("scheduler.grace_period")
    ),
    Hostile("max-t-zero", setting("scheduler.max_t", 0), at("scheduler.max_t")),
    Hostile("brackets-zero", setting("scheduler.brackets", 0), at("scheduler.brackets")),
    Hostile(
        "grace-period-beyond-max-t",
        settings(scheduler__grace_period=4, scheduler__max_t=3),
        at("scheduler.grace_period"),
        slow=True,
    ),
    Hostile(
        "cpus-per-trial-zero",
        setting("resources.cpus_per_trial", 0),
        at("resources.cpus_per_trial"),
    ),
    Hostile(
        "cpus-per-trial-all",
        setting("resources.cpus_per_trial", "all"),
        at("resources.cpus_per_trial"),
    ),
    Hostile(
        "gpus-per-trial-one-and-a-half",
        setting("resources.gpus_per_trial", 1.5),
        at("resources.gpus_per_trial"),
    ),
    Hostile(
        "gpus-per-trial-negative",
        setting("resources.gpus_per_trial", -1),
        at("resources.gpus_per_trial"),
    ),
    Hostile(
        "borrow-idle-cpus-two",
        setting("resources.borrow_idle_cpus", 2),
        at("resources.borrow_idle_cpus"),
    ),
    Hostile(
        "max-retries-negative",
        setting("fault_tolerance.max_retries", -1),
        at("fault_tolerance.max_retries"),
    ),
    Hostile("retrain-top-k-zero", setting("retrain.top_k", 0), at("retrain.top_k")),
    Hostile("retrain-seeds-zero", setting("retrain.seeds", 0), at("retrain.seeds")),
    Hostile("retrain-enabled-maybe", setting("retrain.enabled", "maybe"), at("retrain.enabled")),
    Hostile("storage-empty", setting("search.storage", ""), at("search.storage")),
    Hostile(
        "storage-url-with-password",
        setting("search.storage", "postgresql://me:hunter2secret@db.example/optuna"),
        at("search.storage", absent=("hunter2secret",)),
    ),
    Hostile(
        "hub-token-written",
        setting("training.hub_token", "hf_abcdefghijklmnopqrstuvwxyz012345"),
        at("training.hub_token", absent=("hf_abcdefghijklmnopqrstuvwxyz012345",)),
    ),
    # --- the data and model sections' own fields ---------------------------------------------
    Hostile(
        "train-and-hub", setting("data.hub", {"path": "nyu-mll/glue", "name": "sst2"}), at("data")
    ),
    Hostile("neither-train-nor-hub", drop("data.train"), at("data")),
    Hostile("max-length-zero", setting("data.max_length", 0), at("data.max_length")),
    Hostile("max-length-four", setting("data.max_length", 4), at("data.max_length")),
    Hostile("max-length-nan", setting("data.max_length", float("nan")), at("data.max_length")),
    Hostile("labels-duplicated", setting("data.labels", ["neg", "pos", "neg"]), at("data.labels")),
    Hostile(
        "labels-norway-problem",
        replace("  - negative\n  - positive\n", "  - no\n  - yes\n"),
        at("data.labels"),
    ),
    Hostile("labels-as-text", setting("data.labels", "negative,positive"), at("data.labels")),
    Hostile("split-validation-zero", setting("data.split", {"validation": 0}), at("data.split")),
    Hostile("split-test-one", setting("data.split", {"test": 1.0}), at("data.split.test")),
    Hostile("format-xlsx", setting("data.format", "xlsx"), at("data.format")),
    Hostile("format-uppercase", setting("data.format", "CSV"), at("data.format")),
    Hostile("max-train-rows-zero", setting("data.max_train_rows", 0), at("data.max_train_rows")),
    Hostile(
        "column-names-as-text",
        setting("data.column_names", "text,label"),
        at("data.column_names"),
    ),
    Hostile("model-path-empty", setting("model.name_or_path", ""), at("model.name_or_path")),
    Hostile("model-path-null", setting("model.name_or_path", None), at("model.name_or_path")),
    Hostile("replay-empty", setting("replay", {}), at("replay")),
    # --- odd but valid: exit 0 after the data and model checks (slow) ------------------------
    Hostile("binary-tag-name", replace("name: tiny", "name: !!binary dGlueQ=="), VALID, slow=True),
    Hostile("utf8-bom", text(lambda w: "\ufeff" + w), VALID, slow=True),
    Hostile("crlf-line-endings", text(windows_line_endings), VALID, slow=True),
    Hostile("cr-line-endings", text(old_mac_line_endings), VALID, slow=True),
    Hostile("anchor-and-merge-key", merge_key_defaults, VALID, slow=True),
    Hostile("flow-style-alias", aliased_choices, VALID, slow=True),
    Hostile("exponent-without-dot", replace("    low: 1.0e-05", "    low: 1e-5"), VALID, slow=True),
    Hostile(
        "unicode-comments-and-labels",
        text(lambda w: "# réglage — 日本語 ✓\n" + w),
        VALID,
        slow=True,
    ),
    Hostile("explicit-document-markers", text(lambda w: "---\n" + w + "...\n"), VALID, slow=True),
    # --- wrong only against the data, the model or the training library (slow) ----------------
    Hostile(
        "space-key-not-a-training-argument",
        rename("search_space.weight_decay", "weight_decy"),
        at("search_space.weight_decy"),
        slow=True,
    ),
    Hostile(
        "training-unknown-argument",
        setting("training.num_epochs", 3),
        at("training.num_epochs"),
        slow=True,
    ),
    Hostile(
        "training-sets-output-dir",
        setting("training.output_dir", "/tmp/somewhere"),
        at("training.output_dir"),
        slow=True,
    ),
    Hostile(
        "fixed-and-searched",
        setting("training.learning_rate", 1e-4),
        at("learning_rate"),
        slow=True,
    ),
    Hostile(
        "max-length-beyond-positions",
        setting("data.max_length", 4096),
        at("data.max_length"),
        slow=True,
    ),
    Hostile(
        "roc-auc-objective",
        settings(objective__metric="roc_auc", data__labels=["a", "b", "c"]),
        at("objective.metric", "roc_auc"),
        slow=True,
    ),
    Hostile(
        "partial-freezes-more-layers-than-exist",
        setting(
            "search_space.method",
            {
                "type": "method",
                "choices": {"partial": {"frozen_layers": {"type": "int", "low": 1, "high": 12}}},
            },
        ),
        at("search_space.method"),
        slow=True,
    ),
    Hostile(
        "lora-target-module-missing",
        setting(
            "search_space.method",
            {
                "type": "method",
                "choices": {
                    "lora": {
                        "lora_target_modules": {"type": "categorical", "choices": ["q_proj,v_proj"]}
                    }
                },
            },
        ),
        at("search_space.method"),
        slow=True,
    ),
    Hostile(
        "retrain-without-test-split",
        settings(retrain__enabled=True, data__test=None, data__split={"test": 0}),
        at("data.test"),
        slow=True,
    ),
    Hostile(
        "dropout-key-the-model-lacks",
        setting("search_space.hiden_dropout_prob", {"type": "float", "low": 0.0, "high": 0.3}),
        at("search_space.hiden_dropout_prob", "hidden_dropout_prob"),
        slow=True,
    ),
    Hostile(
        "progressive-zero-layers-per-step",
        setting(
            "search_space.method",
            {
                "type": "method",
                "choices": {
                    "progressive": {
                        "unfreeze_layers_per_step": {"type": "int", "low": 0, "high": 2}
                    }
                },
            },
        ),
        at("search_space.method.choices.progressive.unfreeze_layers_per_step", "at least 1"),
        slow=True,
    ),
    Hostile(
        "searched-oversampling-above-1",
        setting("search_space.oversampling", {"type": "float", "low": 0.0, "high": 2.0}),
        at("search_space.oversampling", "[0, 1]"),
        slow=True,
    ),
    Hostile(
        "windows-path-plain",
        setting("data.train", "C:\\Users\\me\\data\\train.csv"),
        at("data.train"),
        slow=True,
    ),
]


@pytest.mark.parametrize("case", params(CASES))
def test_validate_sweep_file(
    case: Hostile, base_sweep: Sweep, workdir: Path, shared_inputs: list[Path]
) -> None:
    write(workdir / FILE, case.make(base_sweep))
    run_case(Case(["validate", FILE], workdir, case.expect, watch=shared_inputs))


FOLDER_CASES = [
    Hostile("a-folder", lambda w: (w / "conf").mkdir() or "conf", refused("conf", "no such")),
    Hostile("missing-file", lambda w: "sweeps/typo.yaml", refused("typo.yaml", "no such")),
    Hostile("dev-null", lambda w: "/dev/null", refused("/dev/null")),
    Hostile(
        "dangling-symlink",
        lambda w: (w / "link.yaml").symlink_to(w / "gone.yaml") or "link.yaml",
        refused("link.yaml"),
    ),
    Hostile(
        "symlink-loop",
        lambda w: (w / "loop.yaml").symlink_to(w / "loop.yaml") or "loop.yaml",
        refused("loop.yaml"),
    ),
    Hostile("file-name-too-long", lambda w: "x" * 300 + ".yaml", refused("x" * 40)),
    Hostile(
        "path-through-a-file",
        lambda w: write(w / "f.yaml", "a: 1\n") and "f.yaml/s.yaml",
        refused("f.yaml/s.yaml"),
    ),
]


@pytest.mark.parametrize("case", params(FOLDER_CASES))
def test_validate_what_is_no_sweep_file(
    case: Hostile, workdir: Path, shared_inputs: list[Path]
) -> None:
    target = case.make(workdir)
    run_case(Case(["validate", target], workdir, case.expect, watch=shared_inputs))
