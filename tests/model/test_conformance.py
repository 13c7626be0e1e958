"""RexBERT against transformers' ModernBERT on the same weights: what a transformers user relies on
(MLM logits and loss, attention maps, hidden states and their gradients, layer selection, tuples,
config-driven outputs, inputs_embeds, gradient checkpointing, resized embeddings). Padded batches
hold documents longer than the local window (8 tokens here). Heads: test_conformance_heads.py;
export: test_export.py."""

from __future__ import annotations

import pytest
import torch
from twins import batch, mlm_labels, real, twins

ATOL = 1e-4


def by_query(attn: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """`(batch, heads, seq, seq)` -> the rows of real queries, `(real, heads, seq)`."""
    return attn.permute(0, 2, 1, 3)[mask.bool()]


@pytest.mark.parametrize("sparse", [False, True])
def test_mlm_logits_and_loss_follow_config_sparse_prediction(sparse):
    ours, stock = twins(sparse_prediction=sparse)
    ids, mask = batch()
    labels = mlm_labels(ids, mask)
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (ours, stock))
    expected_shape = (int((labels != -100).sum()), 512) if sparse else (*ids.shape, 512)
    assert mine.logits.shape == theirs.logits.shape == expected_shape
    if sparse:
        torch.testing.assert_close(mine.logits, theirs.logits, atol=ATOL, rtol=0)
    else:
        torch.testing.assert_close(real(mine.logits, mask), real(theirs.logits, mask), atol=ATOL, rtol=0)
        assert torch.all(mine.logits[~mask.bool()] == 0)  # padding: zeros (stock: values of padding tokens)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5)


def test_sparse_prediction_argument_overrides_config_and_uses_the_ignore_index():
    ours, stock = twins(sparse_prediction=True, sparse_pred_ignore_index=-1)
    ids, mask = batch()
    labels = torch.full_like(ids, -1)  # -1: not predicted (padding too: stock would predict it otherwise)
    labels[:, 1] = torch.where(mask[:, 1].bool(), ids[:, 1], -1)
    labels[0, 3] = -100  # predicted by the sparse head (not -1), then ignored by the loss, as in stock
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (ours, stock))
        dense = ours(input_ids=ids, attention_mask=mask, labels=torch.where(labels == -1, -100, labels),
                     sparse_prediction=False)
    assert mine.logits.shape == theirs.logits.shape == (int((labels != -1).sum()), 512)
    torch.testing.assert_close(mine.logits, theirs.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5)
    assert dense.logits.shape == (*ids.shape, 512)
    for model in (ours, stock):  # the attribute stock reads, set on the model
        model.sparse_prediction = False
        assert model(input_ids=ids, attention_mask=mask).logits.shape == (*ids.shape, 512)
        model.sparse_prediction = True
        assert model(input_ids=ids, attention_mask=mask, labels=labels).logits.shape == mine.logits.shape


@pytest.mark.parametrize("via", ["argument", "config"])
@pytest.mark.parametrize("our_attention", ["sdpa", "eager"])
def test_attention_maps_match_stock_eager(via, our_attention):
    ours, stock = twins(stock_attention="eager")
    ours.set_attn_implementation(our_attention)
    ids, mask = batch()
    if via == "config":
        ours.config.output_attentions = stock.config.output_attentions = True
        kwargs = {}
    else:
        kwargs = {"output_attentions": True}
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask, **kwargs) for m in (ours, stock))
        plain = ours(input_ids=ids, attention_mask=mask, output_attentions=False)
    assert len(mine.attentions) == len(theirs.attentions) == ours.config.num_hidden_layers
    for layer, (a, b) in enumerate(zip(mine.attentions, theirs.attentions)):
        assert a.shape == b.shape == (len(ids), 4, ids.shape[1], ids.shape[1])
        torch.testing.assert_close(by_query(a, mask), by_query(b, mask), atol=ATOL, rtol=0, msg=f"layer {layer}")
        assert torch.all(a.permute(0, 2, 1, 3)[~mask.bool()] == 0)  # padding queries: zero rows
    # local layers see +-4 tokens: row 0 (29 tokens) has zeros outside the band, the global layer has none
    assert torch.all(mine.attentions[1][0, :, 10, 15:] == 0) and torch.all(mine.attentions[0][0, :, 10, :29] > 0)
    torch.testing.assert_close(real(mine.logits, mask), real(plain.logits, mask), atol=1e-5, rtol=0)


def test_attention_maps_of_packed_documents_stay_inside_each_document():
    ours, _ = twins()
    ids, _ = batch([12, 9])
    packed = torch.cat([ids[0, :12], ids[1, :9]])[None]
    positions = torch.cat([torch.arange(12), torch.arange(9)])[None]
    with torch.no_grad():
        attentions = ours(input_ids=packed, position_ids=positions, output_attentions=True).attentions
    for attn in attentions:
        assert torch.all(attn[0, :, :12, 12:] == 0) and torch.all(attn[0, :, 12:, :12] == 0)
        torch.testing.assert_close(attn.sum(-1), torch.ones(1, 4, 21))


def test_hidden_states_carry_gradients_like_stock():
    ours, stock = twins()
    ids, mask = batch()
    labels = mlm_labels(ids, mask)
    grads = {}
    for name, model in (("ours", ours), ("stock", stock)):
        out = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True)
        for state in out.hidden_states:
            state.retain_grad()
        hooked = []
        out.hidden_states[1].register_hook(hooked.append)
        out.loss.backward()
        assert len(hooked) == 1, name
        grads[name] = [state.grad for state in out.hidden_states]
    assert len(grads["ours"]) == len(grads["stock"]) == 4
    for layer, (mine, theirs) in enumerate(zip(grads["ours"], grads["stock"])):
        assert mine is not None and theirs is not None, layer
        assert mine.abs().sum() > 0
        torch.testing.assert_close(real(mine, mask), real(theirs, mask), atol=1e-6, rtol=1e-3, msg=f"state {layer}")


@pytest.mark.parametrize("selection", [[0, 2], -1, 1, [3, -4], [7]])
def test_hidden_state_selection_matches_stock(selection):
    ours, stock = twins()
    ids, mask = batch()
    with torch.no_grad():
        mine, theirs = (m.model(input_ids=ids, attention_mask=mask, output_hidden_states=selection)
                        for m in (ours, stock))
    assert [s is None for s in mine.hidden_states] == [s is None for s in theirs.hidden_states]
    assert any(s is not None for s in mine.hidden_states) == (selection != [7])
    for a, b in zip(mine.hidden_states, theirs.hidden_states):
        if a is not None:
            torch.testing.assert_close(real(a, mask), real(b, mask), atol=ATOL, rtol=0)
    if mine.hidden_states[-1] is not None:  # as stock: the last entry is the output itself
        assert mine.hidden_states[-1] is mine.last_hidden_state


def test_outputs_requested_in_the_config_and_return_dict_false_tuples_match_stock():
    ours, stock = twins(stock_attention="eager")
    ids, mask = batch()
    labels = mlm_labels(ids, mask)
    for model in (ours, stock):
        model.config.output_hidden_states = True
        model.config.output_attentions = True
    with torch.no_grad():
        mine = ours(input_ids=ids, attention_mask=mask, labels=labels, return_dict=False)
        theirs = stock(input_ids=ids, attention_mask=mask, labels=labels, return_dict=False)
        ours.config.return_dict = stock.config.return_dict = False
        mine_encoder, theirs_encoder = ours.model(input_ids=ids), stock.model(input_ids=ids)
    assert isinstance(mine, tuple) and [type(x) for x in mine] == [type(x) for x in theirs]
    assert [len(x) for x in mine[2:]] == [len(x) for x in theirs[2:]] == [4, 3]  # hidden states, attentions
    torch.testing.assert_close(mine[0], theirs[0], atol=1e-5, rtol=1e-5)
    assert isinstance(mine_encoder, tuple) and len(mine_encoder) == len(theirs_encoder) == 3
    torch.testing.assert_close(mine_encoder[0], theirs_encoder[0], atol=ATOL, rtol=0)


def test_inputs_embeds_match_stock():
    ours, stock = twins()
    ids, mask = batch(seed=1)
    embeds = ours.get_input_embeddings()(ids) * 1.5  # not a lookup: anything the caller computes
    with torch.no_grad():
        mine, theirs = (m(inputs_embeds=embeds, attention_mask=mask) for m in (ours, stock))
    torch.testing.assert_close(real(mine.logits, mask), real(theirs.logits, mask), atol=ATOL, rtol=0)
    with pytest.raises(ValueError, match="exactly one"):
        ours(input_ids=ids, inputs_embeds=embeds)


def test_gradient_checkpointing_with_hidden_states_and_attentions_gives_stock_gradients():
    ours, stock = twins(stock_attention="eager")
    ids, mask = batch(seed=2)
    labels = mlm_labels(ids, mask)

    def gradients(model):
        model.train().zero_grad()
        out = model(input_ids=ids, attention_mask=mask, labels=labels, output_hidden_states=True,
                    output_attentions=True)
        (out.loss + sum(s[mask.bool()].sum() for s in out.hidden_states) * 1e-3).backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = gradients(ours)
    ours.activation_checkpointing_enable()
    assert ours.is_activation_checkpointing
    checkpointed, reference = gradients(ours), gradients(stock)
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)
        torch.testing.assert_close(reference[name], grad, atol=1e-5, rtol=1e-4, msg=name)


def test_resize_token_embeddings_like_stock():
    ours, stock = twins()
    for model in (ours, stock):
        model.resize_token_embeddings(530)
    assert ours.config.vocab_size == stock.config.vocab_size == 530
    assert ours.get_input_embeddings().weight.shape == stock.get_input_embeddings().weight.shape == (530, 32)
    assert ours.get_output_embeddings().weight.data_ptr() == ours.get_input_embeddings().weight.data_ptr()
    assert ours.decoder.bias.shape == stock.decoder.bias.shape == (530,)
    assert ours.state_dict().keys() == stock.state_dict().keys()
    stock.load_state_dict(ours.state_dict())  # the new rows are random: compare on the same ones
    ids, mask = batch()
    ids[0, 3] = 525  # a new token
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask) for m in (ours, stock))
    assert mine.logits.shape == (*ids.shape, 530)
    torch.testing.assert_close(real(mine.logits, mask), real(theirs.logits, mask), atol=ATOL, rtol=0)
