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

    pool_unpadded = embedding._pool_unpadded

    def dies_in_a_worker(model, rows, pooling):
        if os.getpid() != parent:
            os._exit(9)  # as the kernel's OOM killer would end it
        return pool_unpadded(model, rows, pooling=pooling)  # the first batch, measured in the parent

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
    for name, extra in (("threads", ["--cpu-workers", "1"]), ("workers", ["--cpu-workers", "2"])):
        assert main(["embed", *common, "--output", str(tmp_path / f"{name}.parquet"), *extra]) == 0
        tables[name] = pq.read_table(tmp_path / f"{name}.parquet")
    assert tables["workers"]["id"].to_pylist() == tables["threads"]["id"].to_pylist()
    assert tables["workers"]["embedding"].to_pylist() == tables["threads"]["embedding"].to_pylist()


def test_the_first_batch_runs_here_and_its_peak_is_measured():
    from evaluation.cpu_workers import run_measuring_peak

    size = 64 * 2**20
    _, grown = run_measuring_peak(lambda: torch.ones(size // 4).sum())
    assert grown is not None and grown >= size * 0.9  # the tensor's pages were touched, then freed


def test_only_the_workers_that_fit_in_memory_start(encoder, monkeypatch, caplog):
    from evaluation import cpu_workers

    model, tokenizer = encoder
    parent, pids = os.getpid(), set()
    pool_unpadded = embedding._pool_unpadded

    def records_its_process(model, rows, pooling):
        pids.add(os.getpid())
        return pool_unpadded(model, rows, pooling=pooling)

    monkeypatch.setattr(embedding, "_pool_unpadded", records_its_process)
    monkeypatch.setattr(cpu_workers, "run_measuring_peak", lambda run: (run(), 2**40))  # a 1 TiB batch
    rows = product_rows(tokenizer)
    in_workers = embedding.encode_ids(model, rows, batch_size=4, workers=2)
    assert pids == {parent}
    assert "1 CPU workers fit in the available memory" in caplog.text
    assert np.array_equal(in_workers, embedding.encode_ids(model, rows, batch_size=4))


@pytest.mark.parametrize(("threads", "cpu_workers", "expected"), [(None, None, "cores"), (1, None, 1), (3, None, 3),
                                                                    (3, 1, 1), (None, 2, 2)])
def test_embed_defaults_to_one_worker_per_thread(threads, cpu_workers, expected):
    from evaluation.cpu_runtime import usable_cores
    from evaluation.embed_job import ChunkEncoder, EmbedSettings

    settings = EmbedSettings(model="unused", input="unused", output="unused.parquet", threads=threads,
                             cpu_workers=cpu_workers)
    assert ChunkEncoder(settings).cpu_workers() == (usable_cores() if expected == "cores" else expected)


def test_local_shards_that_fork_their_own_workers_give_the_one_process_file(encoder, tmp_path):
    """Shards run by datatrove's local executor side by side, each forking CPU workers of its own."""
    from evaluation.embed_job import EmbedSettings
    from rexbert.core.executors import ExecutorOptions
    from rexbert.embed_command import embed_to_parquet

    model, _ = encoder

    def settings(name, **extra):
        return EmbedSettings(model=str(model.name_or_path), input=str(PRODUCTS),
                             output=str(tmp_path / name / "v.parquet"), id_column="fields.id",
                             text_columns=("fields.title", "fields.description"), chunk_rows=8, batch_size=2, **extra)

    one = embed_to_parquet(settings("one", cpu_workers=1), progress=False)
    sharded = embed_to_parquet(settings("sharded", threads=2), ExecutorOptions(type="local", tasks=2, workers=2))
    assert Path(sharded.output).read_bytes() == Path(one.output).read_bytes()
