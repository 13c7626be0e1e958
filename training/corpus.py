"""A phase's sources, tokenized once and packed into training and held-out rows.

Tokenized shards are cached under `<output root>/tokens/<source>-<key>/`, shared by every phase
that reads the same source, and resumable. Each source holds out `eval_documents` documents, chosen
by a seed alone (`data.heldout_seed`, else the run seed) so that all phases score the same held-out text.
A phase run writes them to `<run folder>/heldout/<source>.jsonl` (`write_heldout`): the file that
evaluations outside the loop read. `source_texts` gives a source's training and held-out text before
the phase runs (to mine spans from the training side).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rexbert.core.outputs import atomic_open

from .config import PhaseConfig, SourceConfig
from .packing import PackedRows
from .shards import ShardedCorpus, tokenize_to_shards

HELDOUT_STREAM = 3
HELDOUT_FOLDER = "heldout"  # in a phase's run folder: <source>.jsonl, one {"text": ...} per held-out document


@dataclass
class SourceRows:
    name: str
    train: PackedRows
    heldout: PackedRows
    heldout_documents: np.ndarray  # ids in the source's token cache
    skipped: dict  # documents set aside while reading, by reason


def cache_folder(root: Path, config: PhaseConfig, source: SourceConfig) -> Path:
    parts = [config.source_path(source), source.split, source.text_column]
    key = json.dumps(parts + [source.config] if source.config is not None else parts)  # old caches keep their key
    return root / "tokens" / f"{source.name}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def heldout_documents(count: int, wanted: int, seed: int) -> np.ndarray:
    """Up to `wanted` document ids (never more than a tenth of the source), a pure function of the seed."""
    take = min(wanted, count // 10)
    return np.sort(np.random.default_rng([seed, HELDOUT_STREAM]).permutation(count)[:take])


def prepare_sources(config: PhaseConfig, tokenizer, root: Path, progress: bool = True) -> list[SourceRows]:
    prepared = []
    length = config.data.sequence_length
    for source in config.data.sources:
        folder = cache_folder(root, config, source)
        path = config.source_path(source)
        if source.dataset is None and not Path(path).exists():
            raise FileNotFoundError(f"source {source.name!r}: {path} does not exist.")
        manifest = tokenize_to_shards(path, tokenizer, folder, text_column=source.text_column, split=source.split,
                                      config=source.config, progress=progress)
        corpus = ShardedCorpus(folder)
        if len(corpus) == 0:
            raise ValueError(f"source {source.name!r} ({path}) has no usable documents; "
                             f"set aside: {manifest['skipped'] or 'none'}.")
        heldout = heldout_documents(len(corpus), config.data.eval_documents, config.heldout_seed)
        train = np.setdiff1d(np.arange(len(corpus)), heldout)
        prepared.append(SourceRows(
            source.name,
            PackedRows(corpus, length, tokenizer.cls_token_id, tokenizer.sep_token_id, train),
            PackedRows(corpus, length, tokenizer.cls_token_id, tokenizer.sep_token_id, heldout),
            heldout, manifest["skipped"]))
    return prepared


def write_heldout(sources: list[SourceRows], tokenizer, folder: Path) -> None:
    """`folder/<source>.jsonl` per source: its held-out documents as `{"text": ...}` lines, decoded from
    the token cache, so they are exactly the text the loop scores and never trains on."""
    for source in sources:
        with atomic_open(folder / f"{source.name}.jsonl") as handle:
            for i in source.heldout_documents:
                handle.write(json.dumps({"text": tokenizer.decode(source.heldout.corpus.document(i))}) + "\n")


def source_texts(config: PhaseConfig, tokenizer, root: Path, name: str, progress: bool = False) -> tuple[list[str], list[str]]:
    """(training documents, held-out documents) of the phase's source `name`, as text decoded from the
    token cache (tokenizing first if needed), so they are exactly the documents the loop trains on and
    never trains on: what an evaluation or a span miner outside the loop should read."""
    source = next((s for s in config.data.sources if s.name == name), None)
    if source is None:
        raise ValueError(f"{config.name} has no source {name!r}; sources are {[s.name for s in config.data.sources]}.")
    folder = cache_folder(root, config, source)
    tokenize_to_shards(config.source_path(source), tokenizer, folder, text_column=source.text_column,
                       split=source.split, progress=progress)
    corpus = ShardedCorpus(folder)
    heldout = set(heldout_documents(len(corpus), config.data.eval_documents, config.heldout_seed).tolist())
    texts: tuple[list[str], list[str]] = ([], [])
    for i in range(len(corpus)):
        texts[i in heldout].append(tokenizer.decode(corpus.document(i)))
    return texts
