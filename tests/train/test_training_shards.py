"""Tokenized shards: bad lines reported with file and line, documents round-trip, reruns resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

import modeling_rexbert
from training.shards import ShardedCorpus
from training.tokenize_job import tokenize_to_shards

TOKENIZER = modeling_rexbert.load_tokenizer()


@pytest.fixture
def messy_jsonl(tmp_path):
    path = tmp_path / "corpus.jsonl"
    lines = [
        json.dumps({"text": "Apple iPhone 13, 128 GB, Midnight"}).encode(),
        b'{"text": "broken json',
        json.dumps({"text": "   "}).encode(),
        b'{"text": "caf\xe9 latte"}',  # latin-1 byte: not UTF-8
        json.dumps({"title": "no text field"}).encode(),
        json.dumps({"text": "Hydro Flask 32 oz, Pacific"}).encode(),
        json.dumps({"text": "Color: Navy; Size: 10"}).encode(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_bad_lines_are_counted_with_file_and_line(messy_jsonl, tmp_path):
    manifest = tokenize_to_shards(messy_jsonl, TOKENIZER, tmp_path / "shards", progress=False)
    assert manifest["documents"] == 3
    assert manifest["skipped"] == {"malformed_json": 1, "empty_text": 1, "undecodable": 1, "missing_text": 1}
    assert any(p.startswith(f"{messy_jsonl}:4") and "undecodable" in p for p in manifest["problems"])
    assert any(p.startswith(f"{messy_jsonl}:2") for p in manifest["problems"])


def test_documents_round_trip(messy_jsonl, tmp_path):
    tokenize_to_shards(messy_jsonl, TOKENIZER, tmp_path / "shards", shard_documents=2, progress=False)
    corpus = ShardedCorpus(tmp_path / "shards")
    texts = ["Apple iPhone 13, 128 GB, Midnight", "Hydro Flask 32 oz, Pacific", "Color: Navy; Size: 10"]
    expected = [TOKENIZER(t, add_special_tokens=False)["input_ids"] for t in texts]
    assert len(corpus) == 3 and list(corpus.lengths) == [len(e) for e in expected]
    assert [corpus.document(i).tolist() for i in range(3)] == expected


def test_rerun_resumes_after_completed_shards(tmp_path):
    source = tmp_path / "docs.txt"
    source.write_text("\n".join(f"product {i} with {i} GB" for i in range(10)) + "\n")
    out = tmp_path / "shards"
    tokenize_to_shards(source, TOKENIZER, out, shard_documents=4, progress=False)
    full = [ShardedCorpus(out).document(i).tolist() for i in range(10)]
    # a crash after the first shard: the task's manifest names one shard only, the task is not done
    # (no completion marker, no merged manifest)
    task_file = out / "task-00000" / "task.json"
    task = json.loads(task_file.read_text())
    first = task["shards"][0]
    task.update(shards=[first], documents=4, tokens=first["tokens"], done=False, exhausted=False)
    task_file.write_text(json.dumps(task))
    (out / "manifest.json").unlink()
    for marker in out.glob("logs/*/completions/*"):
        marker.unlink()
    first_shard = (out / "task-00000" / "tokens-00000.npy").stat().st_mtime_ns
    resumed = tokenize_to_shards(source, TOKENIZER, out, shard_documents=4, progress=False)
    assert resumed["documents"] == 10 and len(resumed["shards"]) == 3
    assert (out / "task-00000" / "tokens-00000.npy").stat().st_mtime_ns == first_shard  # not redone
    assert [ShardedCorpus(out).document(i).tolist() for i in range(10)] == full


def test_another_source_in_the_same_folder_is_refused(tmp_path):
    (tmp_path / "a.txt").write_text("one\n")
    (tmp_path / "b.txt").write_text("two\n")
    tokenize_to_shards(tmp_path / "a.txt", TOKENIZER, tmp_path / "shards", progress=False)
    with pytest.raises(ValueError, match="another source"):
        tokenize_to_shards(tmp_path / "b.txt", TOKENIZER, tmp_path / "shards", progress=False)
    assert np.load(tmp_path / "shards" / "task-00000" / "tokens-00000.npy").size > 0


def test_collator_masks_packed_rows_deterministically(tmp_path):
    import torch

    from conftest import tiny_config
    from training.collator import MLMCollator
    from training.masking import MaskingConfig
    from training.packing import PackedRows

    source = tmp_path / "docs.txt"
    source.write_text("\n".join(f"Hydro Flask {i} oz bottle, Color: Navy, model HF{i:04d}" for i in range(40)) + "\n")
    tokenize_to_shards(source, TOKENIZER, tmp_path / "shards", progress=False)
    rows = PackedRows(ShardedCorpus(tmp_path / "shards"), 64, TOKENIZER.cls_token_id, TOKENIZER.sep_token_id)
    collate = MLMCollator(TOKENIZER, MaskingConfig(rate=0.3), seed=7, phase=1)
    batch = collate([rows[0], rows[1], rows[2]])
    alone = collate([rows[1]])
    n = len(rows[1]["input_ids"])
    assert torch.equal(batch["labels"][1, :n], alone["labels"][0])  # masks follow the row, not the batch
    original = torch.tensor(rows[1]["input_ids"])
    predicted = alone["labels"][0] != -100
    assert torch.equal(alone["labels"][0][predicted], original[predicted])
    assert batch["attention_mask"].sum() == sum(len(rows[i]["input_ids"]) for i in range(3))
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config())
    assert torch.isfinite(model(**batch).loss)


def test_an_edited_source_is_tokenized_again_saying_why(tmp_path, capsys):
    import os

    source = tmp_path / "docs.jsonl"
    source.write_text(json.dumps({"text": "red shoes size 10"}) + "\n")
    out = tmp_path / "shards"
    tokenize_to_shards(source, TOKENIZER, out, progress=False)
    before = ShardedCorpus(out).document(0).tolist()
    assert tokenize_to_shards(source, TOKENIZER, out, progress=False)["documents"] == 1  # unchanged: reused
    assert "stale" not in capsys.readouterr().out
    stat = source.stat()
    source.write_text(json.dumps({"text": "navy hats size 12"}) + "\n")  # same size
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # and the same mtime: the content hash tells
    tokenize_to_shards(source, TOKENIZER, out, progress=False)
    assert f"token cache {out} is stale: its input changed (docs.jsonl)" in capsys.readouterr().out
    after = ShardedCorpus(out).document(0).tolist()
    assert after != before and TOKENIZER.decode(after) == "navy hats size 12"
