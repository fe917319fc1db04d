"""Evaluation metrics against hand-computed values and against ranx; suite, system and price parsing."""

from __future__ import annotations

import json
import os
import math

import pytest

# ranx compiles its metrics with numba on first use, which takes tens of CPU seconds per test
# session. Without the JIT the same functions run unchanged as plain Python.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from scout.errors import ConfigError
from scout.eval.freshness import FreshnessEdit, numeric_freshness_edit
from scout.eval.metrics import (
    abstention_rates,
    citation_precision,
    citation_recall,
    contains_answer,
    document_ranking,
    exact_match,
    ndcg_at_k,
    normalize_answer,
    percentile,
    ranx_retrieval_scores,
    recall_at_k,
    reciprocal_rank,
    strip_citations,
    token_f1,
    usd_per_1000_queries,
)
from scout.eval.report import load_prices, record_cost_usd
from scout.eval.results import answer_in_sources
from scout.eval.suites import EvalQuestion, Suite, hotpot_title, is_held_out, load_sample_suite
from scout.eval.systems import parse_system, parse_systems, training_cost


class TestAnswerMetrics:
    def test_normalize_answer(self):
        assert normalize_answer("  The  Cat, a dog. ") == "cat dog"
        assert normalize_answer("An Eiffel-Tower!") == "eiffeltower"

    def test_exact_match_takes_max_over_gold(self):
        assert exact_match("the Eiffel Tower", ["Louvre", "Eiffel tower."]) == 1.0
        assert exact_match("Eiffel", ["Eiffel Tower"]) == 0.0

    def test_exact_match_unanswerable(self):
        assert exact_match("", []) == 1.0
        assert exact_match("Paris", []) == 0.0

    def test_token_f1_hand_computed(self):
        # prediction tokens: cat sat on mat (4); gold: cat on mat (3); overlap 3, P 3/4, R 1
        assert token_f1("the cat sat on the mat", ["cat on mat"]) == pytest.approx(2 * 0.75 / 1.75)
        # repeated tokens count once per match: overlap x1 y1, P = R = 2/3
        assert token_f1("x x y", ["x y y"]) == pytest.approx(2 / 3)
        assert token_f1("nothing shared", ["cat"]) == 0.0

    def test_token_f1_max_over_gold(self):
        assert token_f1("cat on mat", ["dog", "cat on mat"]) == 1.0

    def test_token_f1_empty(self):
        assert token_f1("", []) == 1.0
        assert token_f1("", ["cat"]) == 0.0
        assert token_f1("cat", []) == 0.0

    def test_strip_citations(self):
        assert strip_citations("Paris is the capital [1] of France [2, 3].") == "Paris is the capital of France ."

    def test_contains_answer_matches_whole_tokens(self):
        assert contains_answer("A total of 1311 workers [1].", "1311")
        assert not contains_answer("A total of 13110 workers.", "1311")
        assert contains_answer("It is the Eiffel Tower.", "eiffel tower")
        assert not contains_answer("anything", "")


class TestRetrievalMetrics:
    RANKING = ["d2", "d1", "d4"]
    RELEVANT = {"d1", "d3"}

    def test_recall_at_k(self):
        assert recall_at_k(self.RANKING, self.RELEVANT, 1) == 0.0
        assert recall_at_k(self.RANKING, self.RELEVANT, 2) == 0.5

    def test_ndcg_hand_computed(self):
        # one relevant document at rank 2 out of two relevant: (1/log2 3) / (1 + 1/log2 3)
        expected = (1 / math.log2(3)) / (1 + 1 / math.log2(3))
        assert ndcg_at_k(self.RANKING, self.RELEVANT, 10) == pytest.approx(expected)
        assert expected == pytest.approx(0.386853, abs=1e-6)

    def test_reciprocal_rank(self):
        assert reciprocal_rank(self.RANKING, self.RELEVANT) == 0.5
        assert reciprocal_rank(["d5"], self.RELEVANT) == 0.0

    def test_undefined_without_relevant(self):
        with pytest.raises(ValueError):
            recall_at_k(self.RANKING, set(), 2)

    def test_document_ranking_keeps_best_rank(self):
        assert document_ranking(["a", "b", "a", "c", "b"]) == ["a", "b", "c"]

    def test_ranx_matches_hand_values(self):
        qrels = {"q1": self.RELEVANT, "q2": {"d9"}, "q3": {"d7"}, "q4": set()}
        runs = {"q1": self.RANKING, "q2": ["d9", "d5"], "q3": []}

        scores = ranx_retrieval_scores(qrels, runs, k=2)

        assert set(scores) == {"q1", "q2", "q3"}
        assert scores["q1"]["recall@2"] == pytest.approx(0.5)
        assert scores["q1"]["ndcg@10"] == pytest.approx(0.386853, abs=1e-6)
        assert scores["q1"]["mrr"] == pytest.approx(0.5)
        assert scores["q2"] == pytest.approx({"recall@2": 1.0, "ndcg@10": 1.0, "mrr": 1.0})
        assert scores["q3"] == pytest.approx({"recall@2": 0.0, "ndcg@10": 0.0, "mrr": 0.0})

    def test_ranx_matches_reference_functions(self):
        qrels = {f"q{i}": {f"d{i}", f"d{i + 3}", f"d{(i * 7) % 11}"} for i in range(12)}
        runs = {f"q{i}": [f"d{(i * j + 1) % 13}" for j in range(1, 11)] for i in range(12)}

        scores = ranx_retrieval_scores(qrels, runs, k=4)

        for qid, relevant in qrels.items():
            ranking = document_ranking(runs[qid])
            assert scores[qid]["recall@4"] == pytest.approx(recall_at_k(ranking, relevant, 4))
            assert scores[qid]["ndcg@10"] == pytest.approx(ndcg_at_k(ranking, relevant, 10))
            assert scores[qid]["mrr"] == pytest.approx(reciprocal_rank(ranking, relevant))


class TestOtherMetrics:
    def test_citation_precision_and_recall(self):
        assert citation_precision({"a", "b"}, {"a", "c"}) == 0.5
        assert citation_recall({"a", "b"}, {"a", "c"}) == 0.5
        assert citation_precision(set(), {"a"}) is None
        assert citation_recall(set(), {"a"}) == 0.0
        assert citation_recall({"a"}, set()) is None

    def test_abstention_rates(self):
        rates = abstention_rates([True, False, True, True], [False, False, True, True])

        assert rates["abstention_rate_unanswerable"] == 0.5
        assert rates["false_abstention_rate"] == 1.0

    def test_abstention_rates_without_unanswerable(self):
        assert abstention_rates([False], [True])["abstention_rate_unanswerable"] is None

    def test_percentile_interpolates(self):
        assert percentile([100, 200, 300, 400], 50) == 250
        assert percentile([100, 200, 300, 400], 95) == pytest.approx(385)
        assert percentile([], 50) is None

    def test_cost_per_1000_queries(self):
        record = {"backend": "anthropic", "model": "claude-haiku-4-5-20251001", "input_tokens": 1000, "output_tokens": 200}
        prices = load_prices(None)

        assert record_cost_usd(record, prices) == pytest.approx(0.002)
        assert usd_per_1000_queries([0.002, 0.004]) == pytest.approx(3.0)
        assert record_cost_usd({**record, "backend": "local"}, prices) == 0.0
        assert record_cost_usd({**record, "model": "unpriced-model"}, prices) is None


class TestConfiguration:
    def test_prices_file_overrides_defaults(self, tmp_path):
        path = tmp_path / "prices.toml"
        path.write_text('[claude-haiku-4-5]\ninput_per_mtok = 2.0\noutput_per_mtok = 10.0\n')

        prices = load_prices(path)

        assert prices["claude-haiku-4-5"].input_per_mtok == 2.0
        assert "claude-3-5-haiku" in prices

    def test_prices_file_rejects_bad_entry(self, tmp_path):
        path = tmp_path / "prices.json"
        path.write_text(json.dumps({"claude-haiku-4-5": {"input": 1}}))

        with pytest.raises(ConfigError, match="input_per_mtok"):
            load_prices(path)

    def test_parse_systems(self, tmp_path):
        rag, oracle, closed, tuned = parse_systems(f"rag:local, oracle:anthropic=claude-haiku-4-5,closed-book:local,rag+finetuned:{tmp_path}")

        assert (rag.kind, rag.backend, rag.model) == ("rag", "local", None)
        assert (oracle.backend, oracle.model) == ("anthropic", "claude-haiku-4-5")
        assert closed.kind == "closed-book" and not closed.reads_sources
        assert (tuned.backend, tuned.model, tuned.checkpoint) == ("local", str(tmp_path), tmp_path)
        assert tuned.retrieves

    @pytest.mark.parametrize("name", ["rag", "rag:", "search:local", "rag:/some/checkpoint", "rag:fake=x"])
    def test_parse_system_rejects(self, name):
        with pytest.raises(ConfigError):
            parse_system(name)

    def test_parse_systems_rejects_repeats(self):
        with pytest.raises(ConfigError, match="more than once"):
            parse_systems("rag:fake,rag:fake")

    def test_training_cost_from_checkpoint(self, tmp_path):
        assert training_cost(tmp_path) is None
        (tmp_path / "scout_training.json").write_text(json.dumps({"cpu_seconds": 90, "steps": 3}))

        info = training_cost(tmp_path)

        assert info["cpu_minutes"] == 1.5
        assert info["steps"] == 3


class TestSuites:
    def test_select_spreads_over_kinds(self, tmp_path):
        questions = [EvalQuestion(f"a{i}", "q", ("x",), kind="a") for i in range(6)] + [EvalQuestion("b0", "q", kind="b")]
        suite = Suite("s", questions, tmp_path)

        # a gets 3 places and b its only question; a's are every second one of six.
        assert [q.id for q in suite.select(4)] == ["a0", "b0", "a2", "a4"]
        assert [q.id for q in suite.select(2)] == ["a0", "b0"]
        assert len(suite.select(None)) == 7
        with pytest.raises(ConfigError):
            suite.select(0)

    def test_sample_suite_loads(self):
        suite = load_sample_suite(__import__("pathlib").Path(__file__).resolve().parents[1] / "sample_corpus")

        assert len(suite.questions) == 81
        assert sum(not q.answerable for q in suite.questions) == 8
        article = suite.documents / "articles" / "pmc7090843.md"
        assert article.read_text(encoding="utf-8").count(suite.freshness.old) == 2

    def test_held_out_split_is_stable(self):
        held_out = [i for i in range(1000) if is_held_out("covid_qa", str(i))]

        assert 150 < len(held_out) < 250
        assert held_out == [i for i in range(1000) if is_held_out("covid_qa", str(i))]

    def test_hotpot_title(self):
        assert hotpot_title("Ed Wood (film). Ed Wood is a 1994 film.") == "Ed Wood (film)"
        assert hotpot_title("St. Andre (Goa). St. Andre is a constituency.") == "St. Andre (Goa)"


class TestFreshnessEdit:
    def test_apply_replaces_standalone_values(self):
        edit = FreshnessEdit("d", "12", "14", "How many?")

        assert edit.apply("It has 12 columns, not 120 or 1.12; 12.") == "It has 14 columns, not 120 or 1.12; 14."

    def test_apply_rejects_missing_value(self):
        with pytest.raises(ConfigError, match="does not occur"):
            FreshnessEdit("d", "99", "100", "q").apply("no such number")

    def test_numeric_edit_picks_single_occurrence(self):
        texts = {"a": "It has 5 doors and 5 windows.", "b": "It has 12 columns and 19 arches."}
        questions = [
            EvalQuestion("q1", "How many doors?", ("5",), ("a",)),
            EvalQuestion("q2", "Name the gate?", ("Brandenburg",), ("b",)),
            EvalQuestion("q3", "How many columns?", ("12",), ("b",)),
        ]

        edit = numeric_freshness_edit(questions, texts.get)

        # 5 occurs twice in "a"; 12 + 7 = 19 occurs in "b", so the offset moves on to 20.
        assert edit == FreshnessEdit("b", "12", "20", "How many columns?")


class TestAnswerInSources:
    def test_found_as_whole_tokens(self):
        assert answer_in_sources(["The gate has 12 columns."], ("12",))
        assert not answer_in_sources(["The gate has 120 columns."], ("12",))

    def test_unanswerable_is_none(self):
        assert answer_in_sources(["anything"], ()) is None


def test_chart_short_names():
    from scout.eval.charts import short_name

    assert short_name("closed-book:/work/checkpoints/distill/") == "closed-book:distill"
    assert short_name("rag:local=packaged:smollm2-135m-instruct") == "rag:local=packaged:smollm2-135m-instruct"
