"""URL and adult filtering on datatrove's shipped blocklists (+ e-commerce additions), the
advertisement rule measured on the bundled product text, decontamination against eval sets, and the
resumable publish. All offline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from datatrove.data import Document

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parents[1] / "data"
ESCI_PRODUCTS = ROOT / "rexbert" / "corpus" / "eval" / "esci" / "sample-products.jsonl"


def _doc(text: str, **meta) -> Document:
    return Document(text=text, id=meta.pop("id", "t"), metadata=meta)


def esci_product_pages() -> list[Document]:
    """The bundled ESCI products as Amazon serves them: /<title slug>/dp/<ASIN>."""
    docs = []
    for line in open(ESCI_PRODUCTS, encoding="utf-8"):
        fields = json.loads(line)["fields"]
        slug = "-".join(re.findall(r"[A-Za-z0-9]+", fields["title"])[:8])
        docs.append(_doc(fields["title"], id=fields["id"], url=f"https://www.amazon.com/{slug}/dp/{fields['id']}"))
    return docs


PLANTED_URLS = {
    "https://www.pornhub.com/view_video.php?viewkey=1": "url_domain",  # our list and datatrove's
    "https://de.xhamster.com/videos/anything-123": "url_domain",
    "https://www.youjizz.com/videos/x": "url_domain",  # datatrove's (UT1) list only
    "https://shop.example.net/free-porn-deals": "url_hard_blacklisted",  # datatrove's banned words
    "https://www.example.org/replica-rolex-submariner-for-sale": "url_hard_blacklisted",  # ours: counterfeit
    "https://pharmacy.example.com/buy-kamagra-online": "url_hard_blacklisted",  # ours: pharma spam
    "https://jerseys.example.com/cheap-nfl-jerseys-from-china": "url_blacklisted_subword",  # ours: phrase
}


def test_url_filter_keeps_real_product_pages_and_drops_planted_adult_and_spam():
    from curation.filters import ProductURLFilter

    f = ProductURLFilter()
    pages = esci_product_pages()
    assert len(pages) == 16
    for doc in pages:
        assert f.filter(doc) is True, doc.metadata["url"]
    for url, reason in PLANTED_URLS.items():
        assert f.filter(_doc("A fine hoodie.", url=url)) == (False, reason), url
    assert f.filter(_doc("A review without a URL.")) is True
    # datatrove's phrases match inside the URL with separators removed; product names we allow back
    for url in ("https://www.amazon.com/Big-Black-Trash-Bags-Gallon/dp/B000000001",
                "https://www.homedepot.com/p/Golden-Shower-Head-Rainfall/1234"):
        assert f.filter(_doc("A product.", url=url)) is True, url


def test_unreadable_blocklist_is_a_clear_error(tmp_path):
    from curation.filters import ProductURLFilter
    from curation.filters.profanity import BlocklistError, BlocklistFilter

    with pytest.raises(BlocklistError, match="missing.txt"):
        ProductURLFilter(domain_files=(str(tmp_path / "missing.txt"),))
    (tmp_path / "bad.txt").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(BlocklistError, match="bad.txt"):
        BlocklistFilter(word_files=(str(tmp_path / "bad.txt"),))


def _ecommerce_texts() -> list[str]:
    with open(ROOT / "rexbert" / "corpus" / "ecommerce.jsonl", encoding="utf-8") as f:
        return [json.loads(line)["text"] for line in f]


def advertisement_kept_share(texts: list[str]) -> tuple[float, int]:
    """Share of characters of `texts` the advertisement rule keeps, and documents it drops."""
    from curation.filters import AdvertisementFilter

    f, before, after, dropped = AdvertisementFilter(), 0, 0, 0
    for text in texts:
        doc = _doc(text)
        before += len(text)
        if f.filter(doc) is True:
            after += len(doc.text)
        else:
            dropped += 1
    return after / before, dropped


def test_advertisement_rule_keeps_real_product_text_and_removes_planted_ads():
    from curation.filters import AdvertisementFilter

    share, dropped = advertisement_kept_share(_ecommerce_texts())
    print(f"advertisement rule: kept share of bundled product text {share:.4f}, documents dropped {dropped}")
    assert share >= 0.95
    f = AdvertisementFilter()
    doc = _doc("Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours.\nSponsored\n"
               "Customers who bought this item also bought\nAs an Amazon Associate I earn from qualifying purchases.\n"
               "Leak-proof lid, dishwasher safe. Free shipping on orders over $25.\nColor: Navy")
    assert f.filter(doc) is True  # half of its lines are ads: the ad lines go, the page stays
    assert doc.text == ("Stainless steel water bottle, 750 ml, keeps drinks cold for 24 hours.\n"
                        "Leak-proof lid, dishwasher safe. Free shipping on orders over $25.\nColor: Navy")
    ad_page = "SHOP NOW!\nLimited time offer: 70% off everything!\nUse code SAVE70 for 70% off\nClick here to claim\nA mug."
    assert f.filter(_doc(ad_page)) == (False, "advertisement")


def test_decontamination_removes_planted_eval_texts_and_counts_them_per_eval_set(tmp_path):
    from curation.decont import EvalDecontFilter, build_index, bundled_eval_sets, eval_texts

    sets = bundled_eval_sets()
    summary = build_index(sets, str(tmp_path / "index"), n_grams=13)
    assert set(summary) == {"esci_products", "glue_sst2"}
    assert summary["esci_products"]["texts"] >= 16 and summary["esci_products"]["ngrams"] > 1000
    f = EvalDecontFilter(str(tmp_path / "index"), 13)
    product = eval_texts(sets["esci_products"][0])[1]  # a product description, HTML removed
    long_sentences = [t for t in eval_texts(sets["glue_sst2"][0]) if len(t.split()) >= 16]
    assert long_sentences
    planted = {
        "esci_products": "Great deal on car electronics.\n" + product[:400] + "\nShips in two days.",
        "glue_sst2": "My notes from last week: " + long_sentences[0].upper() + " That was all.",
    }
    for name, text in planted.items():
        doc = _doc(text)
        assert f.filter(doc) == (False, "contaminated"), name
        assert doc.metadata["contaminated_task"] == name
    assert f.stats[f"contaminated_{'esci_products'}"].total == 1
    for text in _ecommerce_texts()[:300]:  # reviews, pros/cons: not in the eval sets
        assert f.filter(_doc(text)) is True


def test_publish_uses_upload_large_folder_and_dry_run_lists_files(tmp_path, monkeypatch):
    import huggingface_hub

    from curation.publish import publish

    folder = tmp_path / "dataset"
    (folder / "data").mkdir(parents=True)
    (folder / "README.md").write_text("# card")
    (folder / "data" / "train-00000.parquet").write_bytes(b"PAR1" * 10)
    (folder / ".cache" / "huggingface").mkdir(parents=True)  # upload_large_folder's resume state
    (folder / ".cache" / "huggingface" / "state").write_text("x")
    calls = []

    class FakeHfApi:
        def __init__(self, *args, **kwargs):
            pass

        def create_repo(self, repo_id, **kwargs):
            calls.append(("create_repo", repo_id, kwargs))

        def upload_large_folder(self, **kwargs):
            calls.append(("upload_large_folder", kwargs["repo_id"], kwargs))

        def upload_folder(self, **kwargs):
            raise AssertionError("upload_folder is not resumable across commits; use upload_large_folder")

    monkeypatch.setattr(huggingface_hub, "HfApi", FakeHfApi)
    expected = [("README.md", 6), ("data/train-00000.parquet", 40)]
    assert publish(str(folder), "me/ecom", dry_run=True) == expected
    assert calls == []
    assert publish(str(folder), "me/ecom", private=True) == expected
    assert [c[0] for c in calls] == ["create_repo", "upload_large_folder"]
    kwargs = calls[1][2]
    assert kwargs["repo_type"] == "dataset" and kwargs["folder_path"] == str(folder) and kwargs["private"] is True
    assert kwargs["ignore_patterns"] == [".cache/**"]
