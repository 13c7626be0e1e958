"""The shipped tokenizer: OLMo's BPE + ModernBERT's special tokens, regenerated exactly by the builder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tokenizers import Tokenizer

from modeling_rexbert import build_tokenizer, check_vocab_matches, load_tokenizer, save_tokenizer
from modeling_rexbert.tokenization_rexbert import SHIPPED_TOKENIZER_DIR

DATA = Path(__file__).parents[1] / "data"
OLMO_JSON = DATA / "olmo-tokenizer" / "allenai_gpt-neox-olmo-dolma-v1_5.json"


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer()


def test_special_ids_and_vocab_size(tokenizer):
    expected = {"[UNK]": 50280, "[CLS]": 50281, "[SEP]": 50282, "[PAD]": 50283, "[MASK]": 50284,
                "[unused0]": 50285, "[unused82]": 50367}
    assert {token: tokenizer.convert_tokens_to_ids(token) for token in expected} == expected
    assert len(tokenizer) == 50368 and len(tokenizer) % 64 == 0
    assert (tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id, tokenizer.mask_token_id,
            tokenizer.unk_token_id) == (50281, 50282, 50283, 50284, 50280)
    assert tokenizer.model_max_length == 8192
    assert tokenizer.model_input_names == ["input_ids", "attention_mask"]


def test_templates_and_no_token_types(tokenizer):
    single = tokenizer("red running shoes")
    pair = tokenizer("red running shoes", "Nike Air Zoom, size 10")
    assert "token_type_ids" not in single
    assert single["input_ids"][0] == 50281 and single["input_ids"][-1] == 50282
    assert pair["input_ids"].count(50282) == 2 and pair["input_ids"][0] == 50281


def test_mask_absorbs_the_space_before_it(tokenizer):
    ids = tokenizer("Color: [MASK] blue", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_ids_to_tokens(ids) == ["Color", ":", "[MASK]", "Ġblue"]


@pytest.mark.parametrize("sample", ["text/Canon_G3-reviews.txt", "text/1861-Lincoln.txt",
                                    "esci_sample/sample-products.jsonl"])
def test_ordinary_text_gets_olmo_ids(tokenizer, sample):
    olmo = Tokenizer.from_file(str(OLMO_JSON))
    text = (DATA / sample).read_text(encoding="utf-8")
    ours = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ours) > 1000
    assert ours == olmo.encode(text).ids


def test_shipped_files_equal_builder_output(tmp_path):
    save_tokenizer(build_tokenizer(OLMO_JSON), tmp_path)
    shipped = sorted(p.name for p in SHIPPED_TOKENIZER_DIR.iterdir())
    assert shipped == sorted(p.name for p in tmp_path.iterdir())
    for name in shipped:
        assert (tmp_path / name).read_bytes() == (SHIPPED_TOKENIZER_DIR / name).read_bytes(), name


def test_builder_rejects_a_different_base_tokenizer(tmp_path):
    olmo = json.loads(OLMO_JSON.read_text())
    olmo["model"]["vocab"]["zzz-extra"] = 50280
    wrong = tmp_path / "wrong.json"
    wrong.write_text(json.dumps(olmo))
    with pytest.raises(ValueError, match="50281 tokens"):
        build_tokenizer(wrong)


def test_vocab_mismatch_is_a_clear_error(tokenizer):
    check_vocab_matches(tokenizer, 50368)
    with pytest.raises(ValueError, match="50368 tokens but the model's vocab_size is 30522"):
        check_vocab_matches(tokenizer, 30522)


def test_missing_tokenizer_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="tokenizer.json"):
        load_tokenizer(tmp_path)
