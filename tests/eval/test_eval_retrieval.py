"""`rexbert eval retrieval`: metrics of a tiny judgement set equal the values worked out by hand below; the
command reads the bundled ESCI sample (official layout + Vespa products feed) and writes rexbert-eval/1
results per locale that the model card shows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.data import EvaluationDataError
from evaluation.results import ESCI_RETRIEVAL, ESCI_RETRIEVAL_INT8, read_results
from evaluation.retrieval import ESCI_GAINS, load_retrieval_sets, retrieval_metrics
from rexbert.cli import main

ESCI = Path(__file__).parents[1] / "data" / "esci_sample"
CORPUS = ["d1", "d2", "d3", "d4"]
# q1 judged d1=E (gain 1.0), d2=S (0.1), d3=I (0); q2 judged d3=E, d4=E, d1=C (0.01)
GAINS = {"q1": {"d1": 1.0, "d2": 0.1, "d3": 0.0}, "q2": {"d3": 1.0, "d4": 1.0, "d1": 0.01}}
SCORES = np.array([[0.8, 0.9, 0.6, 0.7],   # q1 ranks d2, d1, d4, d3
                   [0.4, 0.3, 0.5, 0.2]])  # q2 ranks d3, d1, d2, d4


def test_metrics_equal_the_hand_computed_values():
    # q1: gains in rank order 0.1, 1.0, 0, 0. DCG@10 = 0.1/log2(2) + 1/log2(3) = 0.730930;
    #     ideal 1.0, 0.1: IDCG = 1 + 0.1/log2(3) = 1.063093; nDCG = 0.687550.
    #     Relevant (Exact) {d1} at rank 2: RR = 1/2, recall@100 = 1, AP = (1/2) / 1 = 0.5; recall@2 = 1.
    # q2: gains in rank order 1.0, 0.01, 0, 1.0. DCG = 1 + 0.01/log2(3) + 1/log2(5) = 1.436986;
    #     ideal 1, 1, 0.01: IDCG = 1 + 1/log2(3) + 0.01/log2(4) = 1.635930; nDCG = 0.878391.
    #     Relevant {d3, d4} at ranks 1 and 4: RR = 1, recall@100 = 1, AP = (1/1 + 2/4) / 2 = 0.75; recall@2 = 1/2.
    # means: nDCG@10 = 0.782971, MRR@10 = 0.75, Recall@100 = 1, MAP@100 = 0.625, Recall@2 = 0.75
    ndcg_q1 = (0.1 + 1 / math.log2(3)) / (1 + 0.1 / math.log2(3))
    ndcg_q2 = (1 + 0.01 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3) + 0.01 / math.log2(4))
    assert (round(ndcg_q1, 6), round(ndcg_q2, 6)) == (0.687550, 0.878391)
    metrics = retrieval_metrics(SCORES, ["q1", "q2"], CORPUS, GAINS, min_relevant_gain=ESCI_GAINS["E"])
    assert metrics["ndcg@10"] == pytest.approx(0.782971, abs=1e-6)
    assert metrics["mrr@10"] == pytest.approx(0.75)
    assert metrics["recall@100"] == pytest.approx(1.0)
    assert metrics["map@100"] == pytest.approx(0.625)
    assert metrics["queries_graded"] == metrics["queries_with_relevant"] == 2
    assert retrieval_metrics(SCORES, ["q1", "q2"], CORPUS, GAINS, 1.0, recall_k=2)["recall@2"] == pytest.approx(0.75)


def test_substitutes_count_when_asked_and_ungraded_queries_are_left_out():
    # with S (0.1) relevant too, q1's first hit d2 is relevant: RR 1; q3 judged only I has nothing to find
    gains = {**GAINS, "q3": {"d2": 0.0}}
    scores = np.vstack([SCORES, [[0.1, 0.2, 0.3, 0.4]]])
    metrics = retrieval_metrics(scores, ["q1", "q2", "q3"], CORPUS, gains, min_relevant_gain=0.1)
    assert metrics["mrr@10"] == pytest.approx(1.0)
    assert metrics["queries_graded"] == metrics["queries_with_relevant"] == 2


def test_ties_break_by_corpus_id():
    # all scores equal: the ranking is d1, d2, d3, d4, so q2's Exact products sit at ranks 3 and 4
    metrics = retrieval_metrics(np.zeros((1, 4)), ["q2"], CORPUS, GAINS, 1.0)
    assert metrics["mrr@10"] == pytest.approx(1 / 3)
    assert metrics["map@100"] == pytest.approx((1 / 3 + 2 / 4) / 2)


def test_locales_and_labels_from_files(tmp_path):
    judgements = tmp_path / "judgements.jsonl"
    rows = [{"query": "red shoes", "product_id": "a", "esci_label": "Exact", "product_locale": "us"},
            {"query": "red shoes", "product_id": "b", "esci_label": "I", "product_locale": "us"},
            {"query": "zapatos", "product_id": "c", "esci_label": "S", "product_locale": "es"}]
    judgements.write_text("".join(json.dumps(r) + "\n" for r in rows))
    products = tmp_path / "products.csv"
    products.write_text("product_id,product_title,product_description,product_locale\na,Red shoe,<b>leather</b>,us\n"
                        "b,Blue mug,,us\nc,Zapato rojo,,es\nd,Green hat,,us\n")
    sets = {s.locale: s for s in load_retrieval_sets(str(judgements), str(products))}
    assert sorted(sets) == ["es", "us"]
    assert sets["us"].corpus == {"a": "Red shoe leather", "b": "Blue mug", "d": "Green hat"}  # unjudged d too
    assert sets["us"].gains == {"red shoes": {"a": 1.0, "b": 0.0}}
    rows.append({"query": "hat", "product_id": "zz", "esci_label": "E", "product_locale": "us"})
    judgements.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(EvaluationDataError, match="product 'zz'"):
        load_retrieval_sets(str(judgements), str(products))


def test_command_on_the_bundled_sample_and_the_card(tmp_path, capsys):
    from model_cards.card import render_model_card

    torch.manual_seed(0)
    folder = tmp_path / "model"
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval().save_pretrained(folder)
    out = tmp_path / "retrieval.json"
    assert main(["eval", "retrieval", "--model", str(folder), "--judgements", str(ESCI / "test-sample.parquet"),
                 "--products", str(ESCI / "sample-products.jsonl"), "--output", str(out)]) == 0
    assert "us ndcg@10" in capsys.readouterr().out
    results = {r.metric: r for r in read_results(out)}
    assert sorted(results) == ["map@100", "mrr@10", "ndcg@10", "recall@100"]
    assert all(r.task == ESCI_RETRIEVAL and r.settings["locale"] == "us" for r in results.values())
    assert results["recall@100"].value == 1.0  # 16 products: every Exact one is in the top 100
    assert (results["ndcg@10"].settings["corpus"], results["ndcg@10"].settings["judgements"]) == (16, 16)
    readme = render_model_card(folder, [out]).read_text()
    assert "Product search retrieval (x100)" in readme and f"{results['ndcg@10'].value * 100:.1f}" in readme


def test_chunked_top_hits_give_the_full_matrix_metrics():
    from evaluation.retrieval import metrics_from_hits, top_hits

    rng = np.random.default_rng(0)
    queries, corpus = rng.normal(size=(9, 8)), rng.normal(size=(40, 8))
    query_ids, corpus_ids = [f"q{i}" for i in range(9)], [f"p{i:02d}" for i in range(40)]
    gains = {q: {corpus_ids[j]: ESCI_GAINS["ESCI"[(i + j) % 4]] for j in rng.choice(40, 6, replace=False)}
             for i, q in enumerate(query_ids)}
    expected = retrieval_metrics(queries @ corpus.T, query_ids, corpus_ids, gains, 1.0, recall_k=5, map_k=5)
    hits = top_hits(queries, corpus, query_ids, corpus_ids, k=10, query_chunk=4, corpus_chunk=7)
    assert [c for c, _ in hits["q0"]] == [corpus_ids[j] for j in np.argsort(-(corpus @ queries[0]))[:10]]
    position = {c: i for i, c in enumerate(corpus_ids)}
    judged = {q: {c: float(queries[r] @ corpus[position[c]]) for c in gains[q]} for r, q in enumerate(query_ids)}
    chunked = metrics_from_hits(hits, judged, gains, 1.0, recall_k=5, map_k=5)
    assert chunked == pytest.approx(expected) and expected["queries_graded"] == 9


def test_int8_quality_is_measured_and_the_card_shows_it(tmp_path):
    """`--quantize int8` records nDCG@10 of the int8 model beside float32's and the cosine of its vectors to
    float32's; the card renders both numbers from the results file (and keeps them out of the Hub metadata)."""
    from model_cards.card import render_model_card

    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval()
    with torch.no_grad():  # layers that matter, so int8 is another computation (not the embedding lookup alone)
        for layer in model.model.layers:
            for linear in (layer.attn.Wqkv, layer.attn.Wo, layer.mlp.Wi, layer.mlp.Wo):
                linear.weight.mul_(10)
    folder = tmp_path / "model"
    model.save_pretrained(folder)
    out = tmp_path / "retrieval.json"
    assert main(["eval", "retrieval", "--model", str(folder), "--judgements", str(ESCI / "test-sample.parquet"),
                 "--products", str(ESCI / "sample-products.jsonl"), "--quantize", "int8", "--output", str(out)]) == 0
    results = read_results(out)
    fp32 = {r.metric: r.value for r in results if r.task == ESCI_RETRIEVAL}
    int8 = {r.metric: r for r in results if r.task == ESCI_RETRIEVAL_INT8}
    assert sorted(int8) == ["cosine_mean", "cosine_min", "ndcg@10", "ndcg@10_float32"]
    assert int8["ndcg@10_float32"].value == fp32["ndcg@10"]
    assert 0.99 <= int8["cosine_min"].value <= int8["cosine_mean"].value < 1.0
    assert int8["cosine_min"].settings["texts"] == 17  # 1 query + 16 products
    readme = render_model_card(folder, [out]).read_text()
    head, body = readme.split("\n---\n", 1)
    assert "Quantized embeddings (`rexbert embed --quantize int8`" in body
    row = next(line for line in body.splitlines() if line.startswith("| model | us |"))
    assert f"{int8['cosine_min'].value:.4f} / {int8['cosine_mean'].value:.4f}" in row
    assert f"| {fp32['ndcg@10'] * 100:.2f} | {int8['ndcg@10'].value * 100:.2f} |" in row
    assert "cosine" not in head  # model-index metadata carries the float32 scores only
