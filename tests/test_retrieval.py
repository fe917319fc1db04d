"""Fusion functions against hand-computed values, and hybrid search on a real index."""

from __future__ import annotations

import pytest
from rank_bm25 import BM25Okapi

from conftest import write_corpus
from scout.config import BM25Config
from scout.errors import ConfigError
from scout.index.lexical import BM25Index, tokenize
from scout.retrieve.fusion import min_max_normalise, reciprocal_rank_fusion, weighted_fusion


def test_rrf_matches_hand_computed_scores():
    fused = dict(reciprocal_rank_fusion({"bm25": [("a", 5.0), ("b", 1.0)], "dense": [("b", 0.9), ("c", 0.1)]}, k=60))

    assert fused["a"] == pytest.approx(1 / 61)
    assert fused["b"] == pytest.approx(1 / 62 + 1 / 61)
    assert fused["c"] == pytest.approx(1 / 62)


def test_rrf_weights_scale_each_signal():
    fused = dict(reciprocal_rank_fusion({"bm25": [("a", 1.0)], "dense": [("b", 1.0)]}, k=10, weights={"bm25": 2.0, "dense": 1.0}))

    assert fused["a"] == pytest.approx(2 / 11)
    assert fused["b"] == pytest.approx(1 / 11)


def test_min_max_normalise_edges():
    assert min_max_normalise([]) == {}
    assert min_max_normalise([("a", 3.0), ("b", 3.0)]) == {"a": 1.0, "b": 1.0}
    assert min_max_normalise([("a", 4.0), ("b", 2.0), ("c", 3.0)]) == {"a": 1.0, "b": 0.0, "c": 0.5}


def test_weighted_fusion_hand_computed():
    fused = dict(weighted_fusion({"bm25": [("a", 10.0), ("b", 0.0)], "dense": [("b", 0.9), ("a", 0.6), ("c", 0.3)]}, {"bm25": 0.3, "dense": 0.7}))

    assert fused["a"] == pytest.approx(0.3 * 1.0 + 0.7 * 0.5)
    assert fused["b"] == pytest.approx(0.7 * 1.0)
    assert fused["c"] == pytest.approx(0.0)


def test_bm25_ranking_matches_rank_bm25():
    """bm25s with Robertson's formula scores like rank-bm25's BM25Okapi for query terms with positive IDF.

    bm25s leaves out the constant (k1 + 1) factor of the term-frequency part, which does not change
    the ranking, so its scores are the reference's divided by k1 + 1.
    """
    texts = [
        "the virus spreads through respiratory droplets",
        "wash hands with soap to stop the virus",
        "masks reduce droplet transmission in crowded rooms",
        "vaccines train the immune system",
        "the immune response to respiratory viruses varies",
        "soap breaks the lipid envelope of a virus",
    ] * 2
    config = BM25Config(k1=1.5, b=0.75, method="robertson", stemmer="", stopwords="")
    index = BM25Index.build([f"c{i}" for i in range(len(texts))], texts, config)
    reference = BM25Okapi(tokenize(texts, config), k1=1.5, b=0.75)

    for query in ["soap immune", "respiratory masks", "vaccines soap"]:
        ours = index.search(query, k=len(texts))
        expected = reference.get_scores(tokenize([query], config)[0])
        assert len(ours) == sum(1 for value in expected if value > 0)
        for chunk_id, score in ours:
            assert score * (1.5 + 1) == pytest.approx(expected[int(chunk_id[1:])], rel=1e-4)


def test_hybrid_hits_carry_each_signal(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    hits = scout_index.search("Which city has the Eiffel Tower?", k=3)

    assert hits[0].doc_id == "paris"
    assert {"bm25", "dense"} <= set(hits[0].signals)
    assert hits[0].ranks["bm25"] == 1
    assert hits[0].ranks["dense"] == 1
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_fusion_methods_are_selectable(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    rrf = scout_index.search("capital of Germany", k=2, fusion="rrf", signals=["bm25", "dense"])
    weighted = scout_index.search("capital of Germany", k=2, fusion="weighted", signals=["bm25", "dense"])

    assert rrf[0].doc_id == weighted[0].doc_id == "berlin"
    assert rrf[0].score == pytest.approx(2 / 61)
    assert weighted[0].score == pytest.approx(2.0)


def test_single_signal_search(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    hits = scout_index.search("soap", k=5, signals=["bm25"])

    assert [h.doc_id for h in hits] == ["faq/handwashing"]
    assert set(hits[0].signals) == {"bm25"}


def test_bad_search_arguments_raise(scout_index, tiny_corpus):
    scout_index.ingest([tiny_corpus], progress=False)

    with pytest.raises(ConfigError, match="empty query"):
        scout_index.search("   ")
    with pytest.raises(ConfigError, match="invalid fusion method 'max'"):
        scout_index.search("capital", fusion="max")
    with pytest.raises(ConfigError, match=r"unknown signal\(s\) \['colour'\]"):
        scout_index.search("capital", signals=["colour"])


def test_acl_hides_restricted_documents(scout_index, tmp_path):
    public = write_corpus(tmp_path / "public", {"menu.md": "# Menu\n\nThe canteen serves soup on Fridays."})
    private = write_corpus(
        tmp_path / "hr",
        {
            "salaries.md": "# Salaries\n\nThe salary review happens on Fridays in the canteen.",
            "records.jsonl": '{"id": "hr/bonus", "text": "Bonus payments on Fridays.", "acl": ["finance"]}\n',
        },
    )
    scout_index.ingest([public], progress=False)
    scout_index.ingest([private], acl=["hr"], progress=False)

    anonymous = {h.doc_id for h in scout_index.search("Fridays canteen salary bonus", k=10)}
    hr = {h.doc_id for h in scout_index.search("Fridays canteen salary bonus", k=10, groups=["hr"])}
    finance = {h.doc_id for h in scout_index.search("Fridays canteen salary bonus", k=10, groups=["finance"])}

    assert anonymous == {"menu"}
    assert hr == {"menu", "salaries"}
    assert finance == {"menu", "hr/bonus"}


def test_acl_applies_to_bm25_only_search(scout_index, tmp_path):
    private = write_corpus(tmp_path / "hr", {"salaries.md": "# Salaries\n\nSalary review."})
    scout_index.ingest([private], acl=["hr"], progress=False)

    assert scout_index.search("salary", signals=["bm25"]) == []
    assert scout_index.search("salary", signals=["dense"]) == []
