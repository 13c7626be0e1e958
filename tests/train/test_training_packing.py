"""`pack_rows` (numpy, used at start-up) gives exactly the rows of the reference best-fit packing
(`split_documents` + `best_fit_pack`): the same pieces in the same rows in the same order, so a run draws
the same rows and batches for the same seed as before."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import modeling_rexbert
from training.packing import PackedRows, best_fit_pack, pack_rows, row_tokens, split_documents
from training.shards import ShardedCorpus
from training.tokenize_job import tokenize_to_shards

CORPUS = Path(__file__).resolve().parents[2] / "rexbert" / "corpus"


def reference(lengths, row_length, documents=None):
    return best_fit_pack(split_documents(lengths, row_length, documents), row_length)


def rows_of(layout):
    return [layout.row(i) for i in range(len(layout))]


@pytest.mark.parametrize("row_length", [3, 16, 37, 128, 512, 8192])
def test_the_same_rows_as_the_reference_on_random_lengths(row_length):
    rng = np.random.default_rng(row_length)
    for trial in range(40):
        count = int(rng.integers(1, 400))
        lengths = rng.integers(0, 3 * row_length, count) if trial % 2 else rng.lognormal(4, 1.5, count).astype(int)
        documents = None if trial % 3 else np.sort(rng.choice(count, size=max(1, count // 2), replace=False))
        assert rows_of(pack_rows(lengths, row_length, documents)) == reference(lengths, row_length, documents)


def test_no_documents_give_no_rows():
    for lengths, documents in (([], None), ([5, 7], []), ([0, 0], None)):
        layout = pack_rows(lengths, 16, documents)
        assert len(layout) == 0 == len(reference(lengths, 16, documents)) and rows_of(layout) == []


def test_row_length_below_three_is_refused():
    with pytest.raises(ValueError, match="row_length must leave room"):
        pack_rows([5], 2)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    tokenize_to_shards(CORPUS / "ecommerce.jsonl", modeling_rexbert.load_tokenizer(), folder, progress=False)
    return ShardedCorpus(folder)


@pytest.mark.parametrize("row_length", [128, 512])
def test_the_bundled_corpus_gives_the_same_rows_and_tokens_as_before(corpus, row_length):
    documents = np.setdiff1d(np.arange(len(corpus)), np.arange(0, len(corpus), 10))  # as with held-out documents
    rows = PackedRows(corpus, row_length, 1, 2, documents)
    expected = reference(corpus.lengths, row_length, documents)
    assert len(rows) == len(expected) > 100
    for index in range(len(rows)):
        ids, positions = row_tokens(expected[index], {p.document: corpus.document(p.document).tolist()
                                                      for p in expected[index]}, 1, 2)
        assert rows[index] == {"index": index, "input_ids": ids, "position_ids": positions}
    assert rows.tokens == sum(p.length for row in expected for p in row)
