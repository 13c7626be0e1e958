"""Semantic similarity on ESCI (paper §6.2): CoSENT fine-tuning with sentence-transformers, scored by
Spearman / Pearson of cosine similarity against graded relevance on the test split.

Pairs come from the Hub (`tasksource/esci`), from the official layout (an examples file joined with
a products file on `product_id`), or from one local file with `query`, product text columns and
`esci_label` (E/S/C/I or Exact/Substitute/Complement/Irrelevant) or a numeric `score` in [0, 1].
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from datasets import Dataset

from .data import EvaluationDataError, load_split, product_text
from .loading import load_sentence_transformer
from .metrics import score
from .results import ESCI_COSENT, EvalResult

HUB_DATASET = "tasksource/esci"
LABEL_SCORES = {"E": 1.0, "S": 0.66, "C": 0.33, "I": 0.0}
LABEL_WORDS = {"exact": "E", "substitute": "S", "complement": "C", "irrelevant": "I"}
PRODUCT_FIELDS = ("product_title", "product_description")
# The ESCI sample's products file is a Vespa feed: fields.id, fields.title, fields.description, ...
VESPA_COLUMNS = {"fields.id": "product_id", "fields.title": "product_title",
                 "fields.description": "product_description", "fields.locale": "product_locale"}


def label_score(label: object) -> float:
    key = LABEL_WORDS.get(str(label).strip().lower(), str(label).strip().upper())
    if key not in LABEL_SCORES:
        raise EvaluationDataError(f"unknown esci_label {label!r}; expected E/S/C/I or Exact/Substitute/"
                                  "Complement/Irrelevant.")
    return LABEL_SCORES[key]


def join_products(examples: Dataset, products: Dataset, fields: Sequence[str] = PRODUCT_FIELDS) -> Dataset:
    """The official layout: attach product text (`fields` of the products file) to each (query, product_id)."""
    products = products.rename_columns({k: v for k, v in VESPA_COLUMNS.items() if k in products.column_names})
    if "product_id" not in products.column_names:
        raise EvaluationDataError(f"products file: column 'product_id' not found; available: {products.column_names}.")
    by_id = {row["product_id"]: row for row in products}
    missing = [pid for pid in examples["product_id"] if pid not in by_id]
    if missing:
        raise EvaluationDataError(f"{len(missing)} example(s) name products missing from the products file, "
                                  f"e.g. {missing[0]!r}.")
    absent = [f for f in fields if f not in products.column_names]
    if absent:
        raise EvaluationDataError(f"products file: column {absent[0]!r} not found; available: "
                                  f"{products.column_names} (choose with --product-columns).")
    columns = {f: [by_id[pid].get(f) for pid in examples["product_id"]] for f in fields}
    for name, values in columns.items():
        examples = examples.remove_columns([name]) if name in examples.column_names else examples
        examples = examples.add_column(name, values)
    return examples


def to_pairs(data: Dataset, fields: Sequence[str] = PRODUCT_FIELDS, locale: str | None = "us",
             query_column: str = "query") -> Dataset:
    """(query, product text, score) rows; product text = `fields` joined, HTML stripped."""
    if locale and "product_locale" in data.column_names:
        data = data.filter(lambda row: row["product_locale"] == locale)
    for col, option in ((query_column, "--query-column"), *((f, "--product-columns") for f in fields)):
        if col not in data.column_names:
            raise EvaluationDataError(f"column {col!r} not found; available: {data.column_names} "
                                      f"(choose with {option}).")
    if "score" in data.column_names:
        scores = [float(s) if isinstance(s, (int, float)) else math.nan for s in data["score"]]
        bad = [row for row, s in enumerate(scores) if not 0.0 <= s <= 1.0]  # NaN (and a missing score) fails this too
        if bad:
            raise EvaluationDataError(f"score must be in [0, 1]; row {bad[0]} has {data[bad[0]]['score']!r} "
                                      f"(rows counted from 0; {len(bad)} such row(s)).")
    elif "esci_label" in data.column_names:
        scores = []
        for row, label in enumerate(data["esci_label"]):
            try:
                scores.append(label_score(label))
            except EvaluationDataError as error:
                raise EvaluationDataError(f"row {row} (counted from 0): {error}") from None
    else:
        raise EvaluationDataError("pairs need an 'esci_label' or a numeric 'score' column.")
    texts = [product_text(row[f] for f in fields) for row in data]
    if len(texts) == 0:
        raise EvaluationDataError("no query-product pairs left (after the locale filter).")
    return Dataset.from_dict({"query": list(data[query_column]), "product": texts, "score": scores})


def split_by_query(pairs: Dataset, dev_fraction: float, seed: int) -> tuple[Dataset, Dataset | None]:
    """Holds out whole queries for the dev split (no query in both); None if there are too few queries."""
    queries = sorted(set(pairs["query"]))
    n_dev = int(round(dev_fraction * len(queries)))
    if n_dev == 0 or n_dev == len(queries):
        return pairs, None
    dev_queries = set(np.random.default_rng(seed).permutation(queries)[:n_dev].tolist())
    in_dev = [q in dev_queries for q in pairs["query"]]
    train = pairs.select([i for i, d in enumerate(in_dev) if not d])
    dev = pairs.select([i for i, d in enumerate(in_dev) if d])
    return train, dev


def load_esci(dataset: str | None = None, train_file: str | None = None, test_file: str | None = None,
              products_file: str | None = None, product_columns: Sequence[str] = PRODUCT_FIELDS,
              query_column: str = "query") -> dict[str, Dataset]:
    """train and test pairs from the Hub, a local split-labelled file, or train/test files; the product text
    is `product_columns` joined (ESCI's title and description by default), the query `query_column`."""
    def prepare(path_or_id: str, split: str) -> Dataset:
        data = load_split(path_or_id, split)
        if products_file:
            data = join_products(data, load_split(products_file), product_columns)
        return data

    def pairs_of(data: Dataset) -> Dataset:
        return to_pairs(data, product_columns, query_column=query_column)

    if train_file or test_file:
        if not (train_file and test_file):
            raise EvaluationDataError("pass both --train-file and --test-file.")
        return {"train": pairs_of(prepare(train_file, "train")), "test": pairs_of(prepare(test_file, "test"))}
    source = dataset or HUB_DATASET
    path = Path(source)
    if path.is_file():  # one file holding both splits in a `split` column, as ESCI's examples parquet
        data = prepare(source, "train")
        if "split" not in data.column_names:
            raise EvaluationDataError(f"{source} has no 'split' column; pass --train-file and --test-file.")
        splits = {s: data.filter(lambda row, s=s: row["split"] == s) for s in ("train", "test")}
        empty = [s for s, rows in splits.items() if len(rows) == 0]
        if empty:
            raise EvaluationDataError(f"{source} has no rows with split {empty[0]!r}; pass --train-file and --test-file.")
        return {s: pairs_of(rows) for s, rows in splits.items()}
    return {s: pairs_of(prepare(source, s)) for s in ("train", "test")}


def card_example(pairs: Dataset) -> tuple[list[dict], list[str]]:
    """The saved model card's widget and usage example: the first query with up to three of its products.
    Set here, sentence-transformers does not sample its own (behind a progress bar that ignores
    `disable_tqdm`)."""
    query = pairs[0]["query"]
    products = [row["product"] for row in pairs if row["query"] == query][:3]
    return [{"source_sentence": query, "sentences": products}], [query, *products]


def finetune_cosent(model_name: str, pairs: dict[str, Dataset], output_dir: str | Path | None = None,
                    epochs: float = 1.0, learning_rate: float = 2e-5, batch_size: int = 32, max_length: int = 512,
                    dev_fraction: float = 0.1, seed: int = 0, dataset_name: str = HUB_DATASET,
                    trust_remote_code: bool = False, progress: bool = True) -> list[EvalResult]:
    """Fine-tunes `model_name` with CoSENTLoss and scores the test split; saves a SentenceTransformer folder.
    `progress`: a bar with the ETA while it trains."""
    import torch
    from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
    from sentence_transformers.sentence_transformer.evaluation import EmbeddingSimilarityEvaluator
    from sentence_transformers.sentence_transformer.losses import CoSENTLoss

    from .progress import show_progress

    model = load_sentence_transformer(model_name, trust_remote_code)
    model.max_seq_length = max_length
    train, dev = split_by_query(pairs["train"], dev_fraction, seed)
    model.model_card_data.widget, model.model_card_data.usage_examples = card_example(train)
    evaluator = (EmbeddingSimilarityEvaluator(dev["query"], dev["product"], dev["score"], name="esci-dev")
                 if dev is not None else None)
    with tempfile.TemporaryDirectory() as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=epochs, learning_rate=learning_rate, seed=seed,
            per_device_train_batch_size=batch_size, per_device_eval_batch_size=batch_size, save_strategy="no",
            report_to=[], logging_strategy="no", disable_tqdm=True,
            eval_strategy="epoch" if evaluator is not None else "no",
            dataloader_pin_memory=torch.cuda.is_available(),  # pinning needs an accelerator; on CPU torch warns
        )
        trainer = SentenceTransformerTrainer(model=model, args=args, train_dataset=train, loss=CoSENTLoss(model),
                                             evaluator=evaluator)
        show_progress(trainer, "cosent", progress)
        trainer.train()
    test = pairs["test"]
    queries = model.encode(test["query"], convert_to_tensor=True, normalize_embeddings=True)
    products = model.encode(test["product"], convert_to_tensor=True, normalize_embeddings=True)
    cosine = (queries * products).sum(-1).cpu().numpy()
    if output_dir is not None:
        model.save(str(output_dir))
    settings = {"epochs": epochs, "learning_rate": learning_rate, "batch_size": batch_size, "max_length": max_length,
                "train_pairs": len(train), "dev_pairs": len(dev) if dev is not None else 0, "test_pairs": len(test)}
    return [EvalResult(model=model_name, task=ESCI_COSENT, dataset=dataset_name, split="test", metric=name,
                       value=score(name, cosine, test["score"]), seed=seed, settings=settings)
            for name in ("spearman", "pearson")]
