"""Distillation: one fastText classifier per domain trained on the LLM labels, validated on held-out
labels, with the threshold that reaches a target precision (paper §3)."""

from __future__ import annotations

import json
import os
import tempfile
import time

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, precision_recall_fscore_support
from sklearn.model_selection import train_test_split

from .classifier import (NEGATIVE, POSITIVE, Classifier, classifier_paths, fasttext_text,
                         train_supervised_in_fresh_process)
from .config import DistillConfig
from .plots import pr_curve_png, score_histogram_png


def choose_threshold(labels, scores, target_precision: float) -> tuple[float, bool]:
    """The threshold of most recall among those whose precision on held-out labels is >= target, and of
    those the highest (so no negative is kept that costs no recall to drop); when none reaches the
    target, the threshold of highest precision, flagged as not met."""
    precision, recall, thresholds = precision_recall_curve(labels, scores)
    # precision[i], recall[i] are those of "score >= thresholds[i]" (thresholds ascending); the last point has none
    ok = np.nonzero(precision[:-1] >= target_precision)[0]
    if len(ok):
        most_recall = ok[recall[ok] == recall[ok].max()]
        return float(thresholds[most_recall[-1]]), True
    return float(thresholds[int(np.argmax(precision[:-1]))]), False


NAN_RETRIES = 3  # fastText's SGD can diverge ("Encountered NaN"): retrain with half the learning rate


def train_fasttext(train_file: str, cfg: DistillConfig, domain: str):
    """(model, learning rate used): `cfg.lr`, halved after each diverged attempt, which is logged."""
    lr = cfg.lr
    for attempt in range(NAN_RETRIES + 1):
        try:
            # thread=1: fastText's hogwild SGD is only reproducible on one thread
            params = dict(epoch=cfg.epoch, lr=lr, wordNgrams=cfg.word_ngrams, dim=cfg.dim, minCount=cfg.min_count,
                          bucket=cfg.bucket, seed=cfg.seed, thread=1, verbose=0)
            return train_supervised_in_fresh_process(train_file, params), lr
        except RuntimeError as error:
            if "NaN" not in str(error) or attempt == NAN_RETRIES:
                raise RuntimeError(f"domain {domain!r}: fastText training diverged at lr {lr:g} ({error}); "
                                   "lower distill.lr") from None
            print(f"distill {domain}: fastText diverged at lr {lr:g}; retraining at {lr / 2:g}", flush=True)
            lr /= 2


def train_domain(domain: str, rows: list[dict], cfg: DistillConfig, out_dir: str) -> dict:
    """Trains, validates and saves `<domain>.bin` + `<domain>.json` (+ PR curve and histogram PNGs)."""
    labels = np.array([int(r["label"]) for r in rows])
    counts = {int(k): int(v) for k, v in zip(*np.unique(labels, return_counts=True))}
    if len(counts) < 2 or min(counts.values()) < 2:
        raise ValueError(f"domain {domain!r}: need at least 2 labels of each class to train and validate, got "
                         f"{counts.get(1, 0)} relevant / {counts.get(0, 0)} not relevant")
    train, val = train_test_split(rows, test_size=cfg.validation_fraction, random_state=cfg.seed,
                                  stratify=labels)
    os.makedirs(out_dir, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        for r in train:
            f.write(f"{POSITIVE if int(r['label']) else NEGATIVE} {fasttext_text(r['text'])}\n")
        train_file = f.name
    try:
        model, lr = train_fasttext(train_file, cfg, domain)
    finally:
        os.unlink(train_file)
    y_val = [int(r["label"]) for r in val]
    scorer = Classifier(domain, model, 0.5, {})
    scores = [scorer.score(r["text"]) for r in val]
    threshold, met = choose_threshold(y_val, scores, cfg.target_precision)
    predicted = [int(s >= threshold) for s in scores]
    p, r, f1, _ = precision_recall_fscore_support(y_val, predicted, average="binary", zero_division=0)
    precision_curve, recall_curve, thresholds = precision_recall_curve(y_val, scores)
    bin_path, meta_path = classifier_paths(out_dir, domain)
    model.save_model(bin_path)
    pr_curve_png(os.path.join(out_dir, f"{domain}_pr_curve.png"), precision_curve, recall_curve, thresholds, threshold,
                 f"{domain}: held-out PR (AP {average_precision_score(y_val, scores):.2f})")
    score_histogram_png(os.path.join(out_dir, f"{domain}_scores.png"), scores, y_val, threshold,
                        f"{domain}: held-out scores")
    metadata = {
        "domain": domain,
        "threshold": threshold,
        "target_precision": cfg.target_precision,
        "target_met": met,
        "validation": {"n": len(val), "precision": float(p), "recall": float(r), "f1": float(f1),
                       "average_precision": float(average_precision_score(y_val, scores)),
                       "positives": int(sum(y_val))},
        "n_train": len(train),
        "label_counts": {"relevant": counts.get(1, 0), "not_relevant": counts.get(0, 0)},
        "labeler": rows[0].get("labeler"),
        "prompt_version": rows[0].get("prompt_version"),
        "hyperparameters": {"epoch": cfg.epoch, "lr": lr, "wordNgrams": cfg.word_ngrams, "dim": cfg.dim,
                            "minCount": cfg.min_count, "bucket": cfg.bucket,
                            "seed": cfg.seed},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    with open(meta_path, "w", encoding="utf-8") as f:
        json.dump(metadata, f, indent=2)
    return metadata


def distill(labels_path: str, out_dir: str, cfg: DistillConfig, domains: list[str], progress: bool = True) -> dict:
    """One classifier per domain in `domains` that has labels; returns domain -> metadata."""
    from tqdm.auto import tqdm

    from .sampling import read_jsonl

    rows = read_jsonl(labels_path)
    by_domain: dict[str, list[dict]] = {}
    for row in rows:
        by_domain.setdefault(row["domain"], []).append(row)
    missing = [d for d in domains if d not in by_domain]
    if missing:
        raise ValueError(f"no labels for domain(s) {', '.join(missing)} in {labels_path}")
    return {d: train_domain(d, by_domain[d], cfg, out_dir)
            for d in tqdm(domains, desc="distill", unit="domain", disable=not progress)}
