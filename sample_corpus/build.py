"""Build Scout's sample corpus, search log and held-out set from the COVID-QA dataset.

Run from the repository root:

    python sample_corpus/build.py --datasets PATH

PATH is a directory that contains three files of the deepset COVID-QA repository:
200423_covidQA.json, faq_covidbert.csv and eval_question_similarity_en.csv.
The script uses only the standard library and a fixed random seed, so every run with the
same input writes byte-identical files. It deletes the Markdown files in
sample_corpus/corpus/articles, writes the selected articles there, and rewrites
corpus/faq.jsonl, corpus/search_log.jsonl and eval/heldout.jsonl.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import math
import random
import re
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

SEED = 20200423
"""Seed of the single random.Random that makes every choice below."""

OUTPUT_DIR = Path(__file__).resolve().parent
REPO_ROOT = OUTPUT_DIR.parent
DEFAULT_DATASETS = REPO_ROOT / ".." / "shared" / "datasets" / "covid_qa"

QA_FILE = "200423_covidQA.json"
FAQ_FILE = "faq_covidbert.csv"
PARAPHRASE_FILE = "eval_question_similarity_en.csv"

TARGET_CHUNKS = 450
"""Default budget for the whole corpus, in estimated chunks."""
CHARS_PER_CHUNK_ESTIMATE = 700
"""Planning estimate of source characters per chunk. Scout chunks at about 200 tokens, or
about 800 characters."""
MAX_ARTICLE_CHARS = 20_000
"""Maximum article length considered, in characters. The median COVID-QA article has about 21,400."""
MIN_ARTICLE_QUESTIONS = 5
"""Minimum number of annotated questions per article. At least one goes to the held-out set,
and the rest must fill search sessions of two or more queries."""

HELDOUT_SHARE = 1 / 6
"""Share of each article's annotated questions held out (at least one per article)."""
HELDOUT_FAQ_QUESTIONS = 24
"""Number of FAQ paraphrases held out, each for a different FAQ question."""

LOG_START = dt.datetime(2020, 3, 23, tzinfo=dt.timezone.utc)
LOG_DAYS = 28
SESSION_MIN, SESSION_MAX = 2, 5
QUERY_GAP_SECONDS = (15, 240)

# Many annotated questions only make sense next to their article ("How many were male?",
# "What does the study include?"). Questions that match this pattern or have fewer than
# MIN_HELDOUT_WORDS words stay in the search log and are never held out.
# NOTE: a heuristic, so a few held-out questions may still depend on their article.
CONTEXT_BOUND_QUESTION = re.compile(
    r"\b(it|they|this|these|those|the (study|studies|report|paper|publication|article|review|authors?|model"
    r"|results?|data|collected data|approach|analysis|survey|trial|cohort|sample|work))\b",
    re.I,
)
MIN_HELDOUT_WORDS = 6

LICENSE_LINE = re.compile(r"^License: ?(\S.*)$", re.M)
PMC_URL = re.compile(r"https://www\.ncbi\.nlm\.nih\.gov/pmc/articles/PMC(\d+)/?")
FIRST_URL = re.compile(r"https?://\S+")
ACRONYM_IN_PARENS = re.compile(r"\(([A-Za-z]+)\)\s*$")
# Sources without an acronym in their name get a fixed short name for their FAQ ids.
SOURCE_SHORT_NAMES = {
    "Bundesministerium für Gesundheit": "bmg",
    "California Department of Public Health": "cdph",
    "Washington State Department of Health": "wadoh",
}
# A sentence ends at . ! or ? followed by whitespace and an upper-case letter, digit, quote or
# opening parenthesis, except after these abbreviations.
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"“(])")
ABBREVIATIONS = ("U.S.", "e.g.", "i.e.", "Dr.", "St.", "No.", "vs.", "etc.")

UNANSWERABLE_QUESTIONS = [
    "When is the deadline for filing a federal income tax return in the United States?",
    "How do I reset the admin password on my home Wi-Fi router?",
    "What time does the last train leave from Zurich to Milan on Sundays?",
    "Which team won the 2018 FIFA World Cup final?",
    "How long should sourdough bread proof before baking?",
    "What is the current 30-year fixed mortgage rate?",
    "How do I change the oil in a 2015 Honda Civic?",
    "What is the height of the Eiffel Tower including its antennas?",
]


@dataclass
class Article:
    document_id: int
    doc_id: str
    file_name: str
    title: str
    context: str
    url: str
    license: str
    questions: list[dict] = field(default_factory=list)


@dataclass
class FaqEntry:
    doc_id: str
    question: str
    answer: str
    url: str
    source: str


@dataclass
class LogEvent:
    query: str
    clicked_doc_id: str | None
    timestamp: str = ""
    session_id: str = ""


def normalize_question(text: str) -> str:
    """Return the text case-folded, with punctuation removed and whitespace collapsed.

    Held-out questions are kept apart from log queries under this key, which is stricter
    than comparing case- and whitespace-normalised text.
    """
    return " ".join(re.sub(r"[^\w\s]", " ", text.casefold()).split())


# ---------------------------------------------------------------- articles


def load_articles(path: Path) -> list[Article]:
    """Read every COVID-QA article that names a licence and a title on its first line."""
    with path.open(encoding="utf-8") as handle:
        data = json.load(handle)["data"]

    articles = []
    for entry in data:
        for paragraph in entry["paragraphs"]:
            context = paragraph["context"]
            title = context.split("\n", 1)[0]
            license_match = LICENSE_LINE.search(context)
            # Six COVID-QA documents are web pages without a CORD-19 licence line. Their terms
            # are unknown, so they are never redistributed here.
            if not title.strip() or license_match is None:
                continue

            document_id = paragraph["document_id"]
            pmc_match = PMC_URL.search(context)
            if pmc_match:
                stem = f"pmc{pmc_match.group(1)}"
                url = pmc_match.group(0)
            else:
                stem = f"covid-{document_id}"
                url_match = FIRST_URL.search(context)
                url = url_match.group(0) if url_match else ""

            articles.append(
                Article(
                    document_id=document_id,
                    doc_id=f"articles/{stem}",
                    file_name=f"{stem}.md",
                    title=title.strip(),
                    context=context,
                    url=url,
                    license=license_match.group(1).strip(),
                    questions=paragraph["qas"],
                )
            )
    return articles


def select_articles(articles: list[Article], char_budget: int) -> list[Article]:
    """Pick short articles with many questions until the character budget is spent.

    Candidates have at most MAX_ARTICLE_CHARS characters and at least MIN_ARTICLE_QUESTIONS
    questions. They are ranked by questions per character and taken greedily, skipping any
    article that would overflow the budget.
    """
    candidates = [
        article
        for article in articles
        if len(article.context) <= MAX_ARTICLE_CHARS and len(article.questions) >= MIN_ARTICLE_QUESTIONS
    ]
    candidates.sort(key=lambda a: (-len(a.questions) / len(a.context), a.document_id))

    selected = []
    used = 0
    for article in candidates:
        if used + len(article.context) <= char_budget:
            selected.append(article)
            used += len(article.context)
    return selected


def render_article(article: Article) -> str:
    """Return the Markdown file: `# <title line>`, then the rest of the context unchanged."""
    text = "# " + article.context
    return text if text.endswith("\n") else text + "\n"


# ---------------------------------------------------------------- FAQ


def source_short_name(source: str) -> str:
    acronym = ACRONYM_IN_PARENS.search(source)
    if acronym:
        return acronym.group(1).lower()
    if source in SOURCE_SHORT_NAMES:
        return SOURCE_SHORT_NAMES[source]
    raise ValueError(f"FAQ source {source!r} has no acronym and no entry in SOURCE_SHORT_NAMES; add one.")


def load_faq(path: Path) -> list[FaqEntry]:
    """Read the English FAQ entries that have an answer, numbering them per source in file order."""
    entries = []
    per_source: dict[str, int] = {}
    with path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle):
            question = row["question"].strip()
            answer = row["answer"].strip()
            if row["lang"].strip() != "en" or not question or not answer:
                continue

            source = row["source"].strip()
            short_name = source_short_name(source)
            per_source[short_name] = per_source.get(short_name, 0) + 1
            entries.append(
                FaqEntry(
                    doc_id=f"faq/{short_name}-{per_source[short_name]:03d}",
                    question=question,
                    answer=answer,
                    url=row["link"].strip(),
                    source=source,
                )
            )
    return entries


def faq_record(entry: FaqEntry) -> dict:
    return {
        "id": entry.doc_id,
        "title": entry.question,
        "text": f"{entry.question}\n\n{entry.answer}",
        "url": entry.url,
        "source": entry.source,
    }


def first_sentence(text: str) -> str:
    """Return the first sentence of the first line of `text`."""
    line = text.strip().split("\n", 1)[0].strip()
    for match in SENTENCE_END.finditer(line):
        candidate = line[: match.start()]
        if not candidate.endswith(ABBREVIATIONS):
            return candidate
    return line


# ---------------------------------------------------------------- questions


@dataclass
class Paraphrase:
    row: int
    """1-based data row in the paraphrase CSV."""
    query: str
    faq_ids: list[str]


def load_paraphrases(path: Path, faq: list[FaqEntry]) -> list[Paraphrase]:
    """Read similar=1 pairs whose first question matches an FAQ question.

    A match compares normalize_question keys. Every similar=1 pair in the 2020 release
    matches at least one FAQ entry this way, so no fuzzier match is needed. A question
    that several FAQ entries share gives a paraphrase with several faq_ids.
    """
    by_question: dict[str, list[str]] = {}
    for entry in faq:
        by_question.setdefault(normalize_question(entry.question), []).append(entry.doc_id)

    paraphrases = []
    with path.open(encoding="utf-8", newline="") as handle:
        for row_number, row in enumerate(csv.DictReader(handle), start=1):
            if row["similar"].strip() != "1":
                continue
            faq_ids = by_question.get(normalize_question(row["question_1"]))
            if faq_ids:
                paraphrases.append(Paraphrase(row_number, row["question_2"].strip(), faq_ids))
    return paraphrases


def group_annotated_questions(articles: list[Article]) -> dict[str, dict]:
    """Group the articles' annotated questions by normalised text.

    A few questions ("What is a lockdown?") are asked of more than one article. Grouping them
    keeps the held-out/log split at the level of question text.
    """
    groups: dict[str, dict] = {}
    for article in articles:
        for qa in article.questions:
            key = normalize_question(qa["question"])
            group = groups.setdefault(key, {"question": qa["question"].strip(), "items": []})
            group["items"].append((article, qa))
    return groups


def is_clipped(answer: str, context: str) -> bool:
    """Return True if every occurrence of `answer` in `context` starts or ends inside a word."""
    answer = answer.strip()
    if not answer:
        return True
    start = context.find(answer)
    while start != -1:
        end = start + len(answer)
        starts_inside = start > 0 and answer[0].isalnum() and context[start - 1].isalnum()
        ends_inside = end < len(context) and answer[-1].isalnum() and context[end].isalnum()
        if not starts_inside and not ends_inside:
            return False
        start = context.find(answer, start + 1)
    return True


def can_hold_out(group: dict) -> bool:
    """Return True if a question group is fit for open-corpus evaluation.

    The question must stand on its own (see CONTEXT_BOUND_QUESTION and MIN_HELDOUT_WORDS), and
    no annotated answer may be a span clipped mid-word, such as "y released by the Wuhan Municipal".
    """
    question = group["question"]
    if CONTEXT_BOUND_QUESTION.search(question) or len(question.split()) < MIN_HELDOUT_WORDS:
        return False
    return not any(
        is_clipped(answer["text"], article.context) for article, qa in group["items"] for answer in qa["answers"]
    )


def split_annotated_questions(articles, groups, rng):
    """Choose the held-out question groups, about HELDOUT_SHARE of each article's questions.

    Each group belongs to the first article it was annotated on. Only groups that pass can_hold_out
    are held out, so an article with no such group contributes none.
    """
    owned: dict[str, list[str]] = {article.doc_id: [] for article in articles}
    for key, group in groups.items():
        owned[group["items"][0][0].doc_id].append(key)

    heldout_keys = set()
    for article in articles:
        keys = sorted(owned[article.doc_id])
        eligible = [key for key in keys if can_hold_out(groups[key])]
        count = max(1, round(len(keys) * HELDOUT_SHARE))
        heldout_keys.update(rng.sample(eligible, min(count, len(eligible))))
    return heldout_keys


def choose_heldout_paraphrases(paraphrases, faq, excluded_keys, rng):
    """Hold out one paraphrase for each of HELDOUT_FAQ_QUESTIONS randomly chosen FAQ questions.

    A paraphrase whose text equals an FAQ question or a key in `excluded_keys` is never held out.
    """
    faq_question_keys = {normalize_question(entry.question) for entry in faq}
    by_target: dict[tuple[str, ...], list[Paraphrase]] = {}
    for paraphrase in paraphrases:
        key = normalize_question(paraphrase.query)
        if key in faq_question_keys or key in excluded_keys:
            continue
        by_target.setdefault(tuple(paraphrase.faq_ids), []).append(paraphrase)

    targets = rng.sample(sorted(by_target), min(HELDOUT_FAQ_QUESTIONS, len(by_target)))
    return [rng.choice(by_target[target]) for target in sorted(targets)]


def build_heldout(groups, heldout_keys, heldout_paraphrases, faq):
    answers_by_id = {entry.doc_id: first_sentence(entry.answer) for entry in faq}
    records = []

    for key in sorted(heldout_keys, key=lambda k: groups[k]["items"][0][1]["id"]):
        group = groups[key]
        answers, doc_ids = [], []
        for article, qa in group["items"]:
            for answer in qa["answers"]:
                text = answer["text"].strip()
                if text not in answers:
                    answers.append(text)
            if article.doc_id not in doc_ids:
                doc_ids.append(article.doc_id)
        records.append(
            {
                "id": f"covidqa-{group['items'][0][1]['id']}",
                "question": group["question"],
                "answers": answers,
                "gold_doc_ids": doc_ids,
                "source": "covid_qa",
            }
        )

    for paraphrase in sorted(heldout_paraphrases, key=lambda p: p.row):
        answers = []
        for doc_id in paraphrase.faq_ids:
            if answers_by_id[doc_id] not in answers:
                answers.append(answers_by_id[doc_id])
        records.append(
            {
                "id": f"faq-paraphrase-{paraphrase.row:03d}",
                "question": paraphrase.query,
                "answers": answers,
                "gold_doc_ids": list(paraphrase.faq_ids),
                "source": "faq_paraphrase",
            }
        )

    for number, question in enumerate(UNANSWERABLE_QUESTIONS, start=1):
        records.append(
            {
                "id": f"unanswerable-{number:03d}",
                "question": question,
                "answers": [],
                "gold_doc_ids": [],
                "source": "unanswerable",
            }
        )
    return records


# ---------------------------------------------------------------- search log


def partition_sessions(events: list[LogEvent], rng: random.Random) -> list[list[LogEvent]]:
    """Split a list of two or more related events into sessions of SESSION_MIN to SESSION_MAX."""
    sessions = []
    remaining = list(events)
    while remaining:
        if len(remaining) <= SESSION_MAX:
            size = len(remaining)
        else:
            # Leave either nothing or at least SESSION_MIN events for the next session.
            sizes = [s for s in range(SESSION_MIN, SESSION_MAX + 1) if len(remaining) - s >= SESSION_MIN]
            size = rng.choice(sizes)
        sessions.append(remaining[:size])
        remaining = remaining[size:]
    return sessions


def merge_small_groups(groups: list[list[LogEvent]]) -> list[list[LogEvent]]:
    """Merge any group smaller than SESSION_MIN into the group before it (or after, if first)."""
    merged: list[list[LogEvent]] = []
    carry: list[LogEvent] = []
    for group in groups:
        group = carry + group
        carry = []
        if len(group) >= SESSION_MIN:
            merged.append(group)
        elif merged:
            merged[-1].extend(group)
        else:
            carry = group
    if carry:
        if not merged:
            raise ValueError(f"only {len(carry)} search-log event(s); a session needs {SESSION_MIN}")
        merged[-1].extend(carry)
    return merged


def build_search_log(articles, groups, paraphrases, heldout_question_keys, faq, rng):
    """Synthesise sessions and timestamps for the log queries that are not held out.

    A query is left out when its normalize_question key is in `heldout_question_keys`.
    Each session contains queries on one article or on neighbouring entries of one FAQ source.
    Returns the events sorted by timestamp.
    """
    article_groups: dict[str, list[LogEvent]] = {article.doc_id: [] for article in articles}
    for key in sorted(groups):
        if key in heldout_question_keys:
            continue
        for article, qa in groups[key]["items"]:
            article_groups[article.doc_id].append(LogEvent(qa["question"].strip(), article.doc_id))

    # FAQ events are ordered by source and then by FAQ position, which follows the page layout.
    position = {entry.doc_id: index for index, entry in enumerate(faq)}
    faq_groups: dict[str, list[tuple[int, int, LogEvent]]] = {}
    for paraphrase in paraphrases:
        if normalize_question(paraphrase.query) in heldout_question_keys:
            continue
        first = paraphrase.faq_ids[0]
        # A paraphrase of a question that several FAQ entries share cannot be tied to one entry,
        # so its event records no click.
        clicked = first if len(paraphrase.faq_ids) == 1 else None
        source = first.split("-")[0]
        faq_groups.setdefault(source, []).append((position[first], paraphrase.row, LogEvent(paraphrase.query, clicked)))

    related = [article_groups[article.doc_id] for article in articles]
    related += [[event for _, _, event in sorted(faq_groups[source])] for source in sorted(faq_groups)]

    sessions = []
    for group in merge_small_groups(related):
        sessions.extend(partition_sessions(group, rng))

    return assign_times(sessions, rng)


def assign_times(sessions: list[list[LogEvent]], rng: random.Random) -> list[LogEvent]:
    """Give each session a random start in the log window and each query a later timestamp."""
    window_seconds = LOG_DAYS * 24 * 3600
    starts = [rng.randrange(window_seconds) for _ in sessions]
    order = sorted(range(len(sessions)), key=lambda i: (starts[i], i))

    events = []
    for number, index in enumerate(order, start=1):
        session = list(sessions[index])
        rng.shuffle(session)
        moment = LOG_START + dt.timedelta(seconds=starts[index])
        for event in session:
            event.timestamp = moment.strftime("%Y-%m-%dT%H:%M:%SZ")
            event.session_id = f"session-{number:04d}"
            moment += dt.timedelta(seconds=rng.randint(*QUERY_GAP_SECONDS))
            events.append(event)
    events.sort(key=lambda e: (e.timestamp, e.session_id))
    return events


# ---------------------------------------------------------------- output


def write_jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def write_articles(directory: Path, articles: list[Article]) -> None:
    """Write one Markdown file per article, removing Markdown files from earlier runs first."""
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.md"):
        stale.unlink()
    for article in articles:
        with (directory / article.file_name).open("w", encoding="utf-8", newline="\n") as handle:
            handle.write(render_article(article))


def print_summary(articles, faq, log, heldout) -> None:
    article_chars = sum(len(article.context) for article in articles)
    faq_chars = sum(len(faq_record(entry)["text"]) for entry in faq)
    chunk_estimate = math.ceil((article_chars + faq_chars) / CHARS_PER_CHUNK_ESTIMATE)
    # Each FAQ entry is a document of its own, so it takes at least one chunk however short.
    per_document = sum(math.ceil(len(a.context) / CHARS_PER_CHUNK_ESTIMATE) for a in articles)
    per_document += sum(math.ceil(len(faq_record(e)["text"]) / CHARS_PER_CHUNK_ESTIMATE) for e in faq)
    by_source: dict[str, int] = {}
    for record in heldout:
        by_source[record["source"]] = by_source.get(record["source"], 0) + 1
    no_click = sum(1 for event in log if event.clicked_doc_id is None)

    print(f"articles: {len(articles)} ({article_chars:,} characters)")
    print(f"FAQ entries: {len(faq)} ({faq_chars:,} characters)")
    print(f"estimated chunks: {chunk_estimate} (all characters / {CHARS_PER_CHUNK_ESTIMATE}); {per_document} when each document is rounded up to whole chunks")
    print(f"search-log events: {len(log)} in {len({e.session_id for e in log})} sessions, {no_click} without a click")
    print(f"held-out questions: {len(heldout)} ({', '.join(f'{k} {v}' for k, v in sorted(by_source.items()))})")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--datasets",
        type=Path,
        default=DEFAULT_DATASETS,
        help=f"directory that contains {QA_FILE}, {FAQ_FILE} and {PARAPHRASE_FILE} (default: ../shared/datasets/covid_qa next to the repository)",
    )
    parser.add_argument(
        "--target-chunks",
        type=int,
        default=TARGET_CHUNKS,
        help=f"corpus size budget in estimated chunks of {CHARS_PER_CHUNK_ESTIMATE} characters; the FAQ fills its share first and articles fill the rest (default: %(default)s)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    missing = [name for name in (QA_FILE, FAQ_FILE, PARAPHRASE_FILE) if not (args.datasets / name).is_file()]
    if missing:
        print(f"error: {', '.join(missing)} not found in {args.datasets}; pass the COVID-QA data directory with --datasets", file=sys.stderr)
        return 2

    rng = random.Random(SEED)
    faq = load_faq(args.datasets / FAQ_FILE)
    faq_chars = sum(len(faq_record(entry)["text"]) for entry in faq)
    article_budget = args.target_chunks * CHARS_PER_CHUNK_ESTIMATE - faq_chars
    articles = select_articles(load_articles(args.datasets / QA_FILE), article_budget)
    if not articles:
        print(f"error: no article fits a budget of {article_budget} characters; raise --target-chunks", file=sys.stderr)
        return 1

    groups = group_annotated_questions(articles)
    heldout_keys = split_annotated_questions(articles, groups, rng)
    paraphrases = load_paraphrases(args.datasets / PARAPHRASE_FILE, faq)
    heldout_paraphrases = choose_heldout_paraphrases(paraphrases, faq, set(groups), rng)
    heldout = build_heldout(groups, heldout_keys, heldout_paraphrases, faq)
    heldout_question_keys = {normalize_question(record["question"]) for record in heldout}
    log = build_search_log(articles, groups, paraphrases, heldout_question_keys, faq, rng)

    write_articles(OUTPUT_DIR / "corpus" / "articles", articles)
    write_jsonl(OUTPUT_DIR / "corpus" / "faq.jsonl", [faq_record(entry) for entry in faq])
    write_jsonl(OUTPUT_DIR / "corpus" / "search_log.jsonl", [asdict(event) for event in log])
    write_jsonl(OUTPUT_DIR / "eval" / "heldout.jsonl", heldout)
    print_summary(articles, faq, log, heldout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
