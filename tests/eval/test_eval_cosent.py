"""CoSENT on ESCI: the official layout joined from local files, labels, query-held-out dev, a saved model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config
from datasets import Dataset

import modeling_rexbert
from evaluation.cosent import finetune_cosent, label_score, load_esci, split_by_query, to_pairs
from evaluation.data import EvaluationDataError

ESCI = Path(__file__).parents[1] / "data" / "esci_sample"


def test_label_map_and_words():
    assert [label_score(x) for x in ("E", "S", "C", "I")] == [1.0, 0.66, 0.33, 0.0]
    assert [label_score(x) for x in ("Exact", "substitute", "COMPLEMENT", "irrelevant")] == [1.0, 0.66, 0.33, 0.0]
    with pytest.raises(EvaluationDataError, match="unknown esci_label 'X'"):
        label_score("X")


def test_official_layout_joins_products():
    examples, products = str(ESCI / "test-sample.parquet"), str(ESCI / "sample-products.jsonl")
    with pytest.raises(EvaluationDataError, match="no rows with split 'train'"):  # the sample is test rows only
        load_esci(dataset=examples, products_file=products)
    pairs = load_esci(train_file=examples, test_file=examples, products_file=products)
    assert len(pairs["test"]) == 16
    first = pairs["test"][0]
    assert first["query"] == "06 bmw 325i radio oem not navigation system"
    assert first["product"].startswith("Apple Carplay Double Din Car Stereo") and "<b>" not in first["product"]
    assert first["score"] == 0.66  # S


def test_dev_split_holds_out_whole_queries():
    pairs = Dataset.from_dict({"query": [f"q{i % 10}" for i in range(50)], "product": ["p"] * 50, "score": [0.5] * 50})
    train, dev = split_by_query(pairs, 0.2, seed=0)
    assert len(set(dev["query"])) == 2 and not set(dev["query"]) & set(train["query"])
    assert len(train) + len(dev) == 50
    one_query = pairs.filter(lambda r: r["query"] == "q1")
    assert split_by_query(one_query, 0.1, seed=0) == (one_query, None)


def test_bad_pairs_are_clear_errors(tmp_path):
    with pytest.raises(EvaluationDataError, match="column 'product_title' not found"):
        to_pairs(Dataset.from_dict({"query": ["a"], "title": ["b"], "esci_label": ["E"]}))
    with pytest.raises(EvaluationDataError, match=r"score must be in \[0, 1\]"):
        to_pairs(Dataset.from_dict({"query": ["a"], "product_title": ["b"], "product_description": ["c"],
                                    "score": [3.0]}))
    (tmp_path / "examples.jsonl").write_text(json.dumps({"query": "a", "product_id": "NOPE", "esci_label": "E"}) + "\n")
    with pytest.raises(EvaluationDataError, match="missing from the products file"):
        load_esci(train_file=str(tmp_path / "examples.jsonl"), test_file=str(tmp_path / "examples.jsonl"),
                  products_file=str(ESCI / "sample-products.jsonl"))


def test_finetune_scores_and_saves_a_sentence_transformer(tmp_path, capfd):
    from sentence_transformers import SentenceTransformer

    torch.manual_seed(0)
    modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2)).save_pretrained(tmp_path / "base")
    # the sample has one query: train and test on it to exercise the path (a real run uses ESCI's splits)
    pairs = load_esci(train_file=str(ESCI / "test-sample.parquet"), test_file=str(ESCI / "test-sample.parquet"),
                      products_file=str(ESCI / "sample-products.jsonl"))
    results = finetune_cosent(str(tmp_path / "base"), pairs, output_dir=tmp_path / "st", epochs=1, batch_size=8,
                              max_length=128)
    printed = capfd.readouterr()
    assert "Computing widget examples" not in printed.out + printed.err  # no bar that --no-progress cannot stop
    card = (tmp_path / "st" / "README.md").read_text()
    query = pairs["train"][0]["query"]
    assert f"source_sentence: {query}" in card  # the card's widget: a real query with its products
    assert [r.metric for r in results] == ["spearman", "pearson"]
    assert all(-1.0 <= r.value <= 1.0 for r in results)
    loaded = SentenceTransformer(str(tmp_path / "st"), trust_remote_code=True, device="cpu")
    assert loaded.encode(["red shoes"]).shape == (1, 64)
