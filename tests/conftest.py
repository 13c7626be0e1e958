"""Shared fixtures: tiny configs, stock ModernBERT twins with the same weights, padded batches, the
curation test config."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
# Remote code loaded by tests (trust_remote_code=True) is copied here, not into the user's cache.
os.environ.setdefault("HF_MODULES_CACHE", os.path.join(tempfile.mkdtemp(prefix="rexbert-tests-"), "modules"))

import modeling_rexbert  # noqa: E402  (registers the Auto classes)
from modeling_rexbert.convert import to_modernbert_config  # noqa: E402

PAD, CLS, SEP, MASK = 50283, 50281, 50282, 50284


def tiny_config(**overrides) -> modeling_rexbert.RexBertConfig:
    """Small enough for CPU tests, with the real vocabulary and the real +-64 local window."""
    settings = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4)
    return modeling_rexbert.RexBertConfig(**{**settings, **overrides})


def with_layers_that_matter(model: torch.nn.Module) -> torch.nn.Module:
    """`model` with its attention and MLP weights scaled up 10x from init, where the embedding lookup alone would
    dominate the output and any approximation of the layers (quantization, export) would look harmless."""
    with torch.no_grad():
        for layer in model.model.layers:
            for linear in (layer.attn.Wqkv, layer.attn.Wo, layer.mlp.Wi, layer.mlp.Wo):
                linear.weight.mul_(10)
    return model


def stock_twin(model: torch.nn.Module, attn_implementation: str = "sdpa", head: str = "ForMaskedLM"):
    """transformers' ModernBERT with the same config and weights as a RexBERT model."""
    import transformers

    config = to_modernbert_config(model.config)
    config._attn_implementation = attn_implementation
    stock = getattr(transformers, f"ModernBert{head}")(config)
    stock.load_state_dict(model.state_dict())
    return stock.eval()


def padded_batch(lengths: list[int], seed: int = 0, left: bool = False, id_range: tuple[int, int] = (100, 50000),
                 specials: tuple[int, int, int] = (PAD, CLS, SEP)):
    """Random ids from `id_range` in `[CLS] ... [SEP]` rows of the given lengths, padded (right or left) with
    [PAD]; `specials` are the (PAD, CLS, SEP) ids of the vocabulary in use."""
    pad, cls, sep = specials
    gen = torch.Generator().manual_seed(seed)
    width = max(lengths)
    ids = torch.full((len(lengths), width), pad)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for row, length in enumerate(lengths):
        tokens = torch.randint(*id_range, (length,), generator=gen)
        tokens[0], tokens[-1] = cls, sep
        span = slice(width - length, width) if left else slice(0, length)
        ids[row, span] = tokens
        mask[row, span] = 1
    return ids, mask


@pytest.fixture(scope="module")
def curation_corpus(tmp_path_factory) -> Path:
    """`<tmp>/corpus`: the demo corpus built from the test samples (tests/data) in FineFineWeb's layout,
    once per test module; `<tmp>` is the module's own folder for what it builds from it."""
    from curation.demo_corpus import write_demo_corpus

    corpus = tmp_path_factory.mktemp("curation") / "corpus"
    write_demo_corpus(str(corpus), str(Path(__file__).parent / "data"))
    return corpus


def curation_test_config(output_dir, corpus, **sections):
    """A curation config over the demo corpus built from the test samples (domains hobby, news, photo;
    two filter tasks), with `sections` merged over it."""
    from curation.config import config_from_dict
    from rexbert.core.config_schema import merge

    base = {"output_dir": str(output_dir), "domains": ["hobby", "news", "photo"], "filter": {"input": str(corpus)},
            "executor": {"tasks": 2, "workers": 1}}
    return config_from_dict(merge(base, sections))


@pytest.fixture
def mlm_model():
    torch.manual_seed(0)
    return modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval()


requires_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def ray_with_checkout_on_path(*folders: str):
    """A local Ray instance (2 CPUs) whose workers import the checkout's packages (and `folders`), for fixtures."""
    import ray

    root = str(Path(__file__).parent.parent)
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join([*folders, root] + ([old] if old else []))
    ray.init(num_cpus=2, include_dashboard=False)
    yield
    ray.shutdown()
    if old is None:
        os.environ.pop("PYTHONPATH")
    else:
        os.environ["PYTHONPATH"] = old
