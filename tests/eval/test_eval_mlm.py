"""Masked-token recovery: deterministic span masks, hand-checked top-k, any masked LM, clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import tiny_config

import modeling_rexbert
from evaluation.data import EvaluationDataError, clean_text, load_split
from evaluation.metrics import top_k_from_ranks
from evaluation.mlm import choose_masked_words, evaluate_masked_lm, mask_tokens, pack_blocks, true_token_ranks
from evaluation.results import EvalResult, masked_token_table, read_results, render_table, write_results
from modeling_rexbert.convert import convert_checkpoint
from rexbert.cli import main as cli

DATA = Path(__file__).parents[1] / "data"
PRODUCTS = DATA / "esci_sample" / "sample-products.jsonl"
COLUMNS = ["fields.title", "fields.description"]


@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
    """A tiny RexBERT fitted for a few steps on product titles (so accuracies are not all zero), and the
    same weights converted to stock ModernBERT."""
    folder = tmp_path_factory.mktemp("models")
    tokenizer = modeling_rexbert.load_tokenizer()
    titles = [clean_text(t) for t in load_split(PRODUCTS)["fields.title"]]
    batch = tokenizer(titles, padding=True, truncation=True, max_length=64, return_tensors="pt")
    torch.manual_seed(0)
    model = modeling_rexbert.RexBertForMaskedLM(tiny_config(num_hidden_layers=2))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(40):
        chosen = (torch.rand(batch["input_ids"].shape, generator=generator) < 0.15) & batch["attention_mask"].bool()
        labels = torch.where(chosen, batch["input_ids"], -100)
        inputs = batch["input_ids"].masked_fill(chosen, tokenizer.mask_token_id)
        model(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.save_pretrained(folder / "rexbert")
    convert_checkpoint(folder / "rexbert", folder / "modernbert", to="modernbert")
    return folder / "rexbert", folder / "modernbert"


def test_word_masks_are_deterministic_whole_word_spans():
    text = "Apple iPhone 13, 128 GB, Midnight - Unlocked (Renewed) with USB-C charger and 2 year warranty"
    first = choose_masked_words(text, 0.15, seed=7, stream=(0, 3))
    assert first == choose_masked_words(text, 0.15, seed=7, stream=(0, 3))
    assert first != choose_masked_words(text, 0.15, seed=8, stream=(0, 3))
    words = text.split()
    assert len(first.spans) == 3  # ceil(15% of 16 words)
    assert all(text[a:b] in words for a, b in first.spans)


def test_token_masks_follow_words_and_spare_special_tokens():
    tokenizer = modeling_rexbert.load_tokenizer()
    masked = choose_masked_words("Hydro Flask Wide Mouth Water Bottle 32 oz Pacific blue", 0.3, 0, (0, 0))
    ids, labels = mask_tokens(masked, tokenizer, block_size=64)
    assert ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id
    masked_words = {masked.text[a:b] for a, b in masked.spans}
    recovered = tokenizer.decode([label for label in labels if label != -100]).split()
    assert set(recovered) == masked_words
    assert all(i == tokenizer.mask_token_id for i, label in zip(ids, labels) if label != -100)
    short_ids, _ = mask_tokens(masked, tokenizer, block_size=4) or ([0] * 4, None)
    assert len(short_ids) <= 4


class RankingModel(torch.nn.Module):
    """Scores token ids by a fixed ranking per position: rank r gets logit -r."""

    def __init__(self, rankings: dict[int, list[int]], vocab: int = 20):
        super().__init__()
        self.rankings, self.vocab = rankings, vocab

    def forward(self, input_ids, attention_mask):
        logits = torch.full((*input_ids.shape, self.vocab), -100.0)
        for position, ranking in self.rankings.items():
            logits[0, position, ranking] = -torch.arange(len(ranking), dtype=torch.float)
        return type("Out", (), {"logits": logits})()


def test_top_k_accuracy_hand_computed():
    # masked positions 1..4 with true ids 5, 6, 7, 8; the model ranks the truth 1st, 2nd, 3rd and 6th
    labels = [-100, 5, 6, 7, 8, -100]
    rankings = {1: [5, 1, 2], 2: [1, 6, 2], 3: [1, 2, 7], 4: [1, 2, 3, 4, 9, 8]}
    tokenizer = type("Tok", (), {"pad_token_id": 0})()
    ranks, truth = true_token_ranks(RankingModel(rankings), tokenizer, [([3] * 6, labels)], batch_size=4)
    assert truth.tolist() == [5, 6, 7, 8] and ranks.tolist() == [0, 1, 2, 5]
    assert top_k_from_ranks(ranks, (1, 3, 5)) == {1: 0.25, 3: 0.75, 5: 0.75}


def test_same_masks_and_scores_for_rexbert_and_stock(trained_pair, tmp_path):
    ours, stock = trained_pair
    kwargs = dict(dataset=str(PRODUCTS), text_columns=COLUMNS, block_sizes=[32, 128], ks=(1, 5), show_progress=False)
    fast = evaluate_masked_lm([str(ours)], **kwargs)
    reference = evaluate_masked_lm([str(stock)], implementation="transformers", **kwargs)
    assert [r.settings["masked_tokens"] for r in fast] == [r.settings["masked_tokens"] for r in reference]
    assert [r.value for r in fast] == [r.value for r in reference]
    assert max(r.value for r in fast) > 0  # the fitted model recovers some tokens: the comparison is not vacuous
    titles_32 = {r.settings["k"]: r.value for r in fast
                 if r.settings["column"] == "fields.title" and r.settings["block_size"] == 32}
    assert titles_32[5] >= titles_32[1]


def test_any_masked_lm_with_its_own_tokenizer(trained_pair, tmp_path):
    """A BERT with a WordPiece vocabulary is scored on the same masked words in the same run."""
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertConfig, BertForMaskedLM, PreTrainedTokenizerFast

    data = load_split(PRODUCTS)
    texts = [clean_text(t) for t in list(data["fields.title"]) + list(data["fields.description"])]
    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=2000, show_progress=False)
    PreTrainedTokenizerFast(tokenizer_object=wordpiece._tokenizer, unk_token="[UNK]", pad_token="[PAD]",
                            cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]").save_pretrained(tmp_path / "bert")
    config = BertConfig(vocab_size=wordpiece.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64)
    BertForMaskedLM(config).save_pretrained(tmp_path / "bert")
    results = evaluate_masked_lm([str(trained_pair[0]), str(tmp_path / "bert")], str(PRODUCTS), COLUMNS[:1], [64],
                                 ks=(1,), show_progress=False)
    assert [r.model for r in results] == [str(trained_pair[0]), str(tmp_path / "bert")]
    assert all(r.settings["masked_tokens"] > 0 for r in results)
    assert "fields.title 64 k=1" in masked_token_table(results)


def test_model_without_mlm_head_is_a_clear_error(tmp_path):
    modeling_rexbert.RexBertModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(EvaluationDataError, match="no trained masked-language-modelling head"):
        evaluate_masked_lm([str(tmp_path)], str(PRODUCTS), COLUMNS[:1], [32], show_progress=False)


def test_bad_data_is_a_clear_error(trained_pair, tmp_path):
    ours = str(trained_pair[0])
    with pytest.raises(EvaluationDataError, match="column 'product_title' not found"):
        evaluate_masked_lm([ours], str(PRODUCTS), ["product_title"], [32], show_progress=False)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    with pytest.raises(EvaluationDataError, match="empty"):
        evaluate_masked_lm([ours], str(empty), ["text"], [32], show_progress=False)
    (tmp_path / "blank.jsonl").write_text(json.dumps({"text": "   "}) + "\n")
    with pytest.raises(EvaluationDataError, match="no text to mask"):
        evaluate_masked_lm([ours], str(tmp_path / "blank.jsonl"), ["text"], [32], show_progress=False)


def test_results_round_trip_and_no_silent_overwrite(tmp_path):
    results = [EvalResult("m", "masked-token-recovery", "d", "test", "top1_accuracy", 0.5,
                          settings={"column": "title", "block_size": 128, "k": 1}, seed=0)]
    path = write_results(tmp_path / "r.json", results)
    assert read_results(path) == results
    with pytest.raises(FileExistsError):
        write_results(path, results)
    assert "| m | 50.0 |" in render_table(results)


def test_cli_mlm_and_render(trained_pair, tmp_path, capsys):
    out = tmp_path / "mlm.json"
    code = cli(["eval", "mlm", "--model", str(trained_pair[0]), "--dataset", str(PRODUCTS),
                "--text-columns", "fields.title", "--block-sizes", "32", "--k", "1,3", "--output", str(out)])
    assert code == 0 and out.is_file()
    assert cli(["eval", "render", str(out)]) == 0
    assert "fields.title 32 k=3" in capsys.readouterr().out
    assert cli(["eval", "mlm", "--model", str(trained_pair[0]), "--dataset", str(PRODUCTS),
                "--text-columns", "fields.title", "--output", str(out)]) == 2
    assert "exists" in capsys.readouterr().err


def test_clean_text_strips_html():
    assert clean_text("<b>Features</b><br> &amp; more&nbsp;text") == "Features & more text"


def test_packed_blocks_are_full_and_keep_every_masked_token(trained_pair):
    tokenizer = modeling_rexbert.load_tokenizer()
    texts = [clean_text(t) for t in load_split(PRODUCTS)["fields.description"]]
    examples = [e for i, t in enumerate(texts) if t
                for e in [mask_tokens(choose_masked_words(t, 0.15, 0, (0, i)), tokenizer, 8192)] if e]
    blocks = pack_blocks(examples, tokenizer, 128)
    assert all(len(ids) == 128 for ids, _ in blocks[:-1]) and len(blocks[-1][0]) <= 128
    assert all(ids[0] == tokenizer.cls_token_id and ids[-1] == tokenizer.sep_token_id for ids, _ in blocks)
    masked = sum(label != -100 for _, labels in examples for label in labels)
    assert sum(label != -100 for _, labels in blocks for label in labels) == masked
    results = evaluate_masked_lm([str(trained_pair[0])], str(PRODUCTS), ["fields.description"], [128], ks=(1,),
                                 packed=True, show_progress=False)
    assert results[0].settings["packed"] and results[0].settings["masked_tokens"] == masked
