"""Evaluation metrics as pure functions: answers, retrieval, citations, abstention, latency, cost.

Answer metrics follow the official SQuAD v1.1 evaluation script: answers are normalised
(lower case, punctuation and the articles a/an/the removed, whitespace collapsed) and the score
of a prediction is its maximum over the gold answers.

>>> exact_match("The Eiffel Tower.", ["eiffel tower"])
1.0
>>> round(token_f1("the tower in Paris", ["Eiffel Tower"]), 3)
0.4
"""

from __future__ import annotations

import math
import re
import string
import warnings
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

from scout.generate.citations import CITATION

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = frozenset(string.punctuation)

RETRIEVAL_METRICS = ("recall@{k}", "ndcg@10", "mrr")


# Answers


def normalize_answer(text: str) -> str:
    """Normalise an answer as the SQuAD v1.1 script does: lower case, no punctuation or articles."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def strip_citations(text: str) -> str:
    """Remove `[n]` citation markers, so they do not count as answer tokens."""
    return " ".join(CITATION.sub(" ", text).split())


def exact_match(prediction: str, gold_answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised gold answer, else 0.0.

    With no gold answers (an unanswerable question) the score is 1.0 only for an empty prediction,
    the SQuAD v2.0 convention.
    """
    golds = list(gold_answers) or [""]
    predicted = normalize_answer(prediction)
    return max(float(predicted == normalize_answer(gold)) for gold in golds)


def token_f1(prediction: str, gold_answers: Sequence[str]) -> float:
    """Token-level F1 between the normalised prediction and the best-matching gold answer."""
    golds = list(gold_answers) or [""]
    return max(_token_f1(normalize_answer(prediction).split(), normalize_answer(gold).split()) for gold in golds)


def _token_f1(predicted: list[str], gold: list[str]) -> float:
    if not predicted or not gold:
        return float(predicted == gold)
    common = Counter(predicted) & Counter(gold)
    overlap = sum(common.values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(predicted)
    recall = overlap / len(gold)
    return 2 * precision * recall / (precision + recall)


def contains_answer(prediction: str, answer: str) -> bool:
    """True when the normalised answer occurs as a run of whole tokens in the normalised prediction."""
    needle = normalize_answer(answer).split()
    haystack = normalize_answer(prediction).split()
    if not needle:
        return False
    return any(haystack[i : i + len(needle)] == needle for i in range(len(haystack) - len(needle) + 1))


# Retrieval over document ids, binary relevance


def document_ranking(doc_ids: Iterable[str]) -> list[str]:
    """Collapse a ranked list of chunk-level document ids to documents, keeping each one's best rank."""
    return list(dict.fromkeys(doc_ids))


def recall_at_k(ranking: Sequence[str], relevant: set[str], k: int) -> float:
    """Share of the relevant documents found in the top `k`."""
    if not relevant:
        raise ValueError("recall@k is undefined without relevant documents")
    return len(set(ranking[:k]) & relevant) / len(relevant)


def ndcg_at_k(ranking: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """nDCG@k with binary gains and a log2(rank + 1) discount (Järvelin and Kekäläinen, 2002)."""
    if not relevant:
        raise ValueError("nDCG@k is undefined without relevant documents")
    dcg = sum(1 / math.log2(rank + 1) for rank, doc in enumerate(ranking[:k], start=1) if doc in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def reciprocal_rank(ranking: Sequence[str], relevant: set[str]) -> float:
    """1 / rank of the first relevant document, 0.0 when none was retrieved (MRR is its mean)."""
    for rank, doc in enumerate(ranking, start=1):
        if doc in relevant:
            return 1 / rank
    return 0.0


def ranx_retrieval_scores(qrels: Mapping[str, set[str]], runs: Mapping[str, Sequence[str]], k: int) -> dict[str, dict[str, float]]:
    """Score rankings with ranx: per query, recall@k, nDCG@10 and MRR over document ids.

    `qrels` maps a query id to its relevant document ids and `runs` maps it to the retrieved
    document ids, best first. Queries without relevant documents are left out, and a query
    missing from `runs` scores 0.
    """
    from ranx import Qrels, Run, evaluate

    judged = {qid: {doc: 1 for doc in docs} for qid, docs in qrels.items() if docs}
    if not judged:
        return {}
    scored = {qid: _rank_scores(runs.get(qid, ())) for qid in judged}
    names = [name.format(k=k) for name in RETRIEVAL_METRICS]
    qrels_table = Qrels(judged)
    with warnings.catch_warnings():
        # ranx 0.3.21 compiles with numba, which warns about an unsigned-to-signed cast it performs itself.
        warnings.simplefilter("ignore")
        values = evaluate(qrels_table, Run(scored), names, return_mean=False, make_comparable=True)
    query_ids = list(qrels_table.keys())
    return {qid: {name: float(values[name][i]) for name in names} for i, qid in enumerate(query_ids)}


def _rank_scores(ranking: Sequence[str]) -> dict[str, float]:
    """Scores that reproduce the rank order exactly: ranx sorts by score and fused scores may tie."""
    ranked = document_ranking(ranking)
    return {doc: float(len(ranked) - rank) for rank, doc in enumerate(ranked)}


# Citations, abstention, latency and cost


def citation_precision(cited: set[str], gold: set[str]) -> float | None:
    """Share of cited documents that are gold documents; None when nothing is cited."""
    if not cited:
        return None
    return len(cited & gold) / len(cited)


def citation_recall(cited: set[str], gold: set[str]) -> float | None:
    """Share of gold documents that are cited; None when the question has no gold documents."""
    if not gold:
        return None
    return len(cited & gold) / len(gold)


def abstention_rates(abstained: Sequence[bool], answerable: Sequence[bool]) -> dict[str, float | None]:
    """Abstention rate on unanswerable questions and false-abstention rate on answerable ones.

    A rate is None when the run has no question of that kind.
    """
    on_unanswerable = [a for a, ok in zip(abstained, answerable) if not ok]
    on_answerable = [a for a, ok in zip(abstained, answerable) if ok]
    return {
        "abstention_rate_unanswerable": mean(on_unanswerable),
        "false_abstention_rate": mean(on_answerable),
    }


def percentile(values: Sequence[float], q: float) -> float | None:
    """Compute the q-th percentile (0-100) with linear interpolation, numpy's default; None for no values."""
    if not values:
        return None
    return float(np.percentile(np.asarray(values, dtype=float), q))


def mean(values: Iterable[float | bool | None]) -> float | None:
    """Mean of the values that are not None; None when there are none."""
    present = [float(v) for v in values if v is not None]
    return sum(present) / len(present) if present else None


def usd_per_1000_queries(costs_usd: Sequence[float]) -> float | None:
    """Mean cost of one query in US dollars, times 1,000."""
    average = mean(costs_usd)
    return None if average is None else average * 1000
