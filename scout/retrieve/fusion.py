"""Rank fusion: merge per-signal rankings into one.

Each ranking is a list of (id, score), best first. Both functions return (id, fused score),
best first, ties broken by id so results are deterministic.
"""

from __future__ import annotations

Ranking = list[tuple[str, float]]


def reciprocal_rank_fusion(rankings: dict[str, Ranking], k: int = 60, weights: dict[str, float] | None = None) -> Ranking:
    """Reciprocal rank fusion: score(d) = sum over signals of w_s / (k + rank_s(d)).

    Cormack, Clarke and Buettcher, "Reciprocal Rank Fusion outperforms Condorcet and individual
    rank learning methods", SIGIR 2009; k = 60 is their value. Weights default to 1.

    >>> reciprocal_rank_fusion({"bm25": [("a", 9.0), ("b", 3.0)], "dense": [("b", 0.9)]}, k=60)
    [('b', 0.03252247488101534), ('a', 0.01639344262295082)]
    """
    fused: dict[str, float] = {}
    for signal, ranking in rankings.items():
        weight = 1.0 if weights is None else weights.get(signal, 1.0)
        for rank, (item, _score) in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + weight / (k + rank)
    return _sorted(fused)


def min_max_normalise(ranking: Ranking) -> dict[str, float]:
    """Scale scores to [0, 1] over the candidates; a signal with one distinct score maps to 1."""
    if not ranking:
        return {}
    scores = [score for _, score in ranking]
    low, high = min(scores), max(scores)
    if high == low:
        return {item: 1.0 for item, _ in ranking}
    return {item: (score - low) / (high - low) for item, score in ranking}


def weighted_fusion(rankings: dict[str, Ranking], weights: dict[str, float]) -> Ranking:
    """Normalised weighted fusion: min-max normalise each signal, then sum with weights.

    A candidate missing from a signal gets 0 from it. This is the convex combination studied by
    Bruch, Gai and Ingber, "An Analysis of Fusion Functions for Hybrid Retrieval", TOIS 2023.

    >>> weighted_fusion({"bm25": [("a", 4.0), ("b", 2.0)], "dense": [("b", 0.8), ("a", 0.4)]}, {"bm25": 0.5, "dense": 0.5})
    [('a', 0.5), ('b', 0.5)]
    """
    fused: dict[str, float] = {}
    for signal, ranking in rankings.items():
        weight = weights.get(signal, 0.0)
        for item, score in min_max_normalise(ranking).items():
            fused[item] = fused.get(item, 0.0) + weight * score
    return _sorted(fused)


def _sorted(fused: dict[str, float]) -> Ranking:
    return sorted(fused.items(), key=lambda pair: (-pair[1], pair[0]))
