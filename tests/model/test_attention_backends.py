"""Which attention backend runs, said once: flash_attention_2's kernel choice (flash-attn, transformers' kernels
fallback, torch's varlen_attn) is tested here on CPU with the availability flags patched; tests/test_cuda.py
runs the kernels themselves where a GPU is present."""

from __future__ import annotations

import logging

import pytest
import torch
from conftest import tiny_config
from transformers.modeling_flash_attention_utils import _lazy_define_process_function
from transformers.utils import logging as hf_logging

import modeling_rexbert
from modeling_rexbert import attention_rexbert


def flash_attn_varlen_func(q, k, v, cu_seqlens_q, cu_seqlens_k, max_seqlen_q, max_seqlen_k, dropout_p=0.0,
                           softmax_scale=None, causal=False, window_size=(-1, -1), deterministic=False):
    """Stands in for flash-attn's kernel: same keywords (transformers reads them from the signature)."""
    raise AssertionError("not called on CPU")


@pytest.fixture
def environment(monkeypatch):
    """Sets what is installed; records which implementation transformers was asked to load."""
    loaded = []

    def set_up(flash_attn: bool, kernels: bool, kernel_loads: bool = True):
        def lazy_import(implementation):
            loaded.append(implementation)
            if implementation != "flash_attention_2" and not kernel_loads:
                raise ValueError("An error occurred while trying to load from 'kernels-community/flash-attn2'")
            process = _lazy_define_process_function(flash_attn_varlen_func)
            return (None, flash_attn_varlen_func, None, None, None), (process, None)

        monkeypatch.setattr(attention_rexbert, "is_flash_attn_2_available", lambda: flash_attn)
        monkeypatch.setattr(attention_rexbert, "is_kernels_available", lambda: kernels)
        monkeypatch.setattr(attention_rexbert, "lazy_import_flash_attention", lazy_import)
        attention_rexbert.varlen_kernel.cache_clear()
        return loaded

    yield set_up
    attention_rexbert.varlen_kernel.cache_clear()


@pytest.mark.parametrize(
    ("flash_attn", "kernels", "kernel_loads", "loaded", "runs", "substitute"),
    [
        (True, True, True, ["flash_attention_2"], "flash-attn's flash_attn_varlen_func", False),
        (False, True, True, ["kernels-community/flash-attn2"], "of kernels-community/flash-attn2", True),
        (False, True, False, ["kernels-community/flash-attn2"], "PyTorch's varlen_attn", True),
        (False, False, True, [], "PyTorch's varlen_attn", True),
    ],
)
def test_flash_attention_2_chooses_the_kernel_as_transformers_does(environment, flash_attn, kernels, kernel_loads,
                                                                   loaded, runs, substitute):
    calls = environment(flash_attn, kernels, kernel_loads)
    kernel = attention_rexbert.varlen_kernel()
    assert calls == loaded
    assert runs in kernel.name and kernel.substitute == substitute
    if kernels and not kernel_loads:
        assert "loading kernels-community/flash-attn2 through kernels failed" in kernel.name
    if not kernels:
        assert "pip install kernels" in kernel.name
    assert (kernel.flash_kwargs is None) == ("varlen_attn" in kernel.name)
    description, said_as_substitute = attention_rexbert.attention_backend("flash_attention_2")
    assert runs in description and said_as_substitute == substitute


def test_flash_kernels_get_stock_keywords_with_our_window(environment):
    environment(flash_attn=False, kernels=True)
    kernel = attention_rexbert.varlen_kernel()
    local = attention_rexbert.flash_varlen_kwargs(kernel.flash_kwargs, 300, 64, 0.1, 0.125, True)
    assert local["window_size"] == (64, 64)  # |i - j| <= 64, as the sdpa path and stock ModernBERT mask
    assert (local["dropout_p"], local["softmax_scale"], local["deterministic"], local["causal"]) == (0.1, 0.125, True,
                                                                                                     False)
    assert (local["max_seqlen_q"], local["max_seqlen_k"]) == (300, 300)
    assert "window_size" not in attention_rexbert.flash_varlen_kwargs(kernel.flash_kwargs, 300, None, 0, 0.125, False)
    # documents no longer than the band need no window
    assert "window_size" not in attention_rexbert.flash_varlen_kwargs(kernel.flash_kwargs, 65, 64, 0, 0.125, False)


def old_varlen_attn(query, key, value, cu_seq_q, cu_seq_k, max_q, max_k, is_causal=False):
    """torch 2.10's signature: no `scale`, no `window_size`."""


def test_torch_without_varlen_keywords_is_a_clear_error_at_load(environment, monkeypatch):
    environment(flash_attn=False, kernels=False)
    monkeypatch.setattr(torch.nn.attention.varlen, "varlen_attn", old_varlen_attn)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ImportError, match=r"needs torch>=2\.11; torch .* has no scale, window_size") as error:
        modeling_rexbert.RexBertForMaskedLM(tiny_config(attn_implementation="flash_attention_2"))
    assert "pip install kernels" in str(error.value) and "attn_implementation='sdpa'" in str(error.value)


def test_installed_torch_has_the_varlen_keywords_or_the_error_says_so():
    try:
        attention_rexbert.torch_varlen_attn()
    except ImportError as error:  # a torch older than the floor of this path
        assert f"torch>={attention_rexbert.VARLEN_ATTN_TORCH}" in str(error)


@pytest.fixture
def records(caplog):
    for once in (hf_logging.logging.Logger.info_once, hf_logging.logging.Logger.warning_once):
        once.cache_clear()  # "once" is per process: start from a clean slate
    caplog.set_level(logging.INFO, logger="modeling_rexbert")
    yield lambda: [r for r in caplog.records if "RexBERT attention backend" in r.getMessage()]


def test_the_backend_is_logged_once(records):
    model = modeling_rexbert.RexBertModel(tiny_config()).eval()
    ids = torch.randint(5, 500, (2, 12))
    with torch.no_grad():
        for _ in range(3):
            model(input_ids=ids)
    (said,) = records()
    assert said.levelno == logging.INFO and "sdpa on per-document rectangles" in said.getMessage()
    with torch.no_grad():
        model(input_ids=ids, output_attentions=True)  # another backend runs: said once too
        model(input_ids=ids, output_attentions=True)
    assert [r.getMessage() for r in records()][1:] == [
        "RexBERT attention backend: eager on the padded batch (this call returns attention maps)."]


def test_a_substitute_kernel_is_a_warning(records, environment):
    environment(flash_attn=False, kernels=False)
    for _ in range(2):
        modeling_rexbert.modeling_rexbert.say_which_attention_runs("flash_attention_2", False)
    (said,) = records()
    assert said.levelno == logging.WARNING and "PyTorch's varlen_attn" in said.getMessage()
