"""The Markdown report of an evaluation: setup, metric tables, freshness, charts and example answers."""

from __future__ import annotations

import textwrap

from scout.eval.systems import RETRIEVAL_DEPTH

METRIC_DEFINITIONS = """\
- **EM / F1**: exact match and token F1 after SQuAD v1.1 normalisation (lower case, no punctuation or
  articles), maximum over the gold answers, on answerable questions. An abstention scores 0. Citation
  markers are removed first. Long generated sentences score low EM against short extractive answers.
  **F1 before support check**: F1 of the generator's own text, before Scout replaced an answer
  its sources do not support with the abstention message.
- **recall@k, nDCG@10, MRR**: computed with ranx over the top-10 document ids of Scout's hybrid search
  (chunks collapsed to their document), binary relevance, for questions with gold documents.
- **answer in sources**: share of answerable questions where a gold answer occurs, as whole
  normalised tokens, in the passages the generator read.
- **citation precision**: share of cited documents that are gold documents (answers with citations).
  **citation recall**: share of gold documents cited (answerable questions; an abstention scores 0).
- **groundedness**: share of the answer's content words found in the passages it cites, words
  repeated from the question left out (`scout.generate.citations.support`, a lexical proxy), over
  answers that did not abstain.
- **abstains on unanswerable**: share of unanswerable questions answered with an abstention.
  **false abstentions**: share of answerable questions answered with an abstention.
- **latency**: wall time of one answer (retrieval and generation; the extra top-10 search used for
  retrieval metrics is not counted). **CPU s/query**: CPU time of the whole process over the same span.
- **$ / 1,000 queries**: API price of the tokens (prices under Setup); local models cost $0 in API fees.
"""


def render_report(results: dict, charts: list[tuple[str, str]]) -> str:
    sections = [
        _header(results), _setup(results), _quality_table(results), _retrieval_table(results),
        _cost_table(results), _kinds_table(results), _freshness(results), _charts(charts),
        _examples(results), "## Metric definitions\n\n" + METRIC_DEFINITIONS, _notes(results),
    ]
    return "\n".join(section for section in sections if section)


def fmt(value, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _seconds(ms: float | None) -> str:
    return "n/a" if ms is None else f"{ms / 1000:.1f} s"


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _header(results: dict) -> str:
    config = results["config"]
    return (
        f"# Scout evaluation: `{results['suite']['name']}` suite\n\n"
        f"Report written on {results['date']}{_code_line(results.get('code') or {})}. Command:\n\n```\n{config['command']}\n```\n"
    )


def _code_line(code: dict) -> str:
    if not code.get("commit"):
        return ""
    changes = " with uncommitted changes under `scout/`" if code["uncommitted_changes"] else ""
    return f" at commit `{code['commit']}`{changes}"


def _setup(results: dict) -> str:
    suite, index, hardware = results["suite"], results["index"], results["hardware"]
    index_config = results["config"]["index"]
    kinds = ", ".join(f"{kind} {count}" for kind, count in suite["question_kinds"].items())
    lines = [
        "## Setup\n",
        f"- **Suite**: {suite['description'] or suite['name']}. {suite['questions_run']} of {suite['questions_total']} questions run "
        f"({suite['answerable']} answerable, {suite['unanswerable']} unanswerable; {kinds}). Gold documents: {suite['gold_documents']}.",
        f"- **Index**: {index['documents']} documents, {index['chunks']} chunks; "
        f"{'reused' if index['reused'] else 'built or updated'} ({index['ingest']}). "
        f"Embedder `{index_config['embedder']['model']}`, chunks of {index_config['chunking']['chunk_size']} tokens, "
        f"{index_config['fusion']['method']} fusion. Each generator reads k={results['k']} passages; max "
        f"{index_config['generator']['max_tokens']} output tokens, minimum support {index_config['generator']['min_support']}.",
        f"- **Hardware**: {hardware['cpu']}, {hardware['cpu_cores']} cores, {hardware['memory_gb']} GB RAM, {hardware['platform']}; "
        f"Python {hardware['python']}, torch {hardware.get('torch')}, transformers {hardware.get('transformers')}, ranx {hardware.get('ranx')}.",
        "- **Systems**: " + "; ".join(f"`{name}` ({m['backend']} `{m['model']}`)" for name, m in results["systems"].items()) + ".",
        "- **Prices** (configuration, US dollars per million tokens): "
        + "; ".join(f"`{model}` {p['input_per_mtok']} in / {p['output_per_mtok']} out" for model, p in results["prices"].items())
        + ". Local and fake generators cost $0 in API fees, so their cost is CPU seconds.",
    ]
    lines += _training_lines(results["systems"])
    if index["missing_gold_documents"]:
        lines.append(f"- **Warning**: {len(index['missing_gold_documents'])} gold documents are missing from the index.")
    return "\n".join(lines) + "\n"


def _training_lines(systems: dict[str, dict]) -> list[str]:
    """One line per checkpoint, naming every system that uses it."""
    users: dict[str, list[str]] = {}
    trainings: dict[str, dict] = {}
    for name, m in systems.items():
        if m["training"]:
            users.setdefault(m["model"], []).append(f"`{name}`")
            trainings[m["model"]] = m["training"]
    return [_training_line(model, trainings[model], users[model]) for model in trainings]


def _training_line(model: str, training: dict, users: list[str]) -> str:
    """Describe a checkpoint from its `scout_training.json`, using the keys that are present."""
    parts = [f"- **Checkpoint `{model}`** (used by {', '.join(users)}): {training.get('kind', 'training run')}"]
    if training.get("steps") is not None:
        parts.append(f", {training['steps']} steps")
    if training.get("cpu_minutes") is not None:
        parts.append(f", {fmt(float(training['cpu_minutes']), 1)} CPU minutes")
    if training.get("command"):
        parts.append(f", trained with `{training['command']}`")
    return "".join(parts) + "."


def _quality_table(results: dict) -> str:
    rows = []
    for name, m in results["systems"].items():
        rows.append([
            f"`{name}`", fmt(m["questions"]), fmt(m["errors"]), fmt(m["em"]), fmt(m["f1"]), fmt(m["raw_f1"]),
            fmt(m["abstention_rate_unanswerable"]), fmt(m["false_abstention_rate"]), fmt(m["groundedness"]),
        ])
    header = [
        "system", "questions", "errors", "EM", "F1", "F1 before support check", "abstains on unanswerable",
        "false abstentions", "groundedness",
    ]
    echo = results["suite"].get("question_echo_f1")
    baseline = f"\nAnswering each question with its own text scores F1 {fmt(echo)}: an F1 near that shows no knowledge.\n" if echo is not None else ""
    return "## Answer quality\n\n" + _table(header, rows) + baseline


def _retrieval_table(results: dict) -> str:
    k = results["k"]
    rows = []
    for name, m in results["systems"].items():
        rows.append([
            f"`{name}`", fmt(m[f"recall@{k}"]), fmt(m[f"ndcg@{RETRIEVAL_DEPTH}"]), fmt(m["mrr"]),
            fmt(m["answer_in_sources"]), fmt(m["citation_precision"]), fmt(m["citation_recall"]),
        ])
    header = ["system", f"recall@{k}", f"nDCG@{RETRIEVAL_DEPTH}", "MRR", "answer in sources", "citation precision", "citation recall"]
    note = "Retrieval metrics apply to systems that retrieve; citation metrics to systems that read sources.\n\n"
    return "## Retrieval and citations\n\n" + note + _table(header, rows)


def _cost_table(results: dict) -> str:
    rows = []
    for name, m in results["systems"].items():
        rows.append([
            f"`{name}`", _seconds(m["latency_p50_ms"]), _seconds(m["latency_p95_ms"]), fmt(m["input_tokens_mean"], 0),
            fmt(m["output_tokens_mean"], 0), fmt(m["cpu_seconds_per_query"], 1), fmt(m["usd_per_1000_queries"], 2),
            fmt(m["training_cpu_minutes"], 1),
        ])
    header = ["system", "latency p50", "latency p95", "input tokens", "output tokens", "CPU s / query", "$ / 1,000 queries", "training CPU min"]
    note = "Token counts are means per query. Training CPU minutes come from a checkpoint's `scout_training.json`.\n\n"
    return "## Cost and latency\n\n" + note + _table(header, rows)


def _kinds_table(results: dict) -> str:
    kinds = sorted({kind for m in results["systems"].values() for kind in m["by_question_kind"]})
    if len(kinds) < 2:
        return ""
    rows = []
    for name, m in results["systems"].items():
        cells = [m["by_question_kind"].get(kind) for kind in kinds]
        rows.append([f"`{name}`"] + [fmt(c["f1"]) if c else "n/a" for c in cells])
    counts = {kind: next(m["by_question_kind"][kind]["questions"] for m in results["systems"].values() if kind in m["by_question_kind"]) for kind in kinds}
    header = ["system"] + [f"{kind} (n={counts[kind]})" for kind in kinds]
    return "## F1 by question kind\n\n" + _table(header, rows)


def _freshness(results: dict) -> str:
    freshness = results.get("freshness")
    if freshness is None:
        return ""
    if freshness.get("edit") is None:
        return f"## Freshness\n\nNot run: {freshness['note']}.\n"
    edit = freshness["edit"]
    lines = [
        "## Freshness\n",
        f"After the main run, every standalone `{edit['old']}` in document `{edit['doc_id']}` was replaced with "
        f"`{edit['new']}` and the document re-ingested in {fmt(freshness.get('reingest_seconds'), 1)} s. Each system was "
        f"asked *{edit['question']}* before and after the edit. Afterwards the original document was restored.\n",
    ]
    rows = []
    for name, row in freshness["systems"].items():
        cells = [f"`{name}`"]
        for phase in ("freshness-before", "freshness-after"):
            result = row.get(phase)
            cells.append("n/a" if result is None else _freshness_cell(result))
        after = row.get("freshness-after")
        cells.append("yes" if after and after["contains_new"] else "no")
        cells.append(_yes_no(after.get("sources_contain_expected")) if after else "n/a")
        cells.append(_clip(after["raw_answer"] or "(no text)") if after else "n/a")
        rows.append(cells)
    header = [
        "system", "before the edit", "after the edit", "gives the new answer", "its sources contain the new value",
        "model's text after the edit",
    ]
    return "\n".join(lines) + "\n" + _table(header, rows)


def _yes_no(value: bool | None) -> str:
    if value is None:
        return "n/a"
    return "yes" if value else "no"


def _freshness_cell(result: dict) -> str:
    if result["abstained"] and result.get("raw_contains_new"):
        return "abstains, though the model's text has the new value"
    if result["abstained"]:
        return "abstains"
    if result["contains_new"]:
        return "new value"
    if result["contains_old"]:
        return "old value"
    return "neither value"


def _charts(charts: list[tuple[str, str]]) -> str:
    return "## Charts\n\n" + "\n".join(f"![{caption}]({name})\n\n{caption}\n" for name, caption in charts)


def _examples(results: dict, count: int = 5) -> str:
    records = [r for r in results["records"] if r["phase"] == "main" and "error" not in r]
    question_ids = list(dict.fromkeys(r["question_id"] for r in records))[:count]
    if not question_ids:
        return ""
    lines = [f"## Example answers (first {len(question_ids)} questions)\n"]
    for question_id in question_ids:
        own = [r for r in records if r["question_id"] == question_id]
        gold = "; ".join(own[0]["gold_answers"]) or "(unanswerable)"
        lines.append(f"**{own[0]['question']}** (`{question_id}`), gold: {_clip(gold)}\n")
        for record in own:
            text = _clip(record["answer"])
            if record["abstained"] and record["raw_answer"] and record["raw_answer"] != record["answer"]:
                text += f" (the model wrote: {_clip(record['raw_answer'])})"
            lines.append(f"- `{record['system']}` (F1 {record['f1']:.2f}): {text}")
        lines.append("")
    return "\n".join(lines)


def _clip(text: str, width: int = 200) -> str:
    return textwrap.shorten(" ".join(text.split()), width, placeholder=" ...").replace("|", "\\|")


def _notes(results: dict) -> str:
    notes = results["config"].get("notes") or []
    if not notes:
        return ""
    return "## Notes\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"
