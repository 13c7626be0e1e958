"""`rexbert embed` sharded over datatrove's Ray executor on a local Ray instance (2 CPUs, started and stopped
here): the same rows and vectors, byte for byte, as one process."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import ray_with_checkout_on_path, tiny_config

ray = pytest.importorskip("ray")

import modeling_rexbert  # noqa: E402
from evaluation.embed_job import EmbedSettings  # noqa: E402
from rexbert.core.executors import ExecutorOptions  # noqa: E402
from rexbert.embed_command import embed_to_parquet  # noqa: E402

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]  # a local Ray instance
PRODUCTS = Path(__file__).parents[1] / "data" / "esci_sample" / "sample-products.jsonl"


@pytest.fixture(scope="module")
def ray_cluster():
    yield from ray_with_checkout_on_path()


def test_ray_shards_give_the_one_process_file(ray_cluster, tmp_path):
    torch.manual_seed(0)
    folder = tmp_path / "model"
    modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval().save_pretrained(folder)

    def settings(name):
        return EmbedSettings(model=str(folder), input=str(PRODUCTS), output=str(tmp_path / name / "v.parquet"),
                             text_columns=("fields.title", "fields.description"), id_column="fields.id", chunk_rows=3)

    one = embed_to_parquet(settings("one"), progress=False)
    options = ExecutorOptions(type="ray", tasks=3, workers=2, cpus_per_task=1, mem_per_cpu_gb=0.5)
    sharded = embed_to_parquet(settings("ray"), options)
    assert sharded.rows == one.rows == 16
    assert Path(sharded.output).read_bytes() == Path(one.output).read_bytes()
    parts = sorted(p.name for p in (tmp_path / "ray" / "v.parquet.parts").glob("chunk-*.parquet"))
    assert parts == [f"chunk-{i:06d}.parquet" for i in range(6)]
