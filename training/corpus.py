"""A phase's sources, tokenized once and packed into training and held-out rows.

Tokenized shards are cached under `<output root>/tokens/<source>-<key>/`, shared by every phase
that reads the same source, and resumable. Each source holds out `eval_documents` documents, chosen
by a seed alone (`data.heldout_seed`, else the run seed) so that all phases score the same held-out text.
A phase run writes them to `<run folder>/heldout/<source>.jsonl` (`write_heldout`): the file that
evaluations outside the loop read. `source_texts` gives a source's training and held-out text before
the phase runs (to mine spans from the training side).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rexbert.core.outputs import atomic_open

from .config import PhaseConfig, SourceConfig
from .packing import PackedRows
from .shards import ShardedCorpus, ShardError, finished_manifest
from .source_shards import (
    cache_folder,
    check_set_aside,
    ensure_shards,
    set_aside_summary,
    tokenize_command,
)

__all__ = ["cache_folder", "heldout_documents", "prepare_sources", "source_texts", "write_heldout"]

HELDOUT_STREAM = 3
HELDOUT_FOLDER = "heldout"  # in a phase's run folder: <source>.jsonl, one {"text": ...} per held-out document


@dataclass
class SourceRows:
    name: str
    train: PackedRows
    heldout: PackedRows
    heldout_documents: np.ndarray  # ids in the source's token cache
    skipped: dict  # documents set aside while reading, by reason


def heldout_documents(count: int, wanted: int, seed: int) -> np.ndarray:
    """Up to `wanted` document ids (never more than a tenth of the source), a pure function of the seed."""
    take = min(wanted, count // 10)
    return np.sort(np.random.default_rng([seed, HELDOUT_STREAM]).permutation(count)[:take])


def open_source(config: PhaseConfig, source: SourceConfig, tokenizer, root: Path, progress: bool = False,
                announce: bool = False, checked: bool = False) -> tuple[ShardedCorpus, dict]:
    """The source's memory-mapped shards and manifest, tokenizing it first when it is small and local
    (one tokenization of a source, whoever asks: training, span mining, evaluation; `checked`: the caller
    ran `ensure_shards` already). Sums up what was set aside (with `announce`) and stops above
    `data.max_skipped_share`."""
    if not checked:
        ensure_shards([config], root, tokenizer, config.source_file, progress, only=source)
    folder = cache_folder(root, config, source)
    try:
        corpus, manifest = ShardedCorpus(folder), finished_manifest(folder)
    except ShardError as error:
        raise ShardError(f"source {source.name!r}: {error}; rebuild it with: "
                         f"{tokenize_command(config.source_file, root)} (finished shards are kept)") from None
    summary = set_aside_summary(source.name, manifest)
    if announce and summary:
        print(summary, flush=True)
    allowed = max(config.data.max_skipped_share, manifest.get("max_skipped_share", 0))  # or what tokenize allowed
    check_set_aside(source.name, manifest, allowed)
    if len(corpus) == 0:
        raise ValueError(f"source {source.name!r} ({config.source_path(source)}) has no usable documents; "
                         f"set aside: {manifest['skipped'] or 'none'}.")
    return corpus, manifest


def prepare_sources(config: PhaseConfig, tokenizer, root: Path, progress: bool = True,
                    announce: bool = True) -> list[SourceRows]:
    prepared = []
    length = config.data.sequence_length
    # every source at once: the small local ones are built first, so that the others are checked against
    # the shares they get once those sizes are known (data.max_passes)
    ensure_shards([config], root, tokenizer, config.source_file, progress)
    for source in config.data.sources:
        corpus, manifest = open_source(config, source, tokenizer, root, progress, announce, checked=True)
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
    corpus, _ = open_source(config, source, tokenizer, root, progress)
    heldout = set(heldout_documents(len(corpus), config.data.eval_documents, config.heldout_seed).tolist())
    texts: tuple[list[str], list[str]] = ([], [])
    for i in range(len(corpus)):
        texts[i in heldout].append(tokenizer.decode(corpus.document(i)))
    return texts
