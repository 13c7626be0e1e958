"""The tokenization job (`rexbert tokenize`, `training.tokenize_job`): the same documents and tokens on
the local and Ray executors as tokenizing in this process; a source never read past its cap; a task
killed mid-way resumes without duplicates; damaged shards are named and only they are redone; records
set aside are summed up and stop the run above the allowed share; `rexbert train` stops at once when a
source's shards are not built, naming the command."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

import modeling_rexbert
from rexbert.core.documents import Record, read_file
from training import shards, source_shards, tokenize_job
from training.corpus import prepare_sources, source_texts
from training.curriculum import load_phases
from training.shards import ShardedCorpus, ShardError, available_tokens
from training.tokenize_job import SourceSpec, run_tokenize_job, tokenize_to_shards
from training.tokenize_run import tokenize_curriculum

TOKENIZER = modeling_rexbert.load_tokenizer()
CORPUS = Path(__file__).resolve().parents[2] / "rexbert" / "corpus"


def expected_documents(path: Path) -> list[list[int]]:
    """What the in-process path held before the job existed: each readable record, tokenized alone."""
    return [TOKENIZER(r.text, add_special_tokens=False)["input_ids"]
            for r in read_file(str(path), "text", shards.MAX_DOCUMENT_BYTES, opener=open) if isinstance(r, Record)]


def documents(folder: Path) -> list[list[int]]:
    corpus = ShardedCorpus(folder)
    return [corpus.document(i).tolist() for i in range(len(corpus))]


@pytest.fixture(scope="module")
def split_corpus(tmp_path_factory):
    """The bundled e-commerce text as 3 files (so 3 tasks each get one), and its tokens."""
    folder = tmp_path_factory.mktemp("corpus")
    lines = (CORPUS / "ecommerce.jsonl").read_text().splitlines(keepends=True)[:1500]
    for i in range(3):
        (folder / f"part-{i}.jsonl").write_text("".join(lines[i * 500:(i + 1) * 500]))
    return folder, [doc for i in range(3) for doc in expected_documents(folder / f"part-{i}.jsonl")]


def test_bundled_corpus_tokens_match_tokenizing_each_document(tmp_path):
    manifest = tokenize_to_shards(CORPUS / "general.jsonl", TOKENIZER, tmp_path / "shards", progress=False)
    assert documents(tmp_path / "shards") == expected_documents(CORPUS / "general.jsonl")
    assert manifest["dtype"] == "uint16"  # 50,368 ids fit
    assert available_tokens(tmp_path / "shards") == manifest["tokens"] == sum(map(len, documents(tmp_path / "shards")))


def test_local_executor_tasks_give_the_in_process_documents(split_corpus, tmp_path):
    folder, expected = split_corpus
    manifest = run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, tmp_path / "shards", tasks=3, workers=2,
                                shard_documents=200, progress=False)
    assert manifest["tasks"] == 3 and len({s["task"] for s in manifest["shards"]}) == 3
    assert documents(tmp_path / "shards") == expected  # same documents, same order, same tokens


@pytest.mark.slow  # a local Ray instance
def test_ray_executor_gives_the_in_process_documents(split_corpus, tmp_path):
    ray = pytest.importorskip("ray")
    folder, expected = split_corpus
    ray.init(num_cpus=2, include_dashboard=False)
    try:
        run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, tmp_path / "shards", tasks=3, workers=2,
                         executor="ray", ray={"mem_per_cpu_gb": 0.25}, shard_documents=200, progress=False)
    finally:
        ray.shutdown()
    assert documents(tmp_path / "shards") == expected


def uniform_source(path: Path, count: int, start: int = 0) -> Path:
    path.write_text("".join(json.dumps({"text": f"Hydro Flask bottle model {i:05d} in navy"}) + "\n"
                            for i in range(start, start + count)))
    return path


def test_a_source_is_never_read_past_its_cap(tmp_path, monkeypatch):
    folder = tmp_path / "docs"
    folder.mkdir()
    for i in range(2):
        uniform_source(folder / f"part-{i}.jsonl", 1000, start=1000 * i)
    per_document = len(expected_documents(folder / "part-0.jsonl")[0])
    read = []

    def counting(*args, **kwargs):
        for item in read_file(*args, **kwargs):
            read.append(item)
            yield item

    monkeypatch.setattr(shards, "read_file", counting)
    cap = 100 * per_document + 1  # 101 documents reach it
    for tasks in (1, 2):
        read.clear()
        manifest = run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, tmp_path / f"shards-{tasks}", tasks=tasks,
                                    cap_tokens=cap, progress=False)
        assert manifest["tasks"] == tasks
        assert len(read) == manifest["documents"], "documents read but not kept"
        assert manifest["tokens"] >= cap and not manifest["exhausted"]
        assert manifest["documents"] <= 101 + tasks  # each task stops at its share (rounded up)
    # a higher cap continues each task where it stopped: nothing is tokenized or written twice
    read.clear()
    bigger = run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, tmp_path / "shards-2", tasks=2,
                              cap_tokens=3 * cap, progress=False)
    assert bigger["tokens"] >= 3 * cap and bigger["documents"] <= 3 * 101 + 2
    assert len(read) == bigger["documents"]  # the kept ones skipped over (read again, not tokenized), then new ones
    texts = [TOKENIZER.decode(d) for d in documents(tmp_path / "shards-2")]
    assert len(texts) == len(set(texts)) == bigger["documents"]


def write_phase(tmp_path: Path, source: dict, **data) -> Path:
    config = {"name": "phase1", "phase": 1, "model": {"preset": "micro"},
              "data": {"sequence_length": 64, "sources": [source], "eval_documents": 4, **data},
              "optimizer": {"lr": 3e-3, "weight_decay": 3e-4},
              "batch": {"micro_batch_size": 2}, "run": {"max_steps": 20, "log_with": []}}
    path = tmp_path / "phase1.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_train_stops_at_once_for_unbuilt_shards_and_tokenize_builds_only_the_plan_s_share(tmp_path, monkeypatch):
    from training.cli import run_tokenize
    from training.curriculum import train_curriculum

    source = uniform_source(tmp_path / "big.jsonl", 3000)
    phase = write_phase(tmp_path, {"name": "catalog", "path": str(source)})
    monkeypatch.setattr(source_shards, "IN_PROCESS_MAX_BYTES", 1000)  # this file counts as large
    with pytest.raises(source_shards.MissingShardsError,
                       match=rf"source 'catalog' .* are not built; build them first with: rexbert tokenize "
                             rf"--config {phase} --output-dir {tmp_path / 'run'}"):
        train_curriculum(phase, tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / "phase1").exists()  # stopped before any model was built

    import argparse
    args = argparse.Namespace(config=str(phase), output_dir=str(tmp_path / "run"), executor="local", tasks=2,
                              workers=1, max_steps=None, max_skipped_share=None, ray_address="auto",
                              cpus_per_task=1, mem_per_cpu_gb=1.0, slurm_partition="cpu", slurm_time="1:00:00",
                              no_progress=True, settings=[])
    run_tokenize(args)
    (need,) = source_shards.tokens_needed(load_phases(phase, default_world_size=1), tmp_path / "run").values()
    assert need.tokens == 20 * 2 * 64  # 20 steps of 2 rows of 64 token slots: the plan's draw
    manifest = shards.finished_manifest(need.folder)
    assert need.cap_tokens == math.ceil(need.tokens * 1.1) <= manifest["tokens"] < need.cap_tokens + 2 * 20
    assert manifest["documents"] < 3000 / 5 and not manifest["exhausted"]  # a fraction of the source was read
    rows = prepare_sources(load_phases(phase, default_world_size=1)[0], TOKENIZER, tmp_path / "run", progress=False)
    assert len(rows[0].heldout_documents) == 4 and len(rows[0].train) > 0


class DyingTokenizer:
    """The real tokenizer that raises (or SIGKILLs its process) on call number `die_at`: a task lost mid-way."""

    def __init__(self, die_at: int, kill: bool = False):
        self.calls, self.die_at, self.kill = 0, die_at, kill

    def __len__(self):
        return len(TOKENIZER)

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.die_at:
            if self.kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError("task lost")
        return TOKENIZER(*args, **kwargs)


def test_a_task_killed_mid_way_resumes_without_duplicates(tmp_path, monkeypatch):
    source = uniform_source(tmp_path / "docs.jsonl", 300)
    expected = expected_documents(source)
    monkeypatch.setattr(tokenize_job, "BATCH_DOCUMENTS", 50)
    out = tmp_path / "shards"
    with pytest.raises(RuntimeError, match="task lost"):
        run_tokenize_job(SourceSpec(str(source)), DyingTokenizer(die_at=4), out, shard_documents=50, progress=False)
    task = json.loads((out / "task-00000" / "task.json").read_text())
    assert task["documents"] == 150 and not task["done"]
    first = (out / "task-00000" / "tokens-00000.npy").stat().st_mtime_ns
    manifest = run_tokenize_job(SourceSpec(str(source)), TOKENIZER, out, shard_documents=50, progress=False)
    assert manifest["documents"] == 300 and documents(out) == expected
    assert (out / "task-00000" / "tokens-00000.npy").stat().st_mtime_ns == first  # kept, not redone


def test_a_process_killed_with_sigkill_resumes_without_duplicates(tmp_path):
    source = uniform_source(tmp_path / "docs.jsonl", 300)
    out = tmp_path / "shards"
    script = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
              "import test_training_tokenize as t; from training import tokenize_job as j; j.BATCH_DOCUMENTS = 40; "
              f"j.run_tokenize_job(j.SourceSpec({str(source)!r}), t.DyingTokenizer(4, kill=True), {str(out)!r}, "
              "shard_documents=40, progress=False)")
    log = (tmp_path / "log.txt").open("w")
    process = subprocess.Popen([sys.executable, "-c", script], stdout=log, stderr=log, start_new_session=True)
    try:
        assert process.wait(timeout=300) == -signal.SIGKILL, (tmp_path / "log.txt").read_text()
    finally:  # the executor's helper process (multiprocessing manager) outlives a killed parent: end it too
        os.killpg(process.pid, signal.SIGKILL)
    assert json.loads((out / "task-00000" / "task.json").read_text())["documents"] == 120
    run_tokenize_job(SourceSpec(str(source)), TOKENIZER, out, shard_documents=40, progress=False)
    assert documents(out) == expected_documents(source)


def test_a_damaged_shard_is_named_and_only_it_is_rebuilt(split_corpus, tmp_path, monkeypatch, capsys):
    folder, expected = split_corpus
    phase = write_phase(tmp_path, {"name": "shop", "path": str(folder)})
    config = load_phases(phase, default_world_size=1)[0]
    out = source_shards.cache_folder(tmp_path, config, config.data.sources[0])
    run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, out, tasks=3, shard_documents=200, progress=False)
    victim = out / "task-00001" / "tokens-00001.npy"
    victim.write_bytes(victim.read_bytes()[:-100])  # truncated after the build
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("task-*/tokens-*.npy") if p != victim}
    monkeypatch.setattr(source_shards, "IN_PROCESS_MAX_BYTES", 1000)  # built by `rexbert tokenize`, not by train
    with pytest.raises(ShardError, match=rf"source 'shop': {victim} is truncated .* rebuild it with: rexbert tokenize "
                                         rf"--config {phase}"):
        source_texts(config, TOKENIZER, tmp_path, "shop")
    (out / "task-00002" / "offsets-00000.npy").unlink()  # and one deleted
    run_tokenize_job(SourceSpec(str(folder)), TOKENIZER, out, tasks=3, shard_documents=200, progress=False)
    assert f"token cache: {victim} is truncated" in capsys.readouterr().out
    assert documents(out) == expected
    redone = {p for p, stamp in stamps.items() if p.stat().st_mtime_ns != stamp}
    assert redone == {out / "task-00001" / "tokens-00002.npy", out / "task-00002" / "tokens-00000.npy",
                      out / "task-00002" / "tokens-00001.npy", out / "task-00002" / "tokens-00002.npy"}
    # a small local source is repaired by `rexbert train` itself, through the same job
    monkeypatch.setattr(source_shards, "IN_PROCESS_MAX_BYTES", 256 * 2**20)
    (out / "task-00000" / "tokens-00002.npy").unlink()
    train, heldout = source_texts(config, TOKENIZER, tmp_path, "shop")
    assert len(train) + len(heldout) == len(expected)


def test_set_aside_records_are_summed_up_and_stop_above_the_allowed_share(tmp_path, capsys):
    source = tmp_path / "messy.jsonl"
    good = [json.dumps({"text": f"Color: Navy; Size: {i}"}) for i in range(18)]
    source.write_text("\n".join([*good[:5], '{"text": "broken', *good[5:], '{"title": "no text"}']) + "\n")
    phase = write_phase(tmp_path, {"name": "catalog", "path": str(source)}, eval_documents=1)
    config = load_phases(phase, default_world_size=1)[0]
    with pytest.raises(source_shards.SetAsideError,
                       match=r"source 'catalog': set aside 2 of 20 records \(10.0%\): malformed_json 1, missing_text 1;"
                             r" file:line list in .*set-aside.txt: more than the 5% allowed by data.max_skipped_share"):
        prepare_sources(config, TOKENIZER, tmp_path / "run", progress=False)
    config.data.max_skipped_share = 0.2
    prepare_sources(config, TOKENIZER, tmp_path / "run", progress=False)
    printed = capsys.readouterr().out
    assert "source 'catalog': set aside 2 of 20 records (10.0%)" in printed
    listing = Path(printed.split("file:line list in ")[1].split()[0]).read_text().splitlines()
    assert listing[0].startswith(f"{source}:6: malformed_json") and listing[1].startswith(f"{source}:20: missing_text")


def test_a_hub_source_keeps_its_config_and_is_split_over_tasks(tmp_path, monkeypatch):
    calls = []

    def fake_hub(source, text_column, split, config=None, rank=0, world_size=1):
        calls.append((source, split, config, rank, world_size))
        yield from (f"Produkt {rank}-{i} in Marineblau" for i in range(30))

    monkeypatch.setattr(shards, "_read_with_datasets", fake_hub)
    phase = write_phase(tmp_path, {"name": "deu", "dataset": "HuggingFaceFW/fineweb-2", "config": "deu_Latn"})
    config = load_phases(phase, default_world_size=1)[0]
    with pytest.raises(source_shards.MissingShardsError, match="rexbert tokenize"):  # never tokenized by train
        source_texts(config, TOKENIZER, tmp_path, "deu")
    tokenize_curriculum([config], tmp_path, tasks=2, progress=False)
    assert sorted(calls) == [("HuggingFaceFW/fineweb-2", "train", "deu_Latn", r, 2) for r in (0, 1)]
    manifest = shards.finished_manifest(source_shards.cache_folder(tmp_path, config, config.data.sources[0]))
    assert manifest["dataset_config"] == "deu_Latn" and manifest["split"] == "train"
    train, heldout = source_texts(config, TOKENIZER, tmp_path, "deu")
    assert len(train) + len(heldout) == 60 and len(heldout) == 4


def test_train_command_stops_on_set_aside_records_unless_told_to_go_on(tmp_path, capsys):
    from rexbert.cli import main

    source = tmp_path / "messy.jsonl"
    good = [json.dumps({"text": f"Color: Navy; Size: {i}; Material: cotton"}) for i in range(40)]
    source.write_text("\n".join([*good, *['{"text": "broken'] * 4]) + "\n")
    phase = write_phase(tmp_path, {"name": "catalog", "path": str(source)}, eval_documents=2)
    run = ["train", "--config", str(phase), "--output-dir", str(tmp_path / "run"), "--max-steps", "1", "--no-progress"]
    assert main(run) == 2
    assert "set aside 4 of 44 records (9.1%): malformed_json 4" in capsys.readouterr().err
    assert main([*run, "--max-skipped-share", "0.1"]) == 0
    assert "source 'catalog': set aside 4 of 44 records (9.1%)" in capsys.readouterr().out


def test_an_unreadable_hub_source_is_named_and_nothing_is_lost(tmp_path):
    with pytest.raises(OSError, match=r"Hub dataset 'nobody/no-such-corpus' \(config 'deu_Latn', split 'train'\) "
                                      r"cannot be read: .*HF_TOKEN"):
        run_tokenize_job(SourceSpec("nobody/no-such-corpus", config="deu_Latn"), TOKENIZER, tmp_path / "shards",
                         progress=False)
    assert not (tmp_path / "shards" / "manifest.json").exists()


def test_a_cache_from_before_tasks_is_rebuilt_saying_why(tmp_path, capsys):
    out = tmp_path / "shards"
    out.mkdir()
    np.save(out / "tokens-00000.npy", np.arange(5, dtype=np.uint32))
    np.save(out / "offsets-00000.npy", np.array([0, 5]))
    source = uniform_source(tmp_path / "docs.jsonl", 3)
    from rexbert.core.fingerprint import source_fingerprint

    (out / "manifest.json").write_text(json.dumps({"source": str(source), "text_column": "text", "documents": 1,
                                                   "tokens": 5, "skipped": {}, "shards": [{"index": 0}],
                                                   "fingerprint": source_fingerprint(source)}))
    assert available_tokens(out) is None  # not a finished build of this version
    tokenize_to_shards(source, TOKENIZER, out, progress=False)
    assert "written before token shards were built by tasks" in capsys.readouterr().out
    assert documents(out) == expected_documents(source) and not (out / "tokens-00000.npy").exists()
