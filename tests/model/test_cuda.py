"""CUDA paths (flash_attention_2 through flash-attn or torch's varlen_attn, sdpa on GPU); skipped without CUDA."""

from __future__ import annotations

import pytest
import torch
from conftest import padded_batch, requires_cuda, stock_twin, tiny_config

import modeling_rexbert

pytestmark = [pytest.mark.cuda, requires_cuda]
LENGTHS = [700, 17, 150, 300, 1]


@pytest.mark.parametrize("backend", ["sdpa", "flash_attention_2"])
def test_cuda_logits_match_stock(backend):
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config()).eval()
    stock = stock_twin(model, "sdpa").cuda()
    model = model.cuda()
    model.set_attn_implementation(backend)
    ids, mask = (t.cuda() for t in padded_batch(LENGTHS))
    with torch.no_grad():
        ours = model(input_ids=ids, attention_mask=mask).logits
        theirs = stock(input_ids=ids, attention_mask=mask).logits
    real = mask.bool()
    # flash kernels run in bf16 even for an fp32 model: compare at bf16 resolution
    tolerance = 1e-4 if backend == "sdpa" else 5e-2
    torch.testing.assert_close(ours[real], theirs[real], atol=tolerance, rtol=0)


def test_cuda_flash_packed_documents_are_separate():
    torch.manual_seed(1)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config()).cuda().eval().to(torch.bfloat16)
    model.set_attn_implementation("flash_attention_2")
    lengths = [90, 140, 30]
    ids, _ = padded_batch(lengths)
    docs = [ids[i, :n].cuda() for i, n in enumerate(lengths)]
    positions = torch.cat([torch.arange(n) for n in lengths])[None].cuda()
    with torch.no_grad():
        together = model(input_ids=torch.cat(docs)[None], position_ids=positions).logits[0].float()
        separate = torch.cat([model(input_ids=d[None]).logits[0] for d in docs]).float()
    torch.testing.assert_close(together, separate, atol=2e-2, rtol=0)
