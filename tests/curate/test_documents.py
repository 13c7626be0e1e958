"""The shared document reader: bad lines and truncated archives are set aside with file:line, compression
is told by content, an oversized document is a reject; the curation sample and filter stages and the
training shards all read through it."""

from __future__ import annotations

import gzip
import json
import os
import sys
from pathlib import Path

import pytest

from curation.config import SampleConfig, config_from_dict
from curation.domains import get_domain
from curation.sampling import write_samples
from rexbert.core.documents import MissingDecompressorError, Record, Reject, read_file
from training.shards import ReadReport, read_documents


def _lines(*records) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in records)


def _good(i: int) -> dict:
    return {"id": f"good-{i}", "text": f"Stainless steel water bottle number {i}, 750 ml", "domain": "photo"}


@pytest.fixture
def messy_source(tmp_path) -> Path:
    """A FineFineWeb-layout folder whose photo domain holds every kind of trouble among 12 good records."""
    photo = tmp_path / "src" / "photo"
    photo.mkdir(parents=True)
    (photo / "a.jsonl").write_bytes(_lines(_good(0), b'{"text": "broken', _good(1), b'{"text": "caf\xe9"}', _good(2),
                                           {"text": "x" * 600, "domain": "photo"}))
    # gzip content under a plain .jsonl name: told by its magic bytes
    (photo / "b.jsonl").write_bytes(gzip.compress(_lines(_good(3), _good(4), _good(5))))
    # a .gz cut short: the records before the cut are kept, the cut is one reject
    padding = [{"id": f"pad-{i}", "text": os.urandom(32).hex(), "domain": "photo"} for i in range(2000)]
    whole = gzip.compress(_lines(*[_good(i) for i in range(6, 12)], *padding))
    (photo / "c.jsonl.gz").write_bytes(whole[: len(whole) - 1000])
    return tmp_path / "src"


def test_sample_stage_sets_aside_bad_lines_truncated_gzip_and_oversized_documents(messy_source, tmp_path):
    cfg = SampleConfig(source=str(messy_source), per_domain=10_000, max_bytes=500)
    written = write_samples(cfg, [get_domain("photo")], str(tmp_path / "samples"), progress=False)
    sampled = [json.loads(x) for x in open(tmp_path / "samples" / "photo.jsonl")]
    ids = {r["id"] for r in sampled}
    assert {f"good-{i}" for i in range(12)} <= ids and 12 + 1000 < len(ids) < 12 + 2000
    assert written["rejected"] == {"malformed_json": 1, "undecodable": 1, "oversized": 1, "unreadable_file": 1}
    rejects = {r["reason"]: r for r in map(json.loads, open(written["rejects_file"]))}
    assert rejects["malformed_json"]["file"].endswith("photo/a.jsonl")
    assert rejects["malformed_json"]["line"] == 2
    assert rejects["undecodable"]["line"] == 4 and rejects["oversized"]["line"] == 6
    assert rejects["unreadable_file"]["file"].endswith("photo/c.jsonl.gz")
    cut = rejects["unreadable_file"]
    assert cut["line"] == len(ids) - 12 + 7 and "EOFError" in cut["detail"]


def test_sample_stage_config_has_a_document_size_cap():
    assert config_from_dict({}).sample.max_bytes == 1_000_000
    with pytest.raises(ValueError, match="sample.max_bytes"):
        config_from_dict({"sample": {"max_bytes": 0}})


def test_filter_stage_reads_the_same_file_the_same_way(messy_source, tmp_path):
    from curation.reader import RobustReader

    reader = RobustReader(str(messy_source), str(tmp_path / "rejects"), max_bytes=500, domains=["photo"])
    ids = {doc.id for doc in reader.run()}
    assert {f"good-{i}" for i in range(12)} <= ids and 12 + 1000 < len(ids) < 12 + 2000
    reasons = sorted(json.loads(x)["reason"] for x in open(tmp_path / "rejects" / "00000.jsonl"))
    assert reasons == ["malformed_json", "oversized", "undecodable", "unreadable_file"]


def test_zstd_is_told_by_content_and_a_missing_decompressor_is_a_clear_error(tmp_path, monkeypatch):
    zstandard = pytest.importorskip("zstandard")
    path = tmp_path / "docs.jsonl"
    path.write_bytes(zstandard.ZstdCompressor().compress(_lines(_good(0), _good(1))))
    assert [r.text for r in read_file(str(path))] == [_good(0)["text"], _good(1)["text"]]
    monkeypatch.setitem(sys.modules, "zstandard", None)  # as if it were not installed
    with pytest.raises(MissingDecompressorError, match=f"{path} is zstd-compressed: install `zstandard`"):
        list(read_file(str(path)))


def test_an_oversized_line_is_never_read_whole(tmp_path):
    path = tmp_path / "big.jsonl"
    path.write_bytes(_lines({"text": "y" * 5_000_000}, _good(0)))
    items = list(read_file(str(path), max_bytes=1000))
    assert isinstance(items[0], Reject) and items[0].reason == "oversized" and items[0].line == 1
    assert "5000012 bytes" in items[0].detail
    assert isinstance(items[1], Record) and items[1].line == 2


def test_training_reads_compressed_jsonl_and_parquet_through_the_same_reader(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.jsonl").write_bytes(gzip.compress(_lines(_good(0), b"{oops")))
    pq.write_table(pa.Table.from_pylist([_good(1), {"text": "z" * 300}]), tmp_path / "docs" / "b.parquet")
    report = ReadReport()
    texts = list(read_documents(tmp_path / "docs", report=report, max_bytes=200))
    assert texts == [_good(0)["text"], _good(1)["text"]]
    assert report.skipped == {"malformed_json": 1, "oversized": 1}
    assert any(p.startswith(f"{tmp_path / 'docs' / 'a.jsonl'}:2: malformed_json") for p in report.problems)
