"""Encoding on forked CPU workers (`encode_ids(workers=N)`): the same vectors as in-process, every batch reported,
and a worker that dies is a clear error, not a hang."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation import embedding
from evaluation.cpu_workers import can_fork

PRODUCTS = Path(__file__).parents[1] / "data" / "esci_sample" / "sample-products.jsonl"

pytestmark = pytest.mark.skipif(not can_fork(), reason="CPU workers are forked: Linux only")


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("workers") / "model"
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval().save_pretrained(path)
    return embedding.load_encoder(str(path), device="cpu")


def product_rows(tokenizer) -> list[list[int]]:
    texts = [json.loads(line)["fields"]["title"] for line in PRODUCTS.read_text().splitlines()]
    return embedding.tokenize(tokenizer, texts * 3, 128)[0]


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_workers_give_the_in_process_vectors(encoder, quantize):
    model, tokenizer = encoder
    if quantize:
        model = embedding.quantize_int8(__import__("copy").deepcopy(model))
    rows = product_rows(tokenizer)
    seen = []
    in_process = embedding.encode_ids(model, rows, batch_size=4, normalize=True)
    in_workers = embedding.encode_ids(model, rows, batch_size=4, normalize=True, workers=2,
                                      on_batch=lambda n, tokens: seen.append((n, tokens)))
    assert np.array_equal(in_workers, in_process)
    assert sorted(seen) == sorted((len(b), sum(len(rows[i]) for i in b))
                                  for b in embedding.length_sorted_batches([len(r) for r in rows], 4))
    assert torch.get_num_threads() > 0  # the parent's threads are its own: only the workers run on one


def test_a_worker_that_dies_is_an_error_not_a_hang(encoder, monkeypatch):
    model, tokenizer = encoder
    parent = os.getpid()

    def dies_in_a_worker(model, rows, pooling):
        if os.getpid() != parent:
            os._exit(9)  # as the kernel's OOM killer would end it
        raise AssertionError("ran in the parent")

    monkeypatch.setattr(embedding, "_pool_unpadded", dies_in_a_worker)
    with pytest.raises(RuntimeError, match="worker process died"):
        embedding.encode_ids(model, product_rows(tokenizer), batch_size=4, workers=2)


def test_workers_must_be_positive(encoder):
    model, tokenizer = encoder
    with pytest.raises(ValueError, match="workers must be at least 1"):
        embedding.encode_ids(model, product_rows(tokenizer), workers=0)


def test_embed_command_on_cpu_workers_writes_the_same_vectors(encoder, tmp_path):
    import pyarrow.parquet as pq

    from rexbert.cli import main

    model, _ = encoder
    common = ["--model", str(model.name_or_path), "--input", str(PRODUCTS), "--text-columns",
              "fields.title,fields.description", "--id-column", "fields.id", "--batch-size", "4", "--device", "cpu",
              "--no-progress"]
    tables = {}
    for name, extra in (("threads", []), ("workers", ["--cpu-workers", "2"])):
        assert main(["embed", *common, "--output", str(tmp_path / f"{name}.parquet"), *extra]) == 0
        tables[name] = pq.read_table(tmp_path / f"{name}.parquet")
    assert tables["workers"]["id"].to_pylist() == tables["threads"]["id"].to_pylist()
    assert tables["workers"]["embedding"].to_pylist() == tables["threads"]["embedding"].to_pylist()
