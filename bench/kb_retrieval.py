"""Self-service retrieval quality on the repo's evaluation set (bench/kb_eval.yaml) at the shipped threshold.

Top-1 accuracy: the best-ranked article is the one that answers the question. At the threshold (kb.yaml's
min_coverage) a question is *answered* when its best article clears it: right, wrong (another article), or,
for a question no article answers, an answer it should not have got (issue 14: at most 5 %).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

EVAL_SET = Path(__file__).resolve().parent / "kb_eval.yaml"


def evaluate(index: Any = None) -> list[dict[str, Any]]:
    """One row per language and one for all: counts and rates (0..1) on the evaluation set (the shipped base)."""
    from chalicelib.kb import published

    index = index or published.default_index()
    data = yaml.safe_load(EVAL_SET.read_text(encoding="utf-8"))
    rows = []
    for language in (*sorted({q["language"] for q in data["answerable"]}), None):
        answerable = [q for q in data["answerable"] if language in (None, q["language"])]
        unanswerable = [q for q in data["unanswerable"] if language in (None, q["language"])]
        top1 = answered_right = answered_wrong = 0
        for item in answerable:
            hits = index.search(item["q"], language=item["language"], limit=1)
            right = bool(hits) and hits[0].article_id == item["answer"]
            top1 += right
            if hits and hits[0].coverage >= index.min_coverage:
                answered_right += right
                answered_wrong += not right
        wrongly_answered = sum(1 for item in unanswerable if index.answer(item["q"], language=item["language"]))
        rows.append(
            {
                "language": language or "all",
                "answerable": len(answerable),
                "top1_accuracy": round(top1 / len(answerable), 3),
                "answered_right": round(answered_right / len(answerable), 3),
                "answered_wrong": round(answered_wrong / len(answerable), 3),
                "unanswerable": len(unanswerable),
                "unanswerable_answered": round(wrongly_answered / len(unanswerable), 3),
                "min_coverage": index.min_coverage,
            }
        )
    return rows


def run(quick: bool) -> dict[str, Any]:
    return {"rows": evaluate()}
