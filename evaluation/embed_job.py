"""`rexbert embed`: ids and embeddings of every row of a catalog (jsonl, parquet or csv files), in Parquet.

The input is read as a stream (`rexbert.core.documents`) and cut into chunks of `chunk_rows` input rows; each
chunk is encoded (`evaluation.embedding`: length-sorted batches, the unpadded path) and written as its own part,
`<output>.parts/chunk-NNNNNN.parquet`, under a temporary name renamed into place. A rerun after an interruption
finds the parts already there and encodes only the missing chunks; `combine` then writes `<output>` from the
parts in input order, so an interrupted-and-resumed run gives the same file as an uninterrupted one.
Sharding (`--executor local|slurm|ray`, `tasks` ranks) gives each rank a contiguous run of chunks
(`shard_chunks`): the same parts whatever runs them, and each rank opens only the input files that hold its rows
(the manifest records every file's row count). Only one chunk is held in memory at a time, so a catalog larger
than memory works. The text of a row is `rexbert.core.html_text.product_text` of its text columns (HTML dropped,
whitespace collapsed), the same function `rexbert eval retrieval` uses. `quantize="int8"` (CPU): dynamic int8
linear layers, quantized once per process (`evaluation.embedding.quantize_int8`).

Rows that cannot be embedded (bad JSON or CSV, no text in the text columns, no id) are counted and set aside
in `<output>.rejects.jsonl` with file, line and reason. Rows longer than the model's `max_seq_length` are
counted and cut to it (the summary says how many); nothing is cut silently.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rexbert.core.documents import Record, Reject, field_value, read_file
from rexbert.core.fingerprint import source_fingerprint
from rexbert.core.html_text import product_text
from rexbert.core.outputs import atomic_open, temporary_name, writing

from .cpu_runtime import usable_cores
from .embedding import QUANTIZE_MODES, EncodeStats, encode, load_encoder, read_sentence_settings

INPUT_SUFFIXES = (".jsonl", ".jsonl.gz", ".jsonl.zst", ".json", ".parquet", ".csv", ".csv.gz", ".csv.zst")
MANIFEST = "manifest.json"
DTYPES = ("float32", "float16")
TEXT_PREPARATION = "rexbert.core.html_text.product_text"  # in the manifest: parts made with other text are not mixed


class EmbedInputError(ValueError):
    """The input or the settings cannot give a result (no input files, settings changed under a resume)."""


@dataclass
class EmbedSettings:
    """Everything that decides the output; a resume must use the same (checked against the manifest)."""

    model: str
    input: str
    output: str
    text_columns: tuple[str, ...] = ("title", "description")
    id_column: str = "id"
    prompt: str | None = None  # a prompt name in the folder's config (e.g. "query") or the literal text
    dtype: str = "float32"
    normalize: bool = False
    batch_size: int = 32
    chunk_rows: int = 10_000
    max_length: int | None = None  # default: the folder's max_seq_length, else the model's positions
    device: str | None = None
    trust_remote_code: bool = False
    max_bytes: int = 1_000_000
    threads: int | None = None  # CPU threads (default: all cores); not part of the result
    quantize: str | None = None  # "int8": dynamic int8 linear layers on CPU
    # forked CPU processes of one thread each (`encode_ids(workers=)`; default: one per CPU thread of the job, as
    # many as fit in memory); not part of the result
    cpu_workers: int | None = None

    def __post_init__(self):
        self.text_columns = tuple(self.text_columns)
        if self.dtype not in DTYPES:
            raise EmbedInputError(f"dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}.")
        if self.chunk_rows < 1 or self.batch_size < 1 or (self.cpu_workers is not None and self.cpu_workers < 1):
            raise EmbedInputError("chunk_rows, batch_size and cpu_workers must be positive.")
        if not self.text_columns:
            raise EmbedInputError("name at least one text column (--text-columns).")
        if self.quantize not in (None, *QUANTIZE_MODES):
            raise EmbedInputError(f"quantize {self.quantize!r}: choose one of {', '.join(QUANTIZE_MODES)} (or none).")

    @property
    def parts(self) -> Path:
        output = Path(self.output)
        return output.with_name(output.name + ".parts")

    @property
    def rejects_file(self) -> Path:
        return Path(self.output).with_suffix(".rejects.jsonl")

    def decisive(self) -> dict:
        """The settings a resumed run must share with the run that wrote the parts."""
        keep = ("model", "text_columns", "id_column", "prompt", "dtype", "normalize", "chunk_rows", "max_length",
                "quantize")
        return {key: value for key, value in asdict(self).items() if key in keep} | {
            "text_columns": list(self.text_columns)}


def input_files(source: str) -> list[str]:
    """The input file, or the files of a folder (recursively) with a catalog suffix, sorted."""
    path = Path(source)
    if path.is_file():
        return [str(path)]
    if not path.is_dir():
        raise EmbedInputError(f"--input {source}: no such file or folder.")
    files = sorted(str(p) for p in path.rglob("*") if p.is_file() and p.name.lower().endswith(INPUT_SUFFIXES)
                   and not any(part.startswith(".") for part in p.relative_to(path).parts))
    if not files:
        raise EmbedInputError(f"--input {source}: no {', '.join(INPUT_SUFFIXES)} files in this folder.")
    return files


def read_rows(settings: EmbedSettings, files: list[str] | None = None) -> Iterator[tuple[str, str] | Reject]:
    """(id, text) for each usable input row, a `Reject` for each other, in input order. The text is
    `product_text` of the text columns (HTML dropped, whitespace collapsed), as `rexbert eval retrieval` makes it."""
    for file in files or input_files(settings.input):
        for item in read_file(file, text_key=settings.text_columns, max_bytes=settings.max_bytes):
            if isinstance(item, Record):
                row_id = field_value(item.fields, settings.id_column)
                text = product_text(field_value(item.fields, column) for column in settings.text_columns)
                if row_id is None or (isinstance(row_id, str) and not row_id.strip()):
                    item = Reject("missing_id", item.file, item.line, f"no value in column {settings.id_column!r}")
                elif not text:
                    item = Reject("empty_text", item.file, item.line, "no text left after dropping HTML")
                else:
                    item = (str(row_id), text)
            yield item


def shard_chunks(n_chunks: int, rank: int, world_size: int) -> range:
    """The chunks of rank `rank`: a contiguous run (ranks differ by at most one chunk), so a shard reads only
    the input files that hold its rows and stops after its last chunk."""
    return range(rank * n_chunks // world_size, (rank + 1) * n_chunks // world_size)


def chunks(settings: EmbedSettings, wanted: range | None = None, file_rows: list | None = None
           ) -> Iterator[tuple[int, list[tuple[str, str]], list[Reject]]]:
    """(chunk index, rows, rejects) for every `chunk_rows` input rows (usable or not): boundaries depend on
    the input and `chunk_rows` only, so every run and every shard cuts the same chunks. `wanted`: only these
    chunks; with `file_rows` ([file, rows] of every input file, from the manifest) the files that hold none of
    their rows are not opened, and reading stops after the last wanted chunk."""
    size = settings.chunk_rows
    files = [(f, None) for f in input_files(settings.input)] if file_rows is None else file_rows
    first = 0  # index of the file's first row in the whole input
    current, rows, rejects = 0, [], []
    for file, n_rows in files:
        n_read = 0
        if wanted is not None and n_rows is not None:
            if n_rows == 0 or not range(max(first // size, wanted.start),
                                        min((first + n_rows - 1) // size + 1, wanted.stop)):
                first += n_rows
                continue
        for offset, item in enumerate(read_rows(settings, [file])):
            index = (first + offset) // size
            if index != current:
                if wanted is None or current in wanted:
                    yield current, rows, rejects
                current, rows, rejects = index, [], []
                if wanted is not None and index >= wanted.stop:
                    return
            if wanted is None or index in wanted:
                (rejects if isinstance(item, Reject) else rows).append(item)
            n_read = offset + 1
        first += n_read if n_rows is None else n_rows
    if wanted is None or current in wanted:
        yield current, rows, rejects


def count_rows(settings: EmbedSettings) -> list[list]:
    """[file, input rows (usable or not)] of every input file, by reading the input once without encoding: the
    progress bar's total, and what lets each shard open only its own files."""
    return [[file, sum(1 for _ in read_rows(settings, [file]))] for file in input_files(settings.input)]


def part_path(settings: EmbedSettings, index: int) -> Path:
    return settings.parts / f"chunk-{index:06d}.parquet"


def check_manifest(settings: EmbedSettings, file_rows: list | None = None) -> dict:
    """Writes `<parts>/manifest.json` on the first run; on a resume, the same settings and input or an error."""
    manifest = {"settings": settings.decisive(), "input": source_fingerprint(settings.input), "text": TEXT_PREPARATION}
    path = settings.parts / MANIFEST
    if path.is_file():
        saved = json.loads(path.read_text())
        differs = [k for k in manifest if saved.get(k) != manifest[k]]
        if differs:
            raise EmbedInputError(
                f"{settings.parts} holds parts of a run with other {' and '.join(differs)} "
                f"({json.dumps({k: saved.get(k) for k in differs})[:300]}); delete that folder or choose another "
                "--output to start over.")
        return saved
    if file_rows is not None:
        manifest["rows"] = sum(n for _, n in file_rows)
        manifest["files"] = file_rows
    with atomic_open(path) as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def vector_table(ids: list[str], vectors: np.ndarray, dtype: str, metadata: dict):
    import pyarrow as pa

    values = pa.array(vectors.astype(dtype).reshape(-1))
    column = pa.FixedSizeListArray.from_arrays(values, vectors.shape[1]) if len(ids) else pa.array(
        [], type=pa.list_(values.type, vectors.shape[1]))
    table = pa.table({"id": pa.array(ids, type=pa.string()), "embedding": column})
    return table.replace_schema_metadata({"rexbert_embed": json.dumps(metadata)})


class ChunkEncoder:
    """Loads the model on first use and writes one chunk's part: its ids and vectors, and in the part's
    metadata its counts and rejects."""

    def __init__(self, settings: EmbedSettings):
        self.settings, self.model, self.tokenizer = settings, None, None
        self.sentence = read_sentence_settings(settings.model) if Path(settings.model).is_dir() else None

    def prompt_text(self) -> str | None:
        prompt = self.settings.prompt
        prompts = (self.sentence.prompts if self.sentence else None) or {}
        return prompts.get(prompt, prompt) if prompt else None

    def cpu_workers(self) -> int:
        """`--cpu-workers`, by default one per CPU thread the job may use (`encode_ids` runs them on CPU only)."""
        return self.settings.cpu_workers or self.settings.threads or usable_cores()

    def __call__(self, index: int, rows: list[tuple[str, str]], rejects: list[Reject], on_batch=None) -> dict:
        if self.model is None:
            self.model, self.tokenizer = load_encoder(self.settings.model, self.settings.device,
                                                      self.settings.trust_remote_code, self.settings.threads,
                                                      self.settings.quantize)
        sentence = self.sentence
        max_length = self.settings.max_length or (sentence.max_length if sentence else None)
        stats = EncodeStats()
        vectors = encode(self.model, self.tokenizer, [text for _, text in rows], self.settings.batch_size,
                         max_length=max_length, pooling=sentence.pooling if sentence else "mean",
                         normalize=self.settings.normalize or bool(sentence and sentence.normalize),
                         prompt=self.prompt_text(), stats=stats, on_batch=on_batch, workers=self.cpu_workers())
        if not rows:
            vectors = np.zeros((0, self.model.config.hidden_size), dtype=np.float32)
        metadata = {"chunk": index, "rows": len(rows), "tokens": stats.tokens, "truncated": stats.truncated,
                    "max_length": stats.max_length, "rejects": [r.to_dict() for r in rejects]}
        path = part_path(self.settings, index)
        import pyarrow.parquet as pq

        tmp = temporary_name(path)
        with writing(path):
            pq.write_table(vector_table([i for i, _ in rows], vectors, self.settings.dtype, metadata), tmp)
            tmp.replace(path)
        return metadata


def run_shard(settings: EmbedSettings, rank: int = 0, world_size: int = 1, progress: bool = True) -> int:
    """Encodes the missing chunks of rank `rank` (a contiguous run of chunks, `shard_chunks`), reading only the
    input files that hold them; returns how many chunks it encoded."""
    from tqdm.auto import tqdm

    manifest = check_manifest(settings)
    total = manifest.get("rows")
    wanted = file_rows = todo_rows = None
    if total is not None:
        n_chunks = max(1, math.ceil(total / settings.chunk_rows))
        wanted = shard_chunks(n_chunks, rank, world_size)
        todo = [i for i in wanted if not part_path(settings, i).is_file()]
        if not todo:
            return 0
        wanted = range(todo[0], todo[-1] + 1)  # a resume starts reading at its first missing chunk
        todo_rows = sum(min(settings.chunk_rows, total - i * settings.chunk_rows) for i in todo)
        file_rows = manifest.get("files")
    elif rank or world_size > 1:
        raise EmbedInputError(f"{settings.parts}: no row count in the manifest; run `prepare` first.")
    encoder, done = ChunkEncoder(settings), 0
    with tqdm(total=todo_rows, unit="rows", desc=f"embed {rank}/{world_size}" if world_size > 1 else "embed",
              disable=not progress, dynamic_ncols=True) as bar:
        tokens = [0]

        def on_batch(rows: int, n_tokens: int) -> None:
            tokens[0] += n_tokens
            bar.update(rows)
            bar.set_postfix(tokens_per_s=f"{tokens[0] / max(bar.format_dict['elapsed'], 1e-9):,.0f}", refresh=False)

        for index, rows, rejects in chunks(settings, wanted, file_rows):
            if part_path(settings, index).is_file():
                continue
            encoder(index, rows, rejects, on_batch)
            bar.update(len(rejects))
            done += 1
    return done


@dataclass
class EmbedSummary:
    output: str
    rows: int
    rejects: Counter
    truncated: int
    max_length: int
    tokens: int
    chunks: int

    def lines(self) -> list[str]:
        lines = [f"Wrote {self.rows:,} embeddings to {self.output} ({self.chunks} chunk(s), {self.tokens:,} tokens)"]
        if self.truncated:
            lines.append(f"{self.truncated:,} row(s) had more than {self.max_length:,} tokens (the model's "
                         f"max_seq_length): each was cut to its first {self.max_length:,} tokens ([SEP] kept)")
        else:
            lines.append(f"no row exceeded {self.max_length:,} tokens: nothing was cut")
        if self.rejects:
            reasons = ", ".join(f"{reason} {n:,}" for reason, n in self.rejects.most_common())
            lines.append(f"{sum(self.rejects.values()):,} row(s) set aside ({reasons}): see "
                         f"{Path(self.output).with_suffix('.rejects.jsonl')} (file, line, reason)")
        return lines


def missing_chunks(settings: EmbedSettings) -> list[int]:
    total = check_manifest(settings).get("rows", 0)
    return [i for i in range(max(1, math.ceil(total / settings.chunk_rows))) if not part_path(settings, i).is_file()]


def combine(settings: EmbedSettings) -> EmbedSummary:
    """Writes `<output>` (all parts in input order, streamed) and `<output>.rejects.jsonl`; every part must exist."""
    import pyarrow.parquet as pq

    missing = missing_chunks(settings)
    if missing:
        raise EmbedInputError(f"chunk(s) {missing[:10]} of {settings.parts} are missing; rerun the same command "
                              "to encode them (finished chunks are kept).")
    n_chunks = max(1, math.ceil(check_manifest(settings)["rows"] / settings.chunk_rows))
    output = Path(settings.output)
    tmp = temporary_name(output)
    rows = tokens = truncated = max_length = 0
    rejects: Counter = Counter()
    writer = None
    with writing(output), atomic_open(settings.rejects_file) as reject_log:
        try:
            for index in range(n_chunks):
                table = pq.read_table(part_path(settings, index))
                meta = json.loads(table.schema.metadata[b"rexbert_embed"])
                table = table.replace_schema_metadata(None)
                writer = writer or pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows, tokens, truncated = rows + meta["rows"], tokens + meta["tokens"], truncated + meta["truncated"]
                max_length = max(max_length, meta["max_length"])
                for reject in meta["rejects"]:
                    rejects[reject["reason"]] += 1
                    reject_log.write(json.dumps(reject) + "\n")
        finally:
            if writer is not None:
                writer.close()
        tmp.replace(output)
    return EmbedSummary(str(output), rows, rejects, truncated, max_length, tokens, n_chunks)


def prepare(settings: EmbedSettings) -> dict:
    """The manifest of this run (written on the first run, checked on a resume), with the input's row count."""
    from .loading import load_model_config

    parts = Path(settings.model).parts  # a Hub id is owner/name; a path deeper, absolute, or under a folder here
    if not Path(settings.model).is_dir() and (settings.model.startswith(("/", ".", "~")) or len(parts) > 2 or
                                              (len(parts) == 2 and Path(parts[0]).is_dir())):
        raise EmbedInputError(f"--model {settings.model}: no such model folder.")
    load_model_config(settings.model, settings.trust_remote_code)  # a wrong --model fails before the input is read
    if Path(settings.model).is_dir():
        read_sentence_settings(settings.model)  # a folder we cannot embed as it says fails before any work
    if (settings.parts / MANIFEST).is_file():
        return check_manifest(settings)
    settings.parts.mkdir(parents=True, exist_ok=True)
    return check_manifest(settings, file_rows=count_rows(settings))
