"""RexBERT's question-answering and multiple-choice heads against transformers' ModernBertFor* on the same
weights, and how they travel: Auto classes, the published folder's auto_map, `rexbert convert`."""

from __future__ import annotations

import json

import pytest
import torch
import transformers
from conftest import tiny_config
from twins import batch, real, twins

import modeling_rexbert
from modeling_rexbert.convert import convert_checkpoint

ATOL = 1e-4


@pytest.mark.parametrize("head", ["ForQuestionAnswering", "ForMultipleChoice"])
def test_new_heads_have_stock_state_dict_keys_and_shapes(head):
    ours, stock = twins(head)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in stock.state_dict().items()}


def test_question_answering_matches_stock():
    ours, stock = twins("ForQuestionAnswering")
    ids, mask = batch()
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask) for m in (ours, stock))
    for name in ("start_logits", "end_logits"):
        assert getattr(mine, name).shape == getattr(theirs, name).shape == ids.shape
        torch.testing.assert_close(real(getattr(mine, name), mask), real(getattr(theirs, name), mask), atol=ATOL,
                                   rtol=0)
        assert torch.all(getattr(mine, name)[~mask.bool()] == torch.finfo(torch.float32).min)  # never an answer
    # Without padding the loss is stock's (with padding, stock's softmax also spans padding tokens).
    full, _ = batch([12, 12, 12], seed=3)
    starts, ends = torch.tensor([2, 5, 0]), torch.tensor([4, 9, 0])
    losses = []
    for model in (ours, stock):
        model.train(False).zero_grad()
        out = model(input_ids=full, start_positions=starts, end_positions=ends)
        out.loss.backward()
        losses.append(out.loss)
    torch.testing.assert_close(losses[0], losses[1], atol=1e-5, rtol=1e-5)
    for (name, a), (_, b) in zip(ours.named_parameters(), stock.named_parameters()):
        assert a.grad is not None and b.grad is not None, name
        torch.testing.assert_close(a.grad, b.grad, atol=1e-5, rtol=1e-4, msg=name)


def test_question_answering_loss_ignores_padding():
    ours, _ = twins("ForQuestionAnswering")
    ids, mask = batch([20, 8], seed=4)
    starts, ends = torch.tensor([3, 1]), torch.tensor([6, 7])
    with torch.no_grad():
        padded = ours(input_ids=ids, attention_mask=mask, start_positions=starts, end_positions=ends).loss
        alone = [ours(input_ids=ids[i:i + 1, :n], start_positions=starts[i:i + 1], end_positions=ends[i:i + 1]).loss
                 for i, n in enumerate([20, 8])]
    torch.testing.assert_close(padded, sum(alone) / 2, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_multiple_choice_matches_stock(pooling):
    ours, stock = twins("ForMultipleChoice", classifier_pooling=pooling)
    ids, mask = batch([29, 6, 17, 1, 11, 20], seed=5)
    ids, mask = ids.view(2, 3, -1), mask.view(2, 3, -1)
    labels = torch.tensor([2, 0])
    with torch.no_grad():
        mine, theirs = (m(input_ids=ids, attention_mask=mask, labels=labels) for m in (ours, stock))
        embeds = ours.get_input_embeddings()(ids)
        from_embeds = ours(inputs_embeds=embeds, attention_mask=mask).logits
    assert mine.logits.shape == theirs.logits.shape == (2, 3)
    torch.testing.assert_close(mine.logits, theirs.logits, atol=ATOL, rtol=0)
    torch.testing.assert_close(mine.loss, theirs.loss, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(from_embeds, mine.logits, atol=1e-5, rtol=0)
    if pooling == "mean":  # without a mask every token counts (stock raises here)
        with torch.no_grad():
            assert ours(input_ids=ids).logits.shape == (2, 3)
    with pytest.raises(ValueError, match="num_choices"):
        ours(input_ids=ids[0], attention_mask=mask[0])


@pytest.mark.parametrize("head", ["ForQuestionAnswering", "ForMultipleChoice"])
def test_new_heads_are_auto_classes_and_published(tmp_path, head):
    auto = getattr(transformers, f"AutoModel{head}")
    model = auto.from_config(tiny_config(num_hidden_layers=2))  # RexBERT's vocabulary: convert checks it
    assert type(model) is getattr(modeling_rexbert, f"RexBert{head}")
    model.save_pretrained(tmp_path / "ours")
    config = json.loads((tmp_path / "ours" / "config.json").read_text())
    assert config["auto_map"][f"AutoModel{head}"] == f"modeling_rexbert.RexBert{head}"
    assert config["architectures"] == [f"ModernBert{head}"]
    assert {"layers_rexbert.py", "outputs_rexbert.py"} <= {p.name for p in (tmp_path / "ours").iterdir()}
    # Stock transformers reads the folder without remote code ...
    stock = auto.from_pretrained(tmp_path / "ours")
    assert type(stock) is getattr(transformers, f"ModernBert{head}")
    # ... and `rexbert convert` round-trips the head through a plain ModernBERT folder.
    convert_checkpoint(tmp_path / "ours", tmp_path / "stock", to="modernbert")
    convert_checkpoint(tmp_path / "stock", tmp_path / "back", to="rexbert")
    assert type(auto.from_pretrained(tmp_path / "stock")) is getattr(transformers, f"ModernBert{head}")
    back = getattr(modeling_rexbert, f"RexBert{head}").from_pretrained(tmp_path / "back")
    for name, tensor in model.state_dict().items():
        assert torch.equal(tensor, back.state_dict()[name]), name
