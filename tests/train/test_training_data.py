"""Training data path: masking statistics, determinism, Guided MLM, best-fit packing, span mining."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.data import clean_text, load_split
from training.masking import MaskingConfig, choose_positions, mask_row, sample_rng, span_lengths
from training.packing import best_fit_pack, row_tokens, split_documents
from training.spans import SpanLexicon, find_spans, mine_spans

CLS, SEP, PAD, MASK = 50281, 50282, 50283, 50284
SPECIAL = np.array([50280, CLS, SEP, PAD, MASK])
RANDOM_IDS = np.arange(100, 50000)
PRODUCTS = Path(__file__).parents[1] / "data" / "esci_sample" / "sample-products.jsonl"


def row(length: int, seed: int = 0) -> np.ndarray:
    ids = np.random.default_rng(seed).integers(100, 50000, size=length)
    ids[0], ids[-1] = CLS, SEP
    return ids


@pytest.mark.parametrize("rate", [0.30, 0.15])
def test_rate_is_exact_and_specials_are_never_masked(rate):
    config = MaskingConfig(rate=rate)
    ids = row(512)
    ids[200] = SEP  # a document boundary inside a packed row
    for index in range(20):
        inputs, labels = mask_row(ids, config, sample_rng(0, 1, index), SPECIAL, MASK, RANDOM_IDS)
        predicted = labels != -100
        assert predicted.sum() == round(rate * 509)
        assert not predicted[[0, 200, 511]].any()
        assert (labels[predicted] == ids[predicted]).all()


def test_replacement_is_80_10_10():
    config = MaskingConfig()
    ids = row(8192)
    inputs, labels = mask_row(ids, config, sample_rng(0, 1, 0), SPECIAL, MASK, RANDOM_IDS)
    predicted = labels != -100
    as_mask = (inputs[predicted] == MASK).mean()
    unchanged = (inputs[predicted] == ids[predicted]).mean()
    assert abs(as_mask - 0.8) < 0.03 and abs(unchanged - 0.1) < 0.02  # the rest (~10%) random tokens
    assert (inputs[~predicted] == ids[~predicted]).all()


def test_span_lengths_are_poisson_with_the_configured_mean():
    lengths = span_lengths(np.random.default_rng(0), 3.0, 20000)
    assert lengths.min() == 1 and abs(lengths.mean() - 3.0) < 0.05 and abs(lengths.var() - 2.0) < 0.1
    chosen = choose_positions(np.ones(4096, dtype=bool), MaskingConfig(mean_span=3.0), np.random.default_rng(1))
    runs = np.diff(np.flatnonzero(np.diff(np.concatenate([[0], chosen.astype(int), [0]]))))[::2]
    assert runs.mean() > 2.0  # contiguous runs, not isolated tokens (runs merge when spans touch)


def test_masks_are_a_pure_function_of_seed_phase_index():
    ids, config = row(300), MaskingConfig()
    first = mask_row(ids, config, sample_rng(3, 2, 17), SPECIAL, MASK, RANDOM_IDS)
    again = mask_row(ids, config, sample_rng(3, 2, 17), SPECIAL, MASK, RANDOM_IDS)
    other = mask_row(ids, config, sample_rng(3, 2, 18), SPECIAL, MASK, RANDOM_IDS)
    assert all((a == b).all() for a, b in zip(first, again))
    assert not (first[1] == other[1]).all()


def test_guided_rows_mask_mined_spans_first_at_the_configured_share():
    ids = row(400)
    spans = [(10, 14), (50, 53), (120, 126)]
    config = MaskingConfig(rate=0.15, guided_fraction=0.05)
    guided_rows = 0
    for index in range(2000):
        _, labels = mask_row(ids, config, sample_rng(0, 3, index), SPECIAL, MASK, RANDOM_IDS, preferred=spans)
        guided_rows += all((labels[a:b] != -100).all() for a, b in spans)
    assert 0.03 < guided_rows / 2000 < 0.07  # ~5%; unguided rows almost never cover all three by chance
    always = MaskingConfig(rate=0.15, guided_fraction=1.0)
    _, labels = mask_row(ids, always, sample_rng(0, 3, 0), SPECIAL, MASK, RANDOM_IDS, preferred=spans)
    assert all((labels[a:b] != -100).all() for a, b in spans)


def test_invalid_masking_config_names_the_problem():
    with pytest.raises(ValueError, match="masking rate"):
        MaskingConfig(rate=1.2)
    with pytest.raises(ValueError, match="guided_fraction"):
        MaskingConfig(guided_fraction=-0.1)


def test_packing_uses_every_token_once_and_never_truncates():
    rng = np.random.default_rng(0)
    lengths = [int(x) for x in rng.integers(1, 900, size=200)] + [3000, 0]
    documents = [list(range(n)) for n in lengths]
    rows = best_fit_pack(split_documents(lengths, 512), 512)
    seen = {d: [] for d in range(len(lengths))}
    for packed in rows:
        assert sum(p.length for p in packed) <= 512
        for piece in packed:
            seen[piece.document].extend(range(piece.start, piece.end))
    assert all(sorted(seen[d]) == documents[d] for d in range(len(lengths)))  # each token once, none cut
    fill = sum(p.length for r in rows for p in r) / (512 * len(rows))
    assert fill > 0.97  # best fit leaves little padding


def test_packed_rows_do_not_attend_across_documents():
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval()
    documents = [list(range(1000, 1000 + n)) for n in (40, 150, 25)]
    rows = best_fit_pack(split_documents([len(d) for d in documents], 256), 256)
    assert len(rows) == 1
    ids, positions = row_tokens(rows[0], documents, CLS, SEP)
    with torch.no_grad():
        packed = model(input_ids=torch.tensor([ids]), position_ids=torch.tensor([positions])).logits[0]
        offset = 0
        for piece in rows[0]:
            alone = torch.tensor([[CLS, *documents[piece.document], SEP]])
            torch.testing.assert_close(packed[offset:offset + piece.length], model(input_ids=alone).logits[0],
                                       atol=1e-5, rtol=0)
            offset += piece.length


def test_span_mining_on_real_product_text():
    spans = find_spans("Apple iPhone 13, 128 GB, Color: Navy Blue, by Apple Inc, model A2482")
    kinds = {kind: text for kind, text in
             ((k, "Apple iPhone 13, 128 GB, Color: Navy Blue, by Apple Inc, model A2482"[s:e]) for k, s, e in spans)}
    assert kinds == {"quantity": "128 GB", "attribute_value": "Color: Navy Blue", "brand": "Apple Inc",
                     "model_number": "A2482"}
    data = load_split(PRODUCTS)
    texts = [clean_text(t) for t in list(data["fields.title"]) + list(data["fields.description"])]
    mined = mine_spans(texts, min_count=2)
    assert "16GB" in mined["quantity"] and "12V" in mined["quantity"]
    lexicon = SpanLexicon(mined, modeling_rexbert.load_tokenizer())
    tokenizer = modeling_rexbert.load_tokenizer()
    ids = np.array(tokenizer("Car stereo with 16GB memory and 12V power")["input_ids"])
    found = [tokenizer.decode(ids[a:b]).strip() for a, b in lexicon.find(ids)]
    assert "16GB" in found and "12V" in found
