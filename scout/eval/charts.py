"""PNG charts of an evaluation: quality against cost, latency, and the quality metrics side by side."""

from __future__ import annotations

from pathlib import Path

def short_name(system: str) -> str:
    """A system name for chart labels: a checkpoint path shortened to its folder name."""
    kind, _, argument = system.partition(":")
    if "/" not in argument:
        return system
    return f"{kind}:{argument.rstrip('/').rsplit('/', 1)[-1]}"


def write_charts(systems: dict[str, dict], k: int, out: Path) -> list[tuple[str, str]]:
    """Write the charts into `out` and return (file name, caption) pairs for the report."""
    import matplotlib

    matplotlib.use("Agg")
    charts = [
        ("quality_vs_cost.png", "Token F1 on answerable questions against CPU seconds per query (and API dollars when any system has them)."),
        ("latency.png", "Answer latency per system: median (p50) and 95th percentile (p95)."),
        ("quality.png", f"Quality metrics per system; retrieval metrics over document ids at k={k}."),
    ]
    _quality_vs_cost(systems, out / charts[0][0])
    _latency(systems, out / charts[1][0])
    _quality(systems, k, out / charts[2][0])
    return charts


def _quality_vs_cost(systems: dict[str, dict], path: Path) -> None:
    import matplotlib.pyplot as plt

    paid = any((m["usd_per_1000_queries"] or 0) > 0 for m in systems.values())
    figure, axes = plt.subplots(1, 2 if paid else 1, figsize=(14 if paid else 10, 5), squeeze=False)
    _scatter(axes[0][0], systems, "cpu_seconds_per_query", "CPU seconds per query (this machine, whole process)")
    if paid:
        _scatter(axes[0][1], systems, "usd_per_1000_queries", "API cost, US dollars per 1,000 queries")
    figure.suptitle("Answer quality against cost")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _scatter(axis, systems: dict[str, dict], x_key: str, x_label: str) -> None:
    """Plot F1 as a filled marker and F1 before the support check as a hollow one, joined by a line."""
    top, right = 0.0, 0.0
    for i, (name, metrics) in enumerate(systems.items()):
        x, f1, raw_f1 = metrics[x_key], metrics["f1"], metrics["raw_f1"]
        if x is None or f1 is None:
            continue
        colour = f"C{i}"
        if raw_f1 is not None and abs(raw_f1 - f1) > 1e-9:
            axis.plot([x, x], [f1, raw_f1], color=colour, linewidth=1, alpha=0.6)
            axis.scatter([x], [raw_f1], s=80, facecolors="none", edgecolors=colour, zorder=3)
        axis.scatter([x], [f1], s=80, color=colour, zorder=3, label=short_name(name))
        top, right = max(top, f1, raw_f1 or 0.0), max(right, x)
    axis.scatter([], [], s=60, color="gray", label="filled: F1 (what the user sees)")
    axis.scatter([], [], s=60, facecolors="none", edgecolors="gray", label="hollow: F1 before Scout's support check")
    axis.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
    axis.set_xlabel(x_label)
    axis.set_ylabel("token F1 (answerable questions)")
    axis.set_ylim(0, min(1.05, max(0.25, top * 1.4)))
    # A margin right of the costliest system; 1.0 when every system costs 0.
    axis.set_xlim(0, right * 1.15 or 1.0)
    axis.grid(alpha=0.3)


def _latency(systems: dict[str, dict], path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(systems)
    p50 = [(systems[n]["latency_p50_ms"] or 0) / 1000 for n in names]
    p95 = [(systems[n]["latency_p95_ms"] or 0) / 1000 for n in names]
    positions = np.arange(len(names))
    figure, axis = plt.subplots(figsize=(9, 1.2 + 0.7 * len(names)))
    axis.barh(positions - 0.18, p50, height=0.35, label="p50", color="tab:blue")
    axis.barh(positions + 0.18, p95, height=0.35, label="p95", color="tab:orange")
    for y, value in [*zip(positions - 0.18, p50), *zip(positions + 0.18, p95)]:
        axis.annotate(f"{value:.1f} s", (value, y), textcoords="offset points", xytext=(4, -3), fontsize=8)
    axis.set_yticks(positions, [short_name(n) for n in names])
    axis.invert_yaxis()
    axis.set_xlabel("seconds per answer")
    axis.set_title("Answer latency")
    axis.margins(x=0.15)
    axis.legend(loc="lower right")
    axis.grid(axis="x", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def _quality(systems: dict[str, dict], k: int, path: Path) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    metrics = [
        ("em", "EM"), ("f1", "F1"), ("raw_f1", "F1 before\nsupport\ncheck"), (f"recall@{k}", f"recall@{k}"), ("mrr", "MRR"),
        ("answer_in_sources", "answer in\nsources"), ("citation_precision", "citation\nprecision"),
        ("citation_recall", "citation\nrecall"), ("groundedness", "grounded-\nness"),
        ("abstention_rate_unanswerable", "abstains on\nunanswerable"), ("false_abstention_rate", "false\nabstentions"),
    ]
    names = list(systems)
    width = 0.8 / max(len(names), 1)
    positions = np.arange(len(metrics))
    figure, axis = plt.subplots(figsize=(13, 5.2))
    for i, name in enumerate(names):
        values = [systems[name].get(key) for key, _ in metrics]
        offsets = positions - 0.4 + width * (i + 0.5)
        axis.bar(offsets, [v if v is not None else 0 for v in values], width=width, label=short_name(name), color=f"C{i}")
        for x, value in zip(offsets, values):
            label = "n/a" if value is None else f"{value:.2f}"
            axis.annotate(label, (x, value or 0), ha="center", textcoords="offset points", xytext=(0, 2), fontsize=6.5, rotation=90,
                          color="gray" if value is None else "black")
    axis.set_xticks(positions, [label for _, label in metrics], fontsize=9)
    axis.set_ylim(0, 1.15)
    axis.set_ylabel("score (0 to 1)")
    axis.set_title("Quality metrics per system (n/a: the metric does not apply to that system)")
    axis.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(len(names), 4), frameon=False)
    axis.grid(axis="y", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)
