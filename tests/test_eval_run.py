"""`scout eval` end to end on a tiny suite with fake models: outputs, freshness, resume and the CLI."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

# ranx compiles its metrics with numba on first use, which takes tens of CPU seconds per test
# session. Without the JIT the same functions run unchanged as plain Python.
os.environ.setdefault("NUMBA_DISABLE_JIT", "1")

from scout.config import IndexConfig
from scout.errors import GeneratorError
from scout.eval.freshness import FreshnessEdit
from scout.eval.runner import EvalConfig, run_eval
from scout.eval.suites import EvalQuestion, Suite
from scout.testing.fakes import FakeEmbedder, FakeGenerator

DOCUMENTS = [
    {"id": "gate", "title": "Brandenburg Gate", "text": "The Brandenburg Gate has 12 columns. It stands in Berlin."},
    {"id": "tower", "title": "Eiffel Tower", "text": "The Eiffel Tower is 330 metres tall. It stands in Paris."},
    {"id": "colosseum", "title": "Colosseum", "text": "The Colosseum held 50000 spectators. It stands in Rome."},
]
QUESTIONS = [
    EvalQuestion("q1", "How many columns has the Brandenburg Gate?", ("12",), ("gate",), kind="landmark"),
    EvalQuestion("q2", "How tall is the Eiffel Tower?", ("330 metres",), ("tower",), kind="landmark"),
    EvalQuestion("q3", "How many spectators did the Colosseum hold?", ("50000",), ("colosseum",), kind="landmark"),
    EvalQuestion("q4", "Which bakery sells the best sourdough?", (), (), kind="unanswerable"),
]
FRESHNESS = FreshnessEdit("gate", "12", "14", "How many columns has the Brandenburg Gate?")
PNGS = ("quality_vs_cost.png", "latency.png", "quality.png")


class FailingGenerator:
    """The fake generator, raising `error` once it has answered `calls` prompts."""

    backend = "fake"
    model = "fake-failing"

    def __init__(self, calls: int, error: Exception | None = None) -> None:
        self.remaining = calls
        self.calls = 0
        self.error = error or RuntimeError("simulated crash")

    def stream(self, prompt, max_tokens):
        if self.remaining == 0:
            raise self.error
        self.remaining -= 1
        self.calls += 1
        yield from FakeGenerator().stream(prompt, max_tokens)


def write_suite(folder: Path, freshness: FreshnessEdit | None = FRESHNESS) -> Suite:
    documents = folder / "documents"
    documents.mkdir(parents=True)
    (documents / "landmarks.jsonl").write_text("".join(json.dumps(doc) + "\n" for doc in DOCUMENTS), encoding="utf-8")
    return Suite("tiny", list(QUESTIONS), documents, description="four questions about landmarks", freshness=freshness)


def evaluate(tmp_path: Path, systems: str, suite: Suite, freshness: bool = False, generators=None) -> dict:
    config = EvalConfig(suite="tiny", systems=systems, index=tmp_path / "index", out=tmp_path / "report", freshness=freshness, command="scout eval --suite tiny")
    return run_eval(config, suite=suite, index_config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64), generators=generators, progress=False)


def read_records(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "report" / "results.jsonl").read_text().splitlines()]


def test_full_run_writes_report(tmp_path):
    suite = write_suite(tmp_path / "suite")

    results = evaluate(tmp_path, "rag:fake,oracle:fake,closed-book:fake", suite, freshness=True)

    report = tmp_path / "report"
    saved = json.loads((report / "results.json").read_text())
    assert saved["systems"].keys() == {"rag:fake", "oracle:fake", "closed-book:fake"}
    assert len([r for r in saved["records"] if r["phase"] == "main"]) == 12
    markdown = (report / "report.md").read_text()
    assert "scout eval --suite tiny" in markdown
    assert "| `rag:fake` |" in markdown
    assert "## Freshness" in markdown
    for name in PNGS:
        assert (report / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert results["hardware"]["cpu_cores"] >= 1
    # No gold answer shares a word with its question.
    assert results["suite"]["question_echo_f1"] == 0.0
    assert "Answering each question with its own text scores F1" in markdown


def test_rag_metrics_on_tiny_suite(tmp_path):
    results = evaluate(tmp_path, "rag:fake,oracle:fake,closed-book:fake", write_suite(tmp_path / "suite"))

    rag, oracle, closed = (results["systems"][name] for name in ("rag:fake", "oracle:fake", "closed-book:fake"))
    # The fake generator copies the best source's first sentence, e.g. "The Brandenburg Gate has 12 columns."
    assert rag["recall@4"] == 1.0
    assert rag["mrr"] == 1.0
    assert rag["citation_precision"] == 1.0
    assert rag["citation_recall"] == 1.0
    assert rag["groundedness"] == 1.0
    assert rag["em"] == 0.0
    assert 0 < rag["f1"] < 1
    assert rag["usd_per_1000_queries"] == 0.0
    assert rag["answer_in_sources"] == 1.0
    assert rag["raw_f1"] == rag["f1"]
    assert oracle["recall@4"] is None
    assert oracle["abstention_rate_unanswerable"] == 1.0
    assert closed["false_abstention_rate"] == 1.0
    assert closed["citation_recall"] is None
    assert closed["answer_in_sources"] is None


def test_freshness_rag_gives_new_answer(tmp_path):
    results = evaluate(tmp_path, "rag:fake,closed-book:fake", write_suite(tmp_path / "suite"), freshness=True)

    rows = results["freshness"]["systems"]
    assert rows["rag:fake"]["freshness-before"]["contains_old"]
    assert rows["rag:fake"]["freshness-after"]["contains_new"]
    assert rows["rag:fake"]["freshness-after"]["sources_contain_expected"]
    assert rows["rag:fake"]["freshness-after"]["raw_contains_new"]
    assert rows["closed-book:fake"]["freshness-after"]["sources_contain_expected"] is None
    assert not rows["closed-book:fake"]["freshness-after"]["contains_new"]
    assert results["freshness"]["reingest_seconds"] >= 0


def test_freshness_restores_document(tmp_path):
    evaluate(tmp_path, "rag:fake", write_suite(tmp_path / "suite"), freshness=True)

    from scout import Scout

    with Scout.open(tmp_path / "index", embedder=FakeEmbedder(64)) as scout:
        assert "12 columns" in scout.store.catalog.document_text("gate")


def test_freshness_picks_numeric_edit(tmp_path):
    results = evaluate(tmp_path, "rag:fake", write_suite(tmp_path / "suite", freshness=None), freshness=True)

    assert results["freshness"]["edit"]["doc_id"] == "gate"
    assert results["freshness"]["edit"]["new"] == "19"


def test_resume_skips_finished_questions(tmp_path):
    suite = write_suite(tmp_path / "suite")

    with pytest.raises(RuntimeError, match="simulated crash"):
        evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": FailingGenerator(calls=2)})
    first = read_records(tmp_path)
    assert [r["question_id"] for r in first] == ["q1", "q2"]

    counting = FailingGenerator(calls=100)
    results = evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": counting})

    assert counting.calls == 2
    assert [r["question_id"] for r in read_records(tmp_path)] == ["q1", "q2", "q3", "q4"]
    assert results["systems"]["rag:fake"]["questions"] == 4
    assert read_records(tmp_path)[:2] == first


def test_rerun_of_finished_run_asks_nothing(tmp_path):
    suite = write_suite(tmp_path / "suite")
    evaluate(tmp_path, "rag:fake", suite)

    counting = FailingGenerator(calls=0)
    results = evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": counting})

    assert counting.calls == 0
    assert results["index"]["reused"]


def test_rerun_with_other_k_asks_again(tmp_path):
    suite = write_suite(tmp_path / "suite")
    evaluate(tmp_path, "rag:fake", suite)
    config = EvalConfig(suite="tiny", systems="rag:fake", index=tmp_path / "index", out=tmp_path / "report", k=2)
    counting = FailingGenerator(calls=100)

    results = run_eval(config, suite=suite, embedder=FakeEmbedder(64), generators={"rag:fake": counting}, progress=False)

    assert counting.calls == 4
    assert {r["k"] for r in results["records"]} == {2}


def test_incomplete_line_is_asked_again(tmp_path):
    suite = write_suite(tmp_path / "suite")
    evaluate(tmp_path, "rag:fake", suite)
    path = tmp_path / "report" / "results.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:40])

    counting = FailingGenerator(calls=100)
    evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": counting})

    assert counting.calls == 1
    assert len(read_records_skipping_broken(path)) == 4


def read_records_skipping_broken(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_generator_error_is_recorded_and_retried(tmp_path):
    suite = write_suite(tmp_path / "suite")
    failing = FailingGenerator(calls=3, error=GeneratorError("API timed out"))

    results = evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": failing})

    assert results["systems"]["rag:fake"]["errors"] == 1
    assert results["systems"]["rag:fake"]["questions"] == 3

    counting = FailingGenerator(calls=100)
    results = evaluate(tmp_path, "rag:fake", suite, generators={"rag:fake": counting})

    assert counting.calls == 1
    assert results["systems"]["rag:fake"]["errors"] == 0


def test_cli_runs_folder_suite(tmp_path, monkeypatch, capsys):
    from scout.cli import main

    folder = tmp_path / "landmarks"
    write_suite(folder)
    questions = [{"id": q.id, "question": q.question, "answers": list(q.answers), "gold_doc_ids": list(q.gold_doc_ids)} for q in QUESTIONS]
    (folder / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in questions))
    # The CLI loads the configured embedder; a fake of the same dimension keeps the test offline and fast.
    monkeypatch.setattr("scout.models.load_embedder", lambda ref: FakeEmbedder(384))
    out = tmp_path / "report"

    code = main(["eval", "--suite", str(folder), "--systems", "rag:fake", "--index", str(tmp_path / "index"), "--out", str(out), "--limit", "3"])

    assert code == 0
    assert "rag:fake" in capsys.readouterr().out
    markdown = (out / "report.md").read_text()
    assert f"scout eval --suite {folder} --systems rag:fake" in markdown
    assert "--limit 3" in markdown
    assert json.loads((out / "results.json").read_text())["suite"]["questions_run"] == 3


def test_cli_rejects_unknown_suite(tmp_path, capsys):
    from scout.cli import main

    code = main(["eval", "--suite", "nope", "--systems", "rag:fake", "--index", str(tmp_path / "i"), "--out", str(tmp_path / "o")])

    assert code == 2
    assert "unknown suite 'nope'" in capsys.readouterr().err


def test_anthropic_cost_from_local_server(tmp_path, monkeypatch):
    from scout.testing.anthropic_server import FakeAnthropicServer

    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"claude-haiku-4-5": {"input_per_mtok": 1.0, "output_per_mtok": 5.0}}))
    suite = write_suite(tmp_path / "suite")
    config = EvalConfig(suite="tiny", systems="rag:anthropic", index=tmp_path / "index", out=tmp_path / "report", prices=prices)

    with FakeAnthropicServer(reply=lambda request: "The Brandenburg Gate has 12 columns. [1]") as server:
        monkeypatch.setenv("ANTHROPIC_BASE_URL", server.url)
        monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
        results = run_eval(config, suite=suite, index_config=IndexConfig.for_embedder("fake", 64), embedder=FakeEmbedder(64), progress=False)

    records = results["records"]
    expected = sum(r["input_tokens"] * 1.0 + r["output_tokens"] * 5.0 for r in records) / 1e6 / len(records) * 1000
    assert len(server.requests) == 4
    assert results["systems"]["rag:anthropic"]["usd_per_1000_queries"] == pytest.approx(expected)
    assert expected > 0
    assert "`claude-haiku-4-5` 1.0 in / 5.0 out" in (tmp_path / "report" / "report.md").read_text()


def test_checkpoint_systems_with_tiny_model(tmp_path):
    from scout.testing.tiny_model import build_tiny_causal_lm

    checkpoint = build_tiny_causal_lm(tmp_path / "checkpoint")
    (checkpoint / "scout_training.json").write_text(json.dumps({"kind": "finetune", "steps": 3, "cpu_minutes": 1.5}))
    suite = write_suite(tmp_path / "suite")
    suite.questions = suite.questions[:2]
    systems = f"closed-book:{checkpoint},rag+finetuned:{checkpoint}"

    results = evaluate(tmp_path, systems, suite)

    closed, tuned = results["systems"][f"closed-book:{checkpoint}"], results["systems"][f"rag+finetuned:{checkpoint}"]
    assert closed["questions"] == 2
    assert closed["training_cpu_minutes"] == 1.5
    assert closed["recall@4"] is None
    assert tuned["recall@4"] == 1.0
    assert tuned["output_tokens_mean"] > 0
    markdown = (tmp_path / "report" / "report.md").read_text()
    assert "finetune, 3 steps, 1.5 CPU minutes" in markdown
