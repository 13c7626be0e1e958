"""GLUE fine-tuning with transformers' `Trainer` and the standard metrics, via `evaluate` (paper §6.3).

Data: the Hub (`nyu-mll/glue`, one config per task), a `save_to_disk` folder, or train/validation
files with GLUE's column names. MNLI reports the matched and mismatched validation sets.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from datasets import Dataset, DatasetDict, load_dataset, load_from_disk
from transformers import Trainer, TrainingArguments

from .data import EvaluationDataError, load_split
from .loading import load_pretrained, load_tokenizer
from .metrics import score
from .progress import show_progress
from .results import EvalResult

HUB_DATASET = "nyu-mll/glue"


@dataclass(frozen=True)
class GlueTask:
    text_columns: tuple[str, ...]
    num_labels: int  # 1 = regression
    metrics: tuple[str, ...]
    eval_splits: tuple[str, ...] = ("validation",)


TASKS = {
    "sst2": GlueTask(("sentence",), 2, ("accuracy",)),
    "cola": GlueTask(("sentence",), 2, ("mcc",)),
    "mrpc": GlueTask(("sentence1", "sentence2"), 2, ("accuracy", "f1")),
    "qqp": GlueTask(("question1", "question2"), 2, ("accuracy", "f1")),
    "stsb": GlueTask(("sentence1", "sentence2"), 1, ("pearson", "spearman")),
    "qnli": GlueTask(("question", "sentence"), 2, ("accuracy",)),
    "rte": GlueTask(("sentence1", "sentence2"), 2, ("accuracy",)),
    "mnli": GlueTask(("premise", "hypothesis"), 3, ("accuracy",), ("validation_matched", "validation_mismatched")),
}


def load_glue(task: str, dataset: str | None = None, train_file: str | None = None,
              validation_file: str | None = None) -> dict[str, Dataset]:
    """train + evaluation splits of `task`, validated: columns present, labels known."""
    spec = _spec(task)
    files: dict[str, str] = {}
    if train_file or validation_file:
        if not (train_file and validation_file):
            raise EvaluationDataError("pass both --train-file and --validation-file.")
        splits = {"train": load_split(train_file), spec.eval_splits[0]: load_split(validation_file)}
        files = {"train": train_file, spec.eval_splits[0]: validation_file}
    else:
        loaded = load_from_disk(dataset) if dataset and _is_saved_dataset(dataset) else load_dataset(
            dataset or HUB_DATASET, task)
        if not isinstance(loaded, DatasetDict):
            raise EvaluationDataError(f"{dataset} must hold train and validation splits.")
        missing = [s for s in ("train", *spec.eval_splits) if s not in loaded]
        if missing:
            raise EvaluationDataError(f"{dataset or HUB_DATASET}/{task} lacks split(s) {missing}.")
        splits = {s: loaded[s] for s in ("train", *spec.eval_splits)}
    for name, split in splits.items():
        where = f" ({files[name]})" if name in files else ""
        _check(split, spec, f"{task}/{name}{where}")
    return splits


def _spec(task: str) -> GlueTask:
    if task not in TASKS:
        raise EvaluationDataError(f"task {task!r} is not a GLUE task; choose one of {sorted(TASKS)}.")
    return TASKS[task]


def _is_saved_dataset(path: str) -> bool:
    return (Path(path) / "dataset_dict.json").exists()


def _check(split: Dataset, spec: GlueTask, name: str) -> None:
    if len(split) == 0:
        raise EvaluationDataError(f"{name} is empty.")
    for col in (*spec.text_columns, "label"):
        if col not in split.column_names:
            raise EvaluationDataError(f"{name}: column {col!r} not found; available: {split.column_names}.")
    labels = np.asarray(split["label"])
    if spec.num_labels > 1:
        known = set(range(spec.num_labels))
        unknown = [(row, label) for row, label in enumerate(labels.tolist()) if label not in known]
        if unknown:
            row, label = unknown[0]
            values = list(dict.fromkeys(label for _, label in unknown))
            raise EvaluationDataError(f"{name}: unknown label(s) {values[:5]}; row {row} (counted from 0) has "
                                      f"{label!r}, {len(unknown)} row(s) in all; expected 0..{spec.num_labels - 1}.")
    elif not np.issubdtype(labels.dtype, np.number):
        raise EvaluationDataError(f"{name}: labels must be numbers for regression, got {labels.dtype}.")
    else:
        bad = np.flatnonzero(~np.isfinite(labels.astype(float)))
        if bad.size:
            raise EvaluationDataError(f"{name}: row {int(bad[0])} has label {float(labels[bad[0]])}; labels must be finite.")


def finetune_glue(model_name: str, task: str, splits: dict[str, Dataset], seeds: Sequence[int] = (1,),
                  epochs: float = 3.0, learning_rate: float = 5e-5, batch_size: int = 32, max_length: int = 128,
                  dataset_name: str = HUB_DATASET, trust_remote_code: bool = False,
                  progress: bool = True) -> list[EvalResult]:
    """Fine-tunes once per seed and reports each metric on each evaluation split; `progress`: a bar with the ETA
    per run."""
    spec = _spec(task)
    tokenizer = load_tokenizer(model_name, trust_remote_code)

    def encode(batch):
        encoded = tokenizer(*(batch[c] for c in spec.text_columns), truncation=True, max_length=max_length)
        encoded["labels"] = [float(x) for x in batch["label"]] if spec.num_labels == 1 else batch["label"]
        return encoded

    encoded = {name: split.map(encode, batched=True, remove_columns=split.column_names)
               for name, split in splits.items()}
    results = []
    for seed in seeds:
        model = _load_classifier(model_name, spec.num_labels, seed, trust_remote_code)
        with tempfile.TemporaryDirectory() as output_dir:
            args = TrainingArguments(
                output_dir=output_dir, num_train_epochs=epochs, learning_rate=learning_rate, seed=seed,
                per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size,
                save_strategy="no", report_to=[], logging_strategy="no", disable_tqdm=True,
                use_cpu=not torch.cuda.is_available(), dataloader_pin_memory=torch.cuda.is_available(),
            )
            trainer = Trainer(model=model, args=args, train_dataset=encoded["train"], processing_class=tokenizer)
            show_progress(trainer, f"glue {task} seed {seed}", progress)
            trainer.train()
            for split_name in spec.eval_splits:
                output = trainer.predict(encoded[split_name])
                logits = output.predictions[0] if isinstance(output.predictions, tuple) else output.predictions
                predictions = logits.squeeze(-1) if spec.num_labels == 1 else logits.argmax(-1)
                for metric in spec.metrics:
                    results.append(EvalResult(
                        model=model_name, task=f"glue-{task}", dataset=dataset_name, split=split_name, metric=metric,
                        value=score(metric, predictions, output.label_ids), seed=seed,
                        settings={"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size,
                                  "max_length": max_length, "train_examples": len(encoded["train"])},
                    ))
    return results


def _load_classifier(model_name: str, num_labels: int, seed: int, trust_remote_code: bool = False):
    torch.manual_seed(seed)  # the new head's initialisation follows the seed
    kwargs = {"num_labels": num_labels}
    if num_labels == 1:
        kwargs["problem_type"] = "regression"
    # the new classifier head is missing from the checkpoint, as it should be; any other missing weight is an error
    model, _ = load_pretrained(model_name, "SequenceClassification", trust_remote_code, new_head="classifier.",
                               **kwargs)
    return model
