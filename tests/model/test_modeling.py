"""The unpad-once model against transformers' ModernBERT and against itself."""

from __future__ import annotations

import pytest
import torch
from conftest import MASK, PAD, padded_batch, stock_twin, tiny_config

import modeling_rexbert
from modeling_rexbert import unpadding

# Lengths straddle the +-64 local window (129 tokens) and include a one-token row.
LENGTHS = [300, 17, 150, 64, 129, 1]
BACKENDS = ["sdpa", "eager"]


def real(tensor: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return tensor[mask.bool()]


@pytest.mark.parametrize("ours_backend", BACKENDS)
@pytest.mark.parametrize("stock_backend", BACKENDS)
def test_logits_match_stock_modernbert(mlm_model, ours_backend, stock_backend):
    stock = stock_twin(mlm_model, stock_backend)
    mlm_model.set_attn_implementation(ours_backend)
    ids, mask = padded_batch(LENGTHS)
    with torch.no_grad():
        ours = mlm_model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        theirs = stock(input_ids=ids, attention_mask=mask, output_hidden_states=True)
    assert ours.logits.shape == theirs.logits.shape == (*ids.shape, 50368)
    torch.testing.assert_close(real(ours.logits, mask), real(theirs.logits, mask), atol=1e-4, rtol=0)
    assert len(ours.hidden_states) == len(theirs.hidden_states) == 5
    for mine, stock_state in zip(ours.hidden_states, theirs.hidden_states):
        torch.testing.assert_close(real(mine, mask), real(stock_state, mask), atol=1e-4, rtol=0)
    assert torch.all(ours.logits[~mask.bool()] == 0)  # padding is restored as zeros


def test_left_padding_matches_stock(mlm_model):
    stock = stock_twin(mlm_model)
    ids, mask = padded_batch([40, 200, 7], left=True)
    with torch.no_grad():
        ours, theirs = mlm_model(input_ids=ids, attention_mask=mask), stock(input_ids=ids, attention_mask=mask)
    torch.testing.assert_close(real(ours.logits, mask), real(theirs.logits, mask), atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("lengths, copies_key_windows", [([1100, 1030, 300], True), ([500, 420, 330], False)],
                         ids=["key-windows", "key-slices"])
def test_local_attention_by_blocks_is_exact(backend, lengths, copies_key_windows):
    """Long documents attend locally block by block (slices of the keys from 5 blocks; when training, key
    windows copied from 16 blocks on); logits and gradients must equal stock's attention over the masked
    rectangle. The longest bucket holds padding (documents of different lengths), so the blocks' masks must
    keep padding keys out."""
    torch.manual_seed(1)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2))
    model.set_attn_implementation(backend)
    ids, mask = padded_batch(lengths)
    bucket = unpadding.unpad_inputs(mask, *ids.shape, ids.device).buckets[0][0]
    assert bucket.length == lengths[0] and bucket.valid is not None
    assert bucket.local_block(64) == 64 and bucket.copies_key_windows(64) is copies_key_windows
    stock = stock_twin(model)
    labels = torch.where(mask.bool(), ids, -100)
    ours, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (model, stock))
    torch.testing.assert_close(real(ours.logits, mask), real(theirs.logits, mask), atol=1e-4, rtol=0)
    ours.loss.backward()
    theirs.loss.backward()
    stock_grads = dict(stock.named_parameters())
    for name, parameter in model.named_parameters():
        torch.testing.assert_close(parameter.grad, stock_grads[name].grad, atol=1e-5, rtol=1e-3, msg=name)
    with torch.no_grad():  # without a backward pass, every long bucket attends by slices
        assert not bucket.copies_key_windows(64, backward=False)
        inference = model(input_ids=ids, attention_mask=mask).logits
    torch.testing.assert_close(real(inference, mask), real(theirs.logits, mask), atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_padding_invariance(mlm_model, backend):
    mlm_model.set_attn_implementation(backend)
    ids, mask = padded_batch(LENGTHS, seed=3)
    with torch.no_grad():
        batched = mlm_model(input_ids=ids, attention_mask=mask).logits
        for row, length in enumerate(LENGTHS):
            alone = mlm_model(input_ids=ids[row : row + 1, :length]).logits[0]
            torch.testing.assert_close(batched[row, :length], alone, atol=1e-5, rtol=0)


def test_sparse_loss_equals_dense_loss(mlm_model):
    ids, mask = padded_batch(LENGTHS, seed=5)
    labels = torch.full_like(ids, -100)
    chosen = (torch.rand(ids.shape, generator=torch.Generator().manual_seed(0)) < 0.3) & mask.bool()
    labels[chosen] = ids[chosen]
    inputs = ids.masked_fill(chosen, MASK)
    with torch.no_grad():
        sparse = mlm_model(input_ids=inputs, attention_mask=mask, labels=labels, sparse_prediction=True)
        dense_logits = mlm_model(input_ids=inputs, attention_mask=mask).logits
    assert sparse.logits.shape == (int(chosen.sum()), 50368)  # masked rows only
    dense_loss = torch.nn.functional.cross_entropy(dense_logits.view(-1, 50368), labels.view(-1))
    torch.testing.assert_close(sparse.loss, dense_loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(sparse.logits, dense_logits[chosen], atol=1e-5, rtol=0)


def test_sparse_loss_matches_stock_sparse_prediction(mlm_model):
    stock = stock_twin(mlm_model)
    stock.sparse_prediction = True
    ids, mask = padded_batch([200, 31], seed=6)
    labels = torch.where(mask.bool() & (torch.arange(ids.shape[1]) % 3 == 0), ids, -100)
    with torch.no_grad():
        ours, theirs = mlm_model(input_ids=ids, attention_mask=mask, labels=labels, sparse_prediction=True), stock(
            input_ids=ids, attention_mask=mask, labels=labels)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("packing", ["position_ids", "cu_seqlens"])
def test_packed_documents_do_not_attend_across(mlm_model, backend, packing):
    mlm_model.set_attn_implementation(backend)
    doc_lengths = [90, 140, 30]
    ids, _ = padded_batch(doc_lengths, seed=7)
    docs = [ids[i, :n] for i, n in enumerate(doc_lengths)]
    packed = torch.cat(docs)[None, :]
    if packing == "position_ids":
        kwargs = {"position_ids": torch.cat([torch.arange(n) for n in doc_lengths])[None, :]}
    else:
        kwargs = {"cu_seqlens": torch.tensor([0, 90, 230, 260], dtype=torch.int32)}
    with torch.no_grad():
        together = mlm_model(input_ids=packed, **kwargs).logits[0]
        separate = torch.cat([mlm_model(input_ids=doc[None, :]).logits[0] for doc in docs])
    torch.testing.assert_close(together, separate, atol=1e-5, rtol=0)


def test_packed_rows_with_padding(mlm_model):
    """Two packed rows of different fill, padded: each document still equals itself alone."""
    ids, _ = padded_batch([50, 70, 20], seed=8)
    row0 = torch.cat([ids[0, :50], ids[1, :70]])
    row1 = torch.cat([ids[2, :20], torch.full((100,), PAD)])
    batch = torch.stack([row0, row1])
    mask = torch.stack([torch.ones(120), torch.cat([torch.ones(20), torch.zeros(100)])]).long()
    positions = torch.stack([torch.cat([torch.arange(50), torch.arange(70)]), torch.arange(120)])
    with torch.no_grad():
        out = mlm_model(input_ids=batch, attention_mask=mask, position_ids=positions).logits
        expected = [mlm_model(input_ids=ids[i : i + 1, :n]).logits[0] for i, n in enumerate([50, 70, 20])]
    torch.testing.assert_close(out[0, :50], expected[0], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[0, 50:], expected[1], atol=1e-5, rtol=0)
    torch.testing.assert_close(out[1, :20], expected[2], atol=1e-5, rtol=0)


def test_bad_cu_seqlens_is_a_clear_error(mlm_model):
    with pytest.raises(ValueError, match="cu_seqlens"):
        mlm_model(input_ids=torch.randint(5, 100, (1, 10)), cu_seqlens=torch.tensor([0, 4, 9]))


def test_all_padding_is_a_clear_error(mlm_model):
    with pytest.raises(ValueError, match="no real token"):
        mlm_model(input_ids=torch.full((2, 5), PAD), attention_mask=torch.zeros(2, 5, dtype=torch.long))


def test_return_dict_false_gives_tuple(mlm_model):
    out = mlm_model(input_ids=torch.randint(5, 100, (1, 10)), return_dict=False)
    assert isinstance(out, tuple) and out[0].shape == (1, 10, 50368)


def test_gradients_match_stock_and_checkpointing():
    torch.manual_seed(2)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config())
    stock = stock_twin(model).train()
    ids, mask = padded_batch([160, 40, 90], seed=9)
    labels = torch.where(mask.bool() & (torch.arange(ids.shape[1]) % 4 == 1), ids, -100)

    def grads(m):
        m.zero_grad()
        m(input_ids=ids, attention_mask=mask, labels=labels).loss.backward()
        return {name: p.grad.clone() for name, p in m.named_parameters()}

    plain = grads(model.train())
    model.activation_checkpointing_enable()
    checkpointed = grads(model)
    reference = grads(stock)
    for name, grad in plain.items():
        torch.testing.assert_close(grad, checkpointed[name], atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(grad, reference[name], atol=1e-5, rtol=1e-4, msg=name)


def test_encoder_output_is_padded_and_matches_stock(mlm_model):
    encoder = mlm_model.model
    stock = stock_twin(mlm_model).model
    ids, mask = padded_batch(LENGTHS)
    with torch.no_grad():
        ours, theirs = encoder(input_ids=ids, attention_mask=mask), stock(input_ids=ids, attention_mask=mask)
    assert ours.last_hidden_state.shape == (*ids.shape, 64)
    torch.testing.assert_close(real(ours.last_hidden_state, mask), real(theirs.last_hidden_state, mask),
                               atol=1e-4, rtol=0)


def test_inputs_embeds_equal_input_ids(mlm_model):
    ids, mask = padded_batch([30, 12])
    with torch.no_grad():
        from_ids = mlm_model(input_ids=ids, attention_mask=mask).logits
        embeds = mlm_model.model.embeddings.tok_embeddings(ids)
        from_embeds = mlm_model(inputs_embeds=embeds, attention_mask=mask).logits
    torch.testing.assert_close(from_ids, from_embeds)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_sequence_classification_matches_stock(pooling):
    torch.manual_seed(3)
    model = modeling_rexbert.RexBertForSequenceClassification(
        tiny_config(num_labels=3, classifier_pooling=pooling)).eval()
    stock = stock_twin(model, head="ForSequenceClassification")
    ids, mask = padded_batch([70, 150, 9], seed=10)
    labels = torch.tensor([0, 2, 1])
    with torch.no_grad():
        ours, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (model, stock))
    torch.testing.assert_close(ours.logits, theirs.logits, atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=1e-5)


def test_regression_head():
    torch.manual_seed(4)
    model = modeling_rexbert.RexBertForSequenceClassification(tiny_config(num_labels=1, classifier_pooling="mean"))
    ids, mask = padded_batch([20, 35], seed=11)
    out = model(input_ids=ids, attention_mask=mask, labels=torch.tensor([0.2, 0.9]))
    assert out.logits.shape == (2, 1)
    assert model.config.problem_type == "regression"
    expected = torch.nn.functional.mse_loss(out.logits.squeeze(), torch.tensor([0.2, 0.9]))
    torch.testing.assert_close(out.loss, expected)


def test_sequence_classification_takes_cu_seqlens_like_the_other_heads():
    torch.manual_seed(6)
    model = modeling_rexbert.RexBertForSequenceClassification(tiny_config(num_labels=2)).eval()
    ids, _ = padded_batch([60], seed=13)
    two_documents = torch.cat([torch.arange(25), torch.arange(35)])[None]
    with torch.no_grad():
        by_positions = model(input_ids=ids, position_ids=two_documents).logits
        by_offsets = model(input_ids=ids, position_ids=two_documents, cu_seqlens=torch.tensor([0, 25, 60])).logits
        one_document = model(input_ids=ids, position_ids=two_documents, cu_seqlens=torch.tensor([0, 60])).logits
    torch.testing.assert_close(by_offsets, by_positions)
    assert not torch.allclose(one_document, by_positions)  # cu_seqlens wins over position restarts: it is read


def test_token_classification_matches_stock():
    torch.manual_seed(5)
    model = modeling_rexbert.RexBertForTokenClassification(tiny_config(num_labels=5)).eval()
    stock = stock_twin(model, head="ForTokenClassification")
    ids, mask = padded_batch([140, 33], seed=12)
    labels = torch.randint(0, 5, ids.shape).masked_fill(mask == 0, -100)
    with torch.no_grad():
        ours, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (model, stock))
    assert ours.logits.shape == (*ids.shape, 5)
    torch.testing.assert_close(real(ours.logits, mask), real(theirs.logits, mask), atol=1e-4, rtol=0)
    torch.testing.assert_close(ours.loss, theirs.loss, atol=1e-5, rtol=1e-5)


def test_switching_backends_changes_no_weight(mlm_model):
    before = {k: v.clone() for k, v in mlm_model.state_dict().items()}
    structure = str(mlm_model)
    for backend in ["eager", "sdpa"]:
        mlm_model.set_attn_implementation(backend)
        assert mlm_model.config._attn_implementation == backend
    assert str(mlm_model) == structure
    assert all(torch.equal(before[k], v) for k, v in mlm_model.state_dict().items())


def test_unsupported_backend_is_a_clear_error(mlm_model):
    with pytest.raises(ValueError, match="attn_implementation='flex_attention'"):
        mlm_model.set_attn_implementation("flex_attention")
    with pytest.raises(ValueError, match="attn_implementation"):
        modeling_rexbert.RexBertForMaskedLM(tiny_config(attn_implementation="paged|eager"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only error")
def test_flash_attention_without_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA"):
        modeling_rexbert.RexBertForMaskedLM(tiny_config(attn_implementation="flash_attention_2"))


def test_weights_tied_and_initialised_as_modernbert():
    config = tiny_config(num_hidden_layers=8)
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(config)
    assert model.decoder.weight is model.model.embeddings.tok_embeddings.weight
    std_out = 0.02 / (2 * 8) ** 0.5
    wo = model.model.layers[3].mlp.Wo.weight
    assert wo.abs().max() <= 2 * std_out + 1e-7  # truncated at 2 sigma
    assert abs(wo.std().item() - std_out * 0.88) < std_out * 0.1  # std of a 2-sigma truncated normal
    assert isinstance(model.model.layers[0].attn_norm, torch.nn.Identity)
    assert all(not isinstance(m, torch.nn.Linear) or m.bias is None for n, m in model.named_modules()
               if n != "decoder")
