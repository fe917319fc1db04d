"""The knowledge graph: build from the catalog, consistency after edits, PageRank, click prior, CLI."""

from __future__ import annotations

import json

import networkx as nx
import pytest

from conftest import write_corpus
from scout import IndexConfig, Scout
from scout.cli import main
from scout.config import BM25Config
from scout.graph import ClickPrior, EntityNotFoundError, KeyPhraseExtractor, KnowledgeGraph
from scout.graph.entities import MentionMatcher, entity_key, tokens_of
from scout.testing.fakes import FakeEmbedder

RECORDS = [
    {"id": "babbage", "title": "Charles Babbage", "aliases": ["Babbage"],
     "text": "Charles Babbage was an English mathematician. He designed the Analytical Engine, a mechanical computer."},
    {"id": "lovelace", "title": "Ada Lovelace",
     "text": "Ada Lovelace wrote the first program for the Analytical Engine. She worked with Babbage in London."},
    {"id": "engine", "title": "Analytical Engine", "text": "The Analytical Engine was a proposed mechanical general-purpose computer."},
    {"id": "london", "title": "London", "text": "London is the capital of England."},
]
LOG = [
    {"query": "analytical engine designer", "clicked_doc_id": "babbage", "session_id": "s1"},
    {"query": "analytical engine designer", "clicked_doc_id": "babbage", "session_id": "s2"},
    {"query": "analytical engine designer", "clicked_doc_id": "engine", "session_id": "s2"},
    {"query": "first computer program", "clicked_doc_id": "lovelace", "session_id": "s3"},
    {"query": "capital of england", "clicked_doc_id": "london", "session_id": "s4"},
]
FACTS = "subject,relation,object\nAda Lovelace,collaborated with,Charles Babbage\n"


def jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(row) + "\n" for row in rows)


def open_fake(path) -> Scout:
    return Scout.open(path, config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64))


@pytest.fixture
def corpus(tmp_path):
    return write_corpus(tmp_path / "docs", {"people.jsonl": jsonl(RECORDS), "log.jsonl": jsonl(LOG), "facts.csv": FACTS})


@pytest.fixture
def scout(tmp_path, corpus):
    index = open_fake(tmp_path / "index")
    index.ingest([corpus], progress=False)
    yield index
    index.close()


def edge_kinds(graph: nx.Graph, first: str, second: str) -> dict[str, int]:
    return graph.edges[first, second]["kinds"] if graph.has_edge(first, second) else {}


def chunk_of(graph: nx.Graph, doc_id: str) -> str:
    return next(node for node in graph[f"d:{doc_id}"] if graph.nodes[node].get("doc") == doc_id)


class TestEntities:
    def test_capitalised_spans_and_phrases(self):
        texts = ["The Bank of England raised rates.", "Rates at the Bank of England and the incubation period.", "An incubation period was seen.", "Long incubation period."]

        names = KeyPhraseExtractor(min_chunks=2, max_chunk_share=1.0).extract(texts)

        assert "Bank of England" in names
        assert "incubation period" in names
        assert "The Bank of England" not in names

    def test_sentence_opening_word_needs_mid_sentence_evidence(self):
        names = KeyPhraseExtractor().extract(["Visit Eiffel Tower today.", "Berlin is big.", "We like Berlin."])

        assert "Eiffel Tower" in names
        assert "Visit Eiffel Tower" not in names
        assert "Berlin" in names

    def test_key_folds_case_accents_possessive(self):
        assert entity_key("Lilú (Mythology)") == ("lilu", "mythology")
        assert entity_key("Babbage's") == ("babbage",)

    def test_matcher_prefers_longest_name(self):
        matcher = MentionMatcher({("new", "york"): "e:new york", ("york",): "e:york", ("new", "york", "city"): "e:nyc"})

        assert matcher.find("He moved to New York City, then York.") == ["e:nyc", "e:york"]
        assert matcher.find_in_tokens(tokens_of("New. York")) == ["e:york"]

    def test_proper_name_needs_capitals_in_text(self):
        matcher = MentionMatcher({("hell",): "e:hell"}, proper={("hell",)})

        assert matcher.find("a hell of a day") == []
        assert matcher.find("a hell of a day", case_sensitive=False) == ["e:hell"]
        assert matcher.find("Dante's Hell") == ["e:hell"]


class TestBuild:
    def test_titles_aliases_and_mentions(self, scout):
        graph = scout.store.graph.graph
        lovelace_chunk = chunk_of(graph, "lovelace")

        assert graph.nodes["e:charles babbage"]["homes"] == ["babbage"]
        assert graph.nodes["e:charles babbage"]["aliases"] == ["babbage"]
        assert "home" in edge_kinds(graph, "e:charles babbage", "d:babbage")
        assert "mentions" in edge_kinds(graph, lovelace_chunk, "e:charles babbage")
        assert "mentions" in edge_kinds(graph, lovelace_chunk, "d:babbage")
        assert "mentions" in edge_kinds(graph, lovelace_chunk, "d:london")
        assert not graph.has_edge(lovelace_chunk, "d:lovelace") or "mentions" not in edge_kinds(graph, lovelace_chunk, "d:lovelace")

    def test_phrase_entities_and_cooccurrence(self, scout):
        graph = scout.store.graph.graph

        assert graph.nodes["e:england"]["origins"] == ["phrase"]
        assert edge_kinds(graph, "e:analytical engine", "e:charles babbage")["cooccurs"] == 2

    def test_fact_edges_carry_relations(self, scout):
        graph = scout.store.graph.graph
        edge = graph.edges["e:ada lovelace", "e:charles babbage"]

        assert edge["kinds"]["fact"] == 1
        assert edge["relations"] == ["Ada Lovelace collaborated with Charles Babbage"]

    def test_search_log_clicks_and_sessions(self, scout):
        graph = scout.store.graph.graph

        assert graph.nodes["q:analytical engine designer"]["count"] == 3
        assert edge_kinds(graph, "q:analytical engine designer", "d:babbage") == {"click": 2}
        assert edge_kinds(graph, "q:analytical engine designer", "d:engine") == {"click": 1}
        assert edge_kinds(graph, "d:babbage", "d:engine")["session"] == 1
        assert "asks" in edge_kinds(graph, "q:analytical engine designer", "e:analytical engine")

    def test_graph_saved_and_reloaded_without_rebuild(self, scout, tmp_path, monkeypatch):
        generation = scout.store.graph.generation
        scout.close()
        monkeypatch.setattr("scout.graph.knowledge.build_graph", lambda *args: pytest.fail("graph rebuilt instead of loaded"))

        with open_fake(tmp_path / "index") as reopened:
            assert reopened.store.graph.generation == generation
            assert (tmp_path / "index" / "graph" / "generation.txt").read_text() == generation
            assert "e:charles babbage" in reopened.store.graph.graph

    def test_older_build_version_is_rebuilt(self, scout, tmp_path, monkeypatch):
        scout.close()
        monkeypatch.setattr("scout.graph.knowledge.BUILD_VERSION", 999)
        monkeypatch.setattr("scout.graph.build.BUILD_VERSION", 999)

        with open_fake(tmp_path / "index") as reopened:
            assert reopened.store.graph.graph.graph["build_version"] == 999

    def test_damaged_graph_file_is_rebuilt(self, scout, tmp_path):
        expected = set(scout.store.graph.graph.edges)
        scout.close()
        (tmp_path / "index" / "graph" / "graph.pickle").write_bytes(b"truncated")

        with open_fake(tmp_path / "index") as reopened:
            assert set(reopened.store.graph.graph.edges) == expected


class TestConsistency:
    def test_edit_and_delete_leave_no_stale_graph(self, tmp_path, corpus):
        index = open_fake(tmp_path / "index")
        index.ingest([corpus], progress=False)
        before = index.store.graph.graph
        old_lovelace_chunk = chunk_of(before, "lovelace")
        assert "e:london" in before
        assert "e:england" in before

        edited = [dict(r, text="Ada Lovelace wrote the first program for the Analytical Engine.") if r["id"] == "lovelace" else r for r in RECORDS if r["id"] != "london"]
        (corpus / "people.jsonl").write_text(jsonl(edited), encoding="utf-8")
        report = index.ingest([corpus], progress=False)
        after = index.store.graph.graph

        assert report.updated == ["lovelace"]
        assert report.deleted == ["london"]
        assert after.graph["generation"] == str(report.run_id)
        assert "d:london" not in after
        assert "e:london" not in after
        assert "e:england" not in after
        assert old_lovelace_chunk not in after
        assert not after.has_edge(chunk_of(after, "lovelace"), "d:babbage")
        assert not any(node.startswith("c:london") for node in after)
        assert "d:london" not in after["q:capital of england"]

        fresh = open_fake(tmp_path / "fresh")
        fresh.ingest([corpus], progress=False)
        rebuilt = fresh.store.graph.graph
        assert set(after.nodes) == set(rebuilt.nodes)
        assert {frozenset(edge) for edge in after.edges} == {frozenset(edge) for edge in rebuilt.edges}
        for first, second, data in after.edges(data=True):
            assert data["kinds"] == rebuilt.edges[first, second]["kinds"], (first, second)
        index.close()
        fresh.close()

    def test_unchanged_ingest_keeps_generation(self, scout, corpus):
        generation = scout.store.graph.generation

        report = scout.ingest([corpus], progress=False)

        assert report.unchanged == 4
        assert scout.store.graph.generation == generation


class TestPageRank:
    @staticmethod
    def hand_made() -> KnowledgeGraph:
        """Build a graph where chunk c1 names e:a and e:b, e:b's home d2 contains c2, and c3 is unreachable."""
        graph = nx.Graph(generation="1")
        for doc in ("d1", "d2", "d3"):
            graph.add_node(f"d:{doc}", kind="document", title=doc, acl=["public"])
        for chunk, doc in (("c1", "d1"), ("c2", "d2"), ("c3", "d3")):
            graph.add_node(f"c:{chunk}", kind="chunk", doc=doc)
            graph.add_edge(f"d:{doc}", f"c:{chunk}", kinds={"contains": 1}, weight=1.0)
        for name, homes, chunks in (("a", [], 1), ("b", ["d2"], 1)):
            graph.add_node(f"e:{name}", kind="entity", name=name.upper(), aliases=[], homes=homes, origins=["phrase"], chunks=chunks)
        graph.add_edge("e:a", "c:c1", kinds={"mentions": 1}, weight=1.0)
        graph.add_edge("e:b", "c:c1", kinds={"mentions": 1}, weight=1.0)
        graph.add_edge("e:b", "d:d2", kinds={"home": 1}, weight=2.0)
        return KnowledgeGraph(graph)

    def test_two_node_walk_matches_closed_form(self):
        # p = (1 - alpha) * seed + alpha * P^T p on x - y gives p_x = 1 / (1 + alpha), p_y = alpha / (1 + alpha).
        graph = nx.Graph(generation="1")
        graph.add_node("e:x", kind="entity")
        graph.add_node("e:y", kind="entity")
        graph.add_edge("e:x", "e:y", weight=1.0)

        scores = KnowledgeGraph(graph).personalized_pagerank({"e:x": 1.0}, {"public"}, alpha=0.5)

        assert scores["e:x"] == pytest.approx(2 / 3, abs=1e-6)
        assert scores["e:y"] == pytest.approx(1 / 3, abs=1e-6)

    def test_chunks_ranked_by_hops_from_query_entity(self):
        knowledge = self.hand_made()

        ranking = knowledge.rank_chunks("tell me about A", {"public"}, limit=10)

        assert [chunk for chunk, _ in ranking] == ["c1", "c2"]

    def test_query_naming_no_entity_ranks_nothing(self):
        assert self.hand_made().rank_chunks("nothing known here", {"public"}, limit=10) == []

    def test_rarer_entity_gets_more_seed_weight(self):
        knowledge = self.hand_made()
        knowledge.graph.nodes["e:a"]["chunks"] = 3

        assert knowledge.link("A and B") == {"e:a": pytest.approx(0.25), "e:b": pytest.approx(0.75)}

    def test_chunk_inherits_document_score(self):
        knowledge = self.hand_made()
        scores = knowledge.personalized_pagerank(knowledge.link("A"), {"public"})

        ranking = dict(knowledge.rank_chunks("A", {"public"}, limit=10))

        assert ranking["c2"] == pytest.approx(scores["c:c2"] + scores["d:d2"])

    def test_passage_seeds_rank_without_entities(self):
        ranking = self.hand_made().rank_chunks("nothing known here", {"public"}, limit=10, passages={"c3": 0.2})

        assert [chunk for chunk, _ in ranking] == ["c3"]

    def test_graph_signal_reaches_second_hop(self, scout):
        hits = scout.search("Who worked with Ada Lovelace?", k=10, signals=["graph"])
        docs = [hit.doc_id for hit in hits]

        assert docs[0] == "lovelace"
        assert "babbage" in docs


class TestClickPrior:
    def test_similar_logged_query_clicks_rank_first(self, scout):
        hits = scout.search("who designed the analytical engine", k=5, signals=["click"])

        assert [hit.doc_id for hit in hits] == ["babbage", "engine"]
        assert hits[0].signals["click"] > hits[1].signals["click"]

    def test_click_counts_weight_documents(self):
        graph = nx.Graph(generation="1")
        graph.add_node("q:mask rules", kind="query", text="mask rules", count=4)
        graph.add_node("q:soap", kind="query", text="soap", count=1)
        for doc in ("masks", "faq", "soap"):
            graph.add_node(f"d:{doc}", kind="document", title=doc, acl=["public"])
        graph.add_edge("q:mask rules", "d:masks", kinds={"click": 3}, weight=3.0)
        graph.add_edge("q:mask rules", "d:faq", kinds={"click": 1}, weight=1.0)
        graph.add_edge("q:soap", "d:soap", kinds={"click": 1}, weight=1.0)
        prior = ClickPrior(graph, BM25Config())

        scores = prior.document_scores("mask rules", visible=None)

        assert scores["masks"] == pytest.approx(3.0)
        assert scores["faq"] == pytest.approx(1.0)
        assert "soap" not in scores
        assert prior.document_scores("mask rules", visible={"faq"}) == {"faq": pytest.approx(1.0)}

    def test_related_queries_exclude_the_query(self, scout):
        related = scout.related_queries("analytical engine", k=3)

        assert [query.query for query in related] == ["analytical engine designer"]
        assert related[0].count == 3
        assert scout.related_queries("analytical engine designer", k=3) == []


class TestRetrieval:
    def test_hits_carry_graph_and_click_signals(self, scout):
        hits = scout.search("Who designed the Analytical Engine?", k=3)

        assert "graph" in hits[0].signals
        assert "click" in hits[0].signals
        assert {"graph", "click"} <= set(hits[0].ranks)
        assert hits[0].doc_id in {"babbage", "engine"}

    def test_restricted_document_stays_hidden(self, tmp_path, corpus):
        secret = write_corpus(tmp_path / "secret", {"plans.md": "# Project Nightingale\n\nProject Nightingale builds on the Analytical Engine.\n"})
        index = open_fake(tmp_path / "index")
        index.ingest([corpus], progress=False)
        index.ingest([secret], acl=["research"], progress=False)

        public = index.search("Project Nightingale", k=10, signals=["graph"])
        research = index.search("Project Nightingale", k=10, signals=["graph"], groups=["research"])

        assert "plans" not in {hit.doc_id for hit in public}
        assert research[0].doc_id == "plans"
        with pytest.raises(EntityNotFoundError):
            index.entity("Project Nightingale")
        assert index.entity("Project Nightingale", groups=["research"]).documents[0].doc_id == "plans"
        assert "plans" not in {d.doc_id for d in index.entity("Analytical Engine").documents}
        index.close()


class TestEntityApi:
    def test_neighbourhood_lists_documents_entities_queries(self, scout):
        entity = scout.entity("analytical engine")

        assert entity.name == "Analytical Engine"
        assert entity.documents[0].doc_id == "engine"
        assert entity.documents[0].home
        assert {"babbage", "lovelace"} <= {d.doc_id for d in entity.documents}
        assert "Charles Babbage" in {e.name for e in entity.entities}
        assert "analytical engine designer" in {q.query for q in entity.queries}

    def test_unknown_entity_suggests_close_matches(self, scout):
        with pytest.raises(EntityNotFoundError, match="Charles Babbage") as error:
            scout.entity("Charles Babage")

        assert error.value.close_matches[0] == "Charles Babbage"


class TestCli:
    def test_graph_prints_neighbourhood(self, scout, tmp_path, capsys):
        scout.close()

        assert main(["graph", "--index", str(tmp_path / "index"), "charles babbage"]) == 0

        out = capsys.readouterr().out
        assert out.startswith("Charles Babbage  (also: babbage)")
        assert "  babbage  [Charles Babbage]  home" in out
        assert "  lovelace  [Ada Lovelace]  1 mention" in out
        assert "fact: Ada Lovelace collaborated with Charles Babbage" in out
        assert "analytical engine designer  (click, 3x)" in out

    def test_graph_unknown_entity_fails_with_hint(self, scout, tmp_path, capsys):
        scout.close()

        assert main(["graph", "--index", str(tmp_path / "index"), "Lovelase"]) == 2

        err = capsys.readouterr().err
        assert "entity 'Lovelase' not found" in err
        assert "'Ada Lovelace'" in err

    def test_graph_json(self, scout, tmp_path, capsys):
        scout.close()

        assert main(["graph", "--index", str(tmp_path / "index"), "London", "--json"]) == 0

        data = json.loads(capsys.readouterr().out)
        assert data["name"] == "London"
        assert data["documents"][0] == {"doc_id": "london", "title": "London", "home": True, "mentions": 1}

    def test_search_related_prints_log_queries(self, scout, tmp_path, capsys, monkeypatch):
        scout.close()
        monkeypatch.setattr("scout.models.load_embedder", lambda model: FakeEmbedder(64))

        assert main(["search", "analytical engine", "--index", str(tmp_path / "index"), "-k", "2", "--related"]) == 0

        out = capsys.readouterr().out
        assert "related searches:" in out
        assert "analytical engine designer  (similarity" in out
        assert "graph=" in out
