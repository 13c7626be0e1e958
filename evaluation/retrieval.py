"""Product search: embed queries and a product corpus with the model as published (no fine-tuning), rank the
corpus by cosine for every query, and score the ranking against graded judgements in the ESCI schema, per
locale: nDCG@10 (graded), MRR@10, Recall@100 and MAP@100 (binary).

Judgements: rows of (query, product_id, esci_label E/S/C/I or Exact/... , or a numeric `grade`), with
`product_locale` where there are several locales and `query_id` where query texts repeat; products: a file
with `product_id` and text columns (ESCI's Vespa feed with `fields.*` works as is). The corpus of a locale is
every product of that locale in the products file, judged or not.

Gains: ESCI labels get the gains of the ESCI ranking task (Reddy et al., 2022; KDD Cup 2022 task 1): E 1.0,
S 0.1, C 0.01, I 0.0; a numeric grade is its own gain. nDCG@10 uses the gains (scikit-learn's `ndcg_score`,
unjudged products gain 0); MRR, Recall and MAP count a product relevant when its gain is at least
`min_relevant_gain` (default: Exact only, or any positive grade) and are sentence-transformers'
`InformationRetrievalEvaluator.compute_metrics` on the ranking computed here (its own nDCG is binary).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .data import EvaluationDataError, load_split, product_text
from .results import ESCI_RETRIEVAL, ESCI_RETRIEVAL_INT8, EvalResult

ESCI_GAINS = {"E": 1.0, "S": 0.1, "C": 0.01, "I": 0.0}
LABEL_WORDS = {"exact": "E", "substitute": "S", "complement": "C", "irrelevant": "I"}
PRODUCT_FIELDS = ("product_title", "product_description")
VESPA_COLUMNS = {"fields.id": "product_id", "fields.title": "product_title",
                 "fields.description": "product_description", "fields.locale": "product_locale"}


@dataclass
class RetrievalSet:
    """One locale's queries, corpus and judgements (gains by query id and product id)."""

    locale: str
    queries: dict[str, str]
    corpus: dict[str, str]
    gains: dict[str, dict[str, float]]
    min_relevant_gain: float


def label_gain(label: object) -> float:
    key = LABEL_WORDS.get(str(label).strip().lower(), str(label).strip().upper())
    if key not in ESCI_GAINS:
        raise EvaluationDataError(f"unknown esci_label {label!r}; expected E/S/C/I or Exact/Substitute/"
                                  "Complement/Irrelevant, or give a numeric 'grade' column.")
    return ESCI_GAINS[key]


def load_retrieval_sets(judgements: str, products: str, product_columns: Sequence[str] = PRODUCT_FIELDS,
                        split: str | None = "test", query_column: str = "query",
                        min_relevant_gain: float | None = None, locales: Sequence[str] | None = None
                        ) -> list[RetrievalSet]:
    """Per-locale retrieval sets from a judgements file and a products file (`split`: keep the rows of that
    split when the judgements have a `split` column)."""
    data = load_split(judgements)
    if split and "split" in data.column_names:
        data = data.filter(lambda row: row["split"] == split)
    for name in (query_column, "product_id"):
        if name not in data.column_names:
            raise EvaluationDataError(f"{judgements}: column {name!r} not found; available: {data.column_names}.")
    if "grade" in data.column_names:
        gains = [float(g) for g in data["grade"]]
        numeric = True
    elif "esci_label" in data.column_names:
        gains = [label_gain(label) for label in data["esci_label"]]
        numeric = False
    else:
        raise EvaluationDataError(f"{judgements}: judgements need an 'esci_label' (E/S/C/I) or a numeric 'grade'.")
    if min_relevant_gain is None:
        min_relevant_gain = np.nextafter(0.0, 1.0) if numeric else ESCI_GAINS["E"]
    catalog = load_split(products)
    catalog = catalog.rename_columns({k: v for k, v in VESPA_COLUMNS.items() if k in catalog.column_names})
    absent = [c for c in ("product_id", *product_columns) if c not in catalog.column_names]
    if absent:
        raise EvaluationDataError(f"{products}: column {absent[0]!r} not found; available: {catalog.column_names} "
                                  "(choose with --product-columns).")
    product_locale = catalog["product_locale"] if "product_locale" in catalog.column_names else [None] * len(catalog)
    texts = {}
    by_locale: dict[str | None, set[str]] = defaultdict(set)
    for row, locale in zip(catalog, product_locale):
        pid = str(row["product_id"])
        texts[pid] = product_text(row[c] for c in product_columns)
        by_locale[locale].add(pid)
    query_ids = data["query_id"] if "query_id" in data.column_names else data[query_column]
    judged_locale = data["product_locale"] if "product_locale" in data.column_names else [None] * len(data)
    sets: dict[str, RetrievalSet] = {}
    for query, qid, pid, gain, locale in zip(data[query_column], query_ids, data["product_id"], gains, judged_locale):
        pid, qid, name = str(pid), str(qid), locale or "all"
        if pid not in texts:
            raise EvaluationDataError(f"{judgements}: product {pid!r} (query {query!r}) is not in {products}.")
        if locales and name not in locales:
            continue
        if name not in sets:
            corpus_ids = by_locale.get(locale) if locale in by_locale else set(texts)
            sets[name] = RetrievalSet(name, {}, {p: texts[p] for p in sorted(corpus_ids)}, {}, min_relevant_gain)
        sets[name].queries[qid] = query
        sets[name].gains.setdefault(qid, {})[pid] = gain
        sets[name].corpus.setdefault(pid, texts[pid])  # a judged product listed under another locale
    if not sets:
        raise EvaluationDataError(f"{judgements}: no judgements left (split {split!r}, locales {locales}).")
    return [sets[name] for name in sorted(sets)]


Hits = dict[str, list[tuple[str, float]]]  # query id -> (corpus id, score), best first


def top_hits(queries: np.ndarray, corpus: np.ndarray, query_ids: Sequence[str], corpus_ids: Sequence[str], k: int,
             query_chunk: int = 256, corpus_chunk: int = 50_000) -> Hits:
    """The `k` best products of each query by dot product (cosine of normalised vectors), computed a block of
    queries against a block of the corpus at a time (never the whole queries x corpus matrix); ties are
    ordered by corpus id, as sentence-transformers orders them."""
    import torch

    corpus_t = torch.from_numpy(np.ascontiguousarray(corpus, dtype=np.float32))
    hits: Hits = {}
    for q_start in range(0, len(query_ids), query_chunk):
        block = torch.from_numpy(np.ascontiguousarray(queries[q_start:q_start + query_chunk], dtype=np.float32))
        best_scores = best_index = None
        for c_start in range(0, len(corpus_ids), corpus_chunk):
            scores = block @ corpus_t[c_start:c_start + corpus_chunk].T
            values, index = scores.topk(min(k, scores.shape[1]), dim=1)
            index = index + c_start
            if best_scores is not None:
                values, index = torch.cat([best_scores, values], 1), torch.cat([best_index, index], 1)
                values, keep = values.topk(min(k, values.shape[1]), dim=1)
                index = index.gather(1, keep)
            best_scores, best_index = values, index
        for row, (values, index) in enumerate(zip(best_scores.tolist(), best_index.tolist())):
            ranked = sorted(zip(index, values), key=lambda hit: (-hit[1], corpus_ids[hit[0]]))
            hits[query_ids[q_start + row]] = [(corpus_ids[i], score) for i, score in ranked]
    return hits


def metrics_from_hits(hits: Hits, judged_scores: dict[str, dict[str, float]], gains: dict[str, dict[str, float]],
                      min_relevant_gain: float, ndcg_k: int = 10, mrr_k: int = 10, recall_k: int = 100,
                      map_k: int = 100) -> dict[str, float]:
    """Metrics of a ranking given as each query's top hits (at least max(k) of them, or the whole corpus) and
    the scores of its judged products. nDCG over queries with a positive gain: scikit-learn's `ndcg_score` on
    the hits and the judged products (an unjudged product gains 0, so the rest of the corpus changes nothing);
    MRR, Recall and MAP over queries with a relevant product, by sentence-transformers' evaluator."""
    from sentence_transformers.sentence_transformer.evaluation import InformationRetrievalEvaluator
    from sklearn.metrics import ndcg_score

    query_ids = list(hits)
    relevant = {q: {p for p, g in gains.get(q, {}).items() if g >= min_relevant_gain} for q in query_ids}
    with_relevant = [q for q in query_ids if relevant[q]]
    corpus_ids = sorted({c for q in query_ids for c, _ in hits[q]})
    evaluator = InformationRetrievalEvaluator(
        queries={q: q for q in with_relevant}, corpus={c: c for c in corpus_ids}, relevant_docs=relevant,
        mrr_at_k=[mrr_k], ndcg_at_k=[ndcg_k], accuracy_at_k=[1], precision_recall_at_k=[recall_k],
        map_at_k=[map_k], write_csv=False)
    out = {}
    if with_relevant:
        binary = evaluator.compute_metrics([[{"corpus_id": c, "score": s} for c, s in hits[q]] for q in with_relevant])
        out |= {f"mrr@{mrr_k}": binary["mrr@k"][mrr_k], f"recall@{recall_k}": binary["recall@k"][recall_k],
                f"map@{map_k}": binary["map@k"][map_k]}
    graded = []
    for q in query_ids:
        if any(g > 0 for g in gains.get(q, {}).values()):
            candidates = dict(hits[q]) | judged_scores.get(q, {})
            true = [gains[q].get(c, 0.0) for c in candidates]
            graded.append(ndcg_score([true], [list(candidates.values())], k=ndcg_k))
    if graded:
        out[f"ndcg@{ndcg_k}"] = float(np.mean(graded))
    out["queries_graded"], out["queries_with_relevant"] = len(graded), len(with_relevant)
    return out


def retrieval_metrics(scores: np.ndarray, query_ids: Sequence[str], corpus_ids: Sequence[str],
                      gains: dict[str, dict[str, float]], min_relevant_gain: float, ndcg_k: int = 10,
                      mrr_k: int = 10, recall_k: int = 100, map_k: int = 100) -> dict[str, float]:
    """`metrics_from_hits` of a full score matrix (queries x corpus, higher first; ties by corpus id)."""
    ks = dict(ndcg_k=ndcg_k, mrr_k=mrr_k, recall_k=recall_k, map_k=map_k)
    hits: Hits = {}
    for row, q in enumerate(query_ids):
        ranked = sorted(range(len(corpus_ids)), key=lambda c: (-scores[row, c], corpus_ids[c]))[:max(ks.values())]
        hits[q] = [(corpus_ids[c], float(scores[row, c])) for c in ranked]
    position = {c: i for i, c in enumerate(corpus_ids)}
    judged = {q: {c: float(scores[row, position[c]]) for c in gains.get(q, {})} for row, q in enumerate(query_ids)}
    return metrics_from_hits(hits, judged, gains, min_relevant_gain, **ks)


def evaluate_retrieval(model_name: str, sets: list[RetrievalSet], dataset_name: str, batch_size: int = 32,
                       max_length: int | None = None, device: str | None = None,
                       trust_remote_code: bool = False, quantize: str | None = None) -> list[EvalResult]:
    """Embeds every set's queries (with the folder's `query` prompt, if it has one) and corpus (its `document`
    prompt) with `evaluation.embedding` and scores the cosine ranking; one result per locale and metric.
    `quantize="int8"`: also the same with `rexbert embed --quantize int8`'s model (`quantize_int8`, CPU), as
    `esci-retrieval-int8` results: its nDCG@10 beside float32's and the cosine of its vectors to float32's."""
    from pathlib import Path

    from .embedding import EncodeStats, encode, load_encoder, quantize_int8, read_sentence_settings

    model, tokenizer = load_encoder(model_name, "cpu" if quantize else device, trust_remote_code)
    quantized = quantize_int8(model) if quantize == "int8" else None
    sentence = read_sentence_settings(model_name) if Path(model_name).is_dir() else None
    prompts = (sentence.prompts if sentence else None) or {}
    pooling = sentence.pooling if sentence else "mean"
    max_length = max_length or (sentence.max_length if sentence else None)
    results = []
    for subset in sets:
        query_ids, corpus_ids = list(subset.queries), list(subset.corpus)
        stats = EncodeStats()

        def score(encoder, subset=subset, query_ids=query_ids, corpus_ids=corpus_ids, stats=stats):
            def embed(texts, prompt):
                return encode(encoder, tokenizer, texts, batch_size, max_length=max_length, pooling=pooling,
                              normalize=True, prompt=prompt or None, stats=stats)

            queries = embed([subset.queries[q] for q in query_ids], prompts.get("query"))
            corpus = embed([subset.corpus[c] for c in corpus_ids], prompts.get("document"))
            hits = top_hits(queries, corpus, query_ids, corpus_ids, k=100)
            position = {c: i for i, c in enumerate(corpus_ids)}
            judged = {q: {c: float(queries[row] @ corpus[position[c]]) for c in subset.gains.get(q, {})}
                      for row, q in enumerate(query_ids)}
            metrics = metrics_from_hits(hits, judged, subset.gains, subset.min_relevant_gain)
            return metrics, np.concatenate([queries, corpus])

        metrics, vectors = score(model)
        settings = {"locale": subset.locale, "queries": len(query_ids), "corpus": len(corpus_ids),
                    "judgements": sum(len(g) for g in subset.gains.values()),
                    "queries_graded": metrics.pop("queries_graded"),
                    "queries_with_relevant": metrics.pop("queries_with_relevant"),
                    "min_relevant_gain": float(subset.min_relevant_gain), "truncated_texts": stats.truncated,
                    "max_length": stats.max_length, "gains": "ESCI E=1.0 S=0.1 C=0.01 I=0 (or the numeric grade)"}
        results += [EvalResult(model=model_name, task=ESCI_RETRIEVAL, dataset=dataset_name, split="test",
                               metric=name, value=value, settings=settings) for name, value in metrics.items()]
        if quantized is not None:
            int8_metrics, int8_vectors = score(quantized)
            cosine = (vectors * int8_vectors).sum(1)  # both normalised
            compared = {"ndcg@10": int8_metrics.get("ndcg@10", float("nan")),
                        "ndcg@10_float32": metrics.get("ndcg@10", float("nan")),
                        "cosine_min": float(cosine.min()), "cosine_mean": float(cosine.mean())}
            int8_settings = settings | {"quantize": "int8", "quantizer": "torch dynamic int8 linear layers "
                                        "(rexbert embed --quantize int8)", "texts": len(cosine)}
            results += [EvalResult(model=model_name, task=ESCI_RETRIEVAL_INT8, dataset=dataset_name, split="test",
                                   metric=name, value=value, settings=int8_settings) for name, value in compared.items()]
    return results
