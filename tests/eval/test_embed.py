"""`rexbert embed`: the vectors are sentence-transformers' for the same rows, an interrupted run resumes to the
same file, bad rows are set aside with file:line, long rows are counted, and `rexbert.embed` returns a Dataset."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from conftest import tiny_config, with_layers_that_matter

import modeling_rexbert
from evaluation import embed_job
from evaluation.embed_job import EmbedInputError, EmbedSettings, combine, prepare, run_shard
from rexbert.cli import main
from rexbert.core.html_text import product_text
from rexbert.embed_command import embed_to_parquet

PRODUCTS = Path(__file__).parents[1] / "data" / "esci_sample" / "sample-products.jsonl"
VESPA = dict(text_columns=("fields.title", "fields.description"), id_column="fields.id")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("embed") / "model"
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval().save_pretrained(path)
    return path


def products() -> list[dict]:
    return [json.loads(line)["fields"] for line in PRODUCTS.read_text().splitlines()]


def product_texts(rows: list[dict]) -> list[str]:
    """What `rexbert embed` and `rexbert eval retrieval` embed: title and description, HTML dropped."""
    return [product_text((r["title"], r["description"])) for r in rows]


def test_embed_equals_sentence_transformers(folder, tmp_path, capsys):
    from sentence_transformers import SentenceTransformer

    out = tmp_path / "vectors.parquet"
    assert main(["embed", "--model", str(folder), "--input", str(PRODUCTS), "--output", str(out),
                 "--text-columns", "fields.title,fields.description", "--id-column", "fields.id",
                 "--chunk-rows", "5", "--batch-size", "4", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "Wrote 16 embeddings" in printed and "nothing was cut" in printed
    table = pq.read_table(out)
    rows = products()
    assert table["id"].to_pylist() == [r["id"] for r in rows]  # input order, across chunks
    texts = product_texts(rows)
    expected = SentenceTransformer(str(folder), device="cpu").encode(texts, batch_size=3)
    np.testing.assert_allclose(np.array(table["embedding"].to_pylist(), dtype=np.float32), expected, atol=1e-5)


class Interrupted(Exception):
    """Stands for a kill: the run stops between two chunks' writes."""


def interrupt_after(monkeypatch, chunks: int):
    """ChunkEncoder that dies when asked for chunk number `chunks` of this process."""
    real = embed_job.ChunkEncoder.__call__
    calls = []

    def call(self, index, *args, **kwargs):
        nonlocal chunks
        if len(calls) == chunks:
            chunks = -1  # once
            raise Interrupted
        calls.append(index)
        return real(self, index, *args, **kwargs)

    monkeypatch.setattr(embed_job.ChunkEncoder, "__call__", call)
    return calls


def test_an_interrupted_run_resumes_to_the_same_file(folder, tmp_path, monkeypatch):
    def settings(name):
        return EmbedSettings(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / name / "v.parquet"),
                             chunk_rows=3, batch_size=2, **VESPA)

    whole = embed_to_parquet(settings("whole"), progress=False)
    calls = interrupt_after(monkeypatch, 2)
    with pytest.raises(Interrupted):
        embed_to_parquet(settings("resumed"), progress=False)
    assert calls == [0, 1] and not Path(settings("resumed").output).exists()
    calls.clear()
    embed_to_parquet(settings("resumed"), progress=False)
    assert calls == [2, 3, 4, 5]  # only the chunks the interrupted run had not written
    assert Path(settings("resumed").output).read_bytes() == Path(whole.output).read_bytes()


def test_a_resume_with_other_settings_is_refused(folder, tmp_path):
    base = dict(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / "v.parquet"), chunk_rows=8, **VESPA)
    prepare(EmbedSettings(**base))
    with pytest.raises(EmbedInputError, match="other settings"):
        prepare(EmbedSettings(**{**base, "normalize": True}))


def test_bad_rows_are_set_aside_with_file_and_line(folder, tmp_path):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    (catalog / "a.jsonl").write_text('{"id": 1, "title": "red shoes"}\n{"id": 2, "title": "blue\n'
                                     '{"id": 3, "description": "a mug"}\n{"title": "no id"}\n{"id": 5, "title": 7}\n')
    (catalog / "b.csv").write_text('id,title,description\n6,"usb cable, 2 m",braided\n7,too,many,fields\n8,,\n')
    out = tmp_path / "v.parquet"
    summary = embed_to_parquet(EmbedSettings(model=str(folder), input=str(catalog), output=str(out), chunk_rows=2),
                               progress=False)
    assert pq.read_table(out)["id"].to_pylist() == ["1", "3", "6"]
    rejects = [json.loads(line) for line in out.with_suffix(".rejects.jsonl").read_text().splitlines()]
    where = [(Path(r["file"]).name, r["line"], r["reason"]) for r in rejects]
    assert where == [("a.jsonl", 2, "malformed_json"), ("a.jsonl", 4, "missing_id"), ("a.jsonl", 5, "missing_text"),
                     ("b.csv", 3, "malformed_csv"), ("b.csv", 4, "empty_text")]
    assert summary.rows == 3 and sum(summary.rejects.values()) == 5
    assert "5 row(s) set aside" in "\n".join(summary.lines())


def test_long_rows_are_counted_and_cut(folder, tmp_path):
    summary = embed_to_parquet(EmbedSettings(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / "v.pq"),
                                             max_length=64, **VESPA), progress=False)
    lengths = [len(t) for t in _token_lengths(folder)]
    assert summary.truncated == sum(n > 64 for n in lengths) > 0
    assert f"{summary.truncated} row(s) had more than 64 tokens" in "\n".join(summary.lines())
    from sentence_transformers import SentenceTransformer  # cut as sentence-transformers cuts: [SEP] kept

    reference = SentenceTransformer(str(folder), device="cpu")
    reference.max_seq_length = 64
    texts = product_texts(products())
    vectors = np.array(pq.read_table(summary.output)["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, reference.encode(texts), atol=1e-5)


def _token_lengths(folder):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    texts = product_texts(products())
    return tokenizer(texts)["input_ids"]


def test_python_api_returns_a_dataset(folder, tmp_path):
    import rexbert

    data = rexbert.embed(str(folder), str(PRODUCTS), str(tmp_path / "v.parquet"), normalize=True, dtype="float16",
                         progress=False, **VESPA)
    assert len(data) == 16 and data.column_names == ["id", "embedding"]
    vectors = np.array(data["embedding"], dtype=np.float32)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=2e-3)


def test_local_shards_give_the_one_process_file(folder, tmp_path):
    def settings(name):
        return EmbedSettings(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / name / "v.parquet"),
                             chunk_rows=4, **VESPA)

    from rexbert.core.executors import ExecutorOptions

    one = embed_to_parquet(settings("one"), progress=False)
    sharded = embed_to_parquet(settings("sharded"), ExecutorOptions(type="local", tasks=3, workers=1))
    assert Path(sharded.output).read_bytes() == Path(one.output).read_bytes()


def test_missing_parts_are_named(folder, tmp_path):
    settings = EmbedSettings(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / "v.parquet"),
                             chunk_rows=4, **VESPA)
    prepare(settings)
    run_shard(settings, rank=0, world_size=2, progress=False)
    with pytest.raises(EmbedInputError, match=r"chunk\(s\) \[2, 3\] .* missing"):  # rank 0: chunks 0, 1
        combine(settings)


def test_a_sentence_transformers_saved_folder_embeds_as_it_says(folder, tmp_path):
    """A folder saved by sentence-transformers itself (as `rexbert eval cosent --save-model` does): its own
    max_seq_length (kept in the tokenizer config by sentence-transformers 6) is honoured; a module we do not
    run (Dense) is an error rather than different vectors."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Dense

    model = SentenceTransformer(str(folder), device="cpu")
    model.max_seq_length = 32
    model.save(str(tmp_path / "st"))
    out = tmp_path / "v.parquet"
    summary = embed_to_parquet(EmbedSettings(model=str(tmp_path / "st"), input=str(PRODUCTS), output=str(out),
                                             **VESPA), progress=False)
    assert summary.max_length == 32 and summary.truncated > 0
    texts = product_texts(products())
    vectors = np.array(pq.read_table(out)["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, SentenceTransformer(str(tmp_path / "st"), device="cpu").encode(texts),
                               atol=1e-5)
    model.append(Dense(64, 8))
    model.save(str(tmp_path / "dense"))
    with pytest.raises(ValueError, match="Dense"):
        embed_to_parquet(EmbedSettings(model=str(tmp_path / "dense"), input=str(PRODUCTS),
                                       output=str(tmp_path / "d.parquet"), **VESPA), progress=False)


def test_a_killed_command_resumes_to_the_same_file(folder, tmp_path):
    """`rexbert embed` killed (SIGKILL) after its first parts, then run again: only the missing chunks are
    encoded and the output equals an uninterrupted run's, byte for byte."""
    import shutil
    import subprocess
    import time

    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(PRODUCTS.read_text() * 10)  # 160 rows: long enough to be killed mid-way

    def command(name):
        return [shutil.which("rexbert") or "rexbert", "embed", "--model", str(folder), "--input", str(catalog),
                "--output", str(tmp_path / name / "v.parquet"), "--text-columns", "fields.title,fields.description",
                "--id-column", "fields.id", "--chunk-rows", "4", "--batch-size", "4", "--no-progress"]

    (tmp_path / "killed").mkdir()
    process = subprocess.Popen(command("killed"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parts = tmp_path / "killed" / "v.parquet.parts"
    deadline = time.monotonic() + 300
    while len(list(parts.glob("chunk-*.parquet"))) < 2 and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.kill()
    process.wait()
    written = len(list(parts.glob("chunk-*.parquet")))
    assert 2 <= written < 40 and not (tmp_path / "killed" / "v.parquet").exists()
    resumed = subprocess.run(command("killed"), capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "Wrote 160 embeddings" in resumed.stdout
    whole = subprocess.run(command("whole"), capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr[-2000:]
    assert (tmp_path / "killed" / "v.parquet").read_bytes() == (tmp_path / "whole" / "v.parquet").read_bytes()


def test_a_prompt_by_name_is_the_folders_prompt(folder, tmp_path):
    import shutil

    from sentence_transformers import SentenceTransformer

    from modeling_rexbert.sentence_transformers_config import write_config

    prompted = tmp_path / "prompted"
    shutil.copytree(folder, prompted)
    write_config(prompted, prompts={"query": "query: ", "document": ""}, overwrite=True)
    out = tmp_path / "q.parquet"
    embed_to_parquet(EmbedSettings(model=str(prompted), input=str(PRODUCTS), output=str(out), prompt="query",
                                   **VESPA), progress=False)
    texts = product_texts(products())
    expected = SentenceTransformer(str(prompted), device="cpu").encode(texts, prompt_name="query")
    vectors = np.array(pq.read_table(out)["embedding"].to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(vectors, expected, atol=1e-5)
    plain = np.array(pq.read_table(embed_to_parquet(EmbedSettings(
        model=str(prompted), input=str(PRODUCTS), output=str(tmp_path / "p.parquet"), **VESPA),
        progress=False).output)["embedding"].to_pylist(), dtype=np.float32)
    assert np.abs(plain - vectors).max() > 1e-3  # the prompt changed the vectors


def test_a_wrong_model_fails_before_reading_the_input(tmp_path, capsys):
    assert main(["embed", "--model", str(tmp_path / "nowhere"), "--input", str(PRODUCTS), "--output",
                 str(tmp_path / "v.parquet"), "--no-progress"]) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert not (tmp_path / "v.parquet.parts" / "manifest.json").exists()


def test_local_shards_spread_over_the_gpus(monkeypatch):
    from rexbert.embed_command import shard_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert shard_device(None, 3) is None  # one GPU: the default device
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [shard_device(None, rank) for rank in (0, 1, 5)] == ["cuda:0", "cuda:1", "cuda:1"]
    assert shard_device("cpu", 2) == "cpu"


def test_embed_prepares_text_as_retrieval_does():
    """One text preparation: the catalog rows `rexbert embed` encodes are the product texts of `rexbert eval
    retrieval` (HTML dropped), not the raw fields."""
    from evaluation.retrieval import load_retrieval_sets

    settings = EmbedSettings(model="unused", input=str(PRODUCTS), output="unused.parquet", **VESPA)
    embedded = dict(embed_job.read_rows(settings))
    sets = load_retrieval_sets(str(PRODUCTS.with_name("test-sample.parquet")), str(PRODUCTS),
                               ("product_title", "product_description"))
    assert embedded == {pid: sets[0].corpus[pid] for pid in embedded} and len(embedded) == 16
    assert any("<" in r["description"] for r in products()) and not any("<" in t for t in embedded.values())


def test_each_shard_reads_only_its_own_files(folder, tmp_path, monkeypatch):
    catalog = tmp_path / "catalog"
    catalog.mkdir()
    for part, rows in enumerate(np.array_split(products(), 4)):
        (catalog / f"{part}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))

    def settings(name):
        return EmbedSettings(model=str(folder), input=str(catalog), output=str(tmp_path / name / "v.parquet"),
                             chunk_rows=4, text_columns=("title", "description"))

    one = embed_to_parquet(settings("one"), progress=False)
    prepare(settings("sharded"))
    opened = []
    real = embed_job.read_file
    monkeypatch.setattr(embed_job, "read_file", lambda file, **kw: opened.append(Path(file).name) or real(file, **kw))
    for rank in (1, 0):
        opened.clear()
        assert run_shard(settings("sharded"), rank=rank, world_size=2, progress=False) == 2
        assert opened == (["2.jsonl", "3.jsonl"] if rank else ["0.jsonl", "1.jsonl"])
    assert Path(combine(settings("sharded")).output).read_bytes() == Path(one.output).read_bytes()


def test_int8_is_quantized_once_and_stays_close_to_float32(tmp_path, monkeypatch):
    """`--quantize int8` on a model whose layers matter (weights scaled up from init, where the embedding lookup
    alone would dominate): one quantization for all chunks, vectors within cosine 0.99 of float32, yet different."""
    from evaluation import embedding

    torch.manual_seed(0)
    model = with_layers_that_matter(modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval())
    model.save_pretrained(tmp_path / "model")
    calls = []
    real = embedding.quantize_int8
    monkeypatch.setattr(embedding, "quantize_int8", lambda m: calls.append(1) or real(m))

    def vectors(name, **kw):
        out = tmp_path / name
        embed_to_parquet(EmbedSettings(model=str(tmp_path / "model"), input=str(PRODUCTS), output=str(out),
                                       chunk_rows=5, device="cpu", **VESPA, **kw), progress=False)
        return np.array(pq.read_table(out)["embedding"].to_pylist(), dtype=np.float64)

    full, int8 = vectors("fp32.parquet"), vectors("int8.parquet", quantize="int8")
    assert len(calls) == 1  # 4 chunks, one quantized model
    cosine = (full * int8).sum(1) / np.linalg.norm(full, axis=1) / np.linalg.norm(int8, axis=1)
    assert cosine.min() >= 0.99, cosine
    assert np.abs(full - int8).max() > 1e-3
    with pytest.raises(EmbedInputError, match="quantize 'int4'"):
        EmbedSettings(model="m", input="i", output="o", quantize="int4")


@pytest.mark.skipif(not hasattr(__import__("os"), "sched_getaffinity"), reason="glibc's mallopt: Linux only")
def test_cpu_encoder_keeps_freed_memory_for_the_next_batch(folder):
    """Loading an encoder for CPU work sets glibc's thresholds once (mallopt accepted both), so batches reuse
    freed memory instead of page-faulting it in again."""
    from evaluation import cpu_runtime
    from evaluation.embedding import load_encoder

    cpu_runtime.keep_freed_memory.cache_clear()
    load_encoder(str(folder), device="cpu")
    assert cpu_runtime.keep_freed_memory.cache_info().misses == 1
    assert cpu_runtime.keep_freed_memory() is True
