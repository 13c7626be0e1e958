"""MinHash near-dedup with datatrove's four stages (signature -> buckets -> cluster -> filter).

The only change from stock: signatures tokenize with the regex word tokenizer (text is English by
then, and `simplify_text` has already removed punctuation and case), instead of spaCy's.
"""

from __future__ import annotations

from datatrove.pipeline.dedup import (
    MinhashConfig,
    MinhashDedupBuckets,
    MinhashDedupCluster,
    MinhashDedupFilter,
    MinhashDedupSignature,
)
from datatrove.utils.hashing import HashConfig

from .config import DedupConfig
from .filters.quality import RegexWordTokenizer


def minhash_config(cfg: DedupConfig) -> MinhashConfig:
    # 64-bit hashes: fewer false collisions at web scale (datatrove's recommendation)
    return MinhashConfig(n_grams=cfg.n_grams, num_buckets=cfg.num_buckets, hashes_per_bucket=cfg.hashes_per_bucket,
                         seed=cfg.seed, hash_config=HashConfig(precision=64))


def signature_step(folder: str, cfg: DedupConfig) -> MinhashDedupSignature:
    return MinhashDedupSignature(output_folder=f"{folder}/signatures", config=minhash_config(cfg),
                                 language=RegexWordTokenizer())


def buckets_step(folder: str, cfg: DedupConfig) -> MinhashDedupBuckets:
    return MinhashDedupBuckets(input_folder=f"{folder}/signatures", output_folder=f"{folder}/buckets",
                               config=minhash_config(cfg))


def cluster_step(folder: str, cfg: DedupConfig) -> MinhashDedupCluster:
    return MinhashDedupCluster(input_folder=f"{folder}/buckets", output_folder=f"{folder}/remove_ids",
                               config=minhash_config(cfg))


def filter_step(folder: str, exclusion_writer=None) -> MinhashDedupFilter:
    return MinhashDedupFilter(input_folder=f"{folder}/remove_ids", exclusion_writer=exclusion_writer)
