"""Retrieval: one BM25 index (bm25s) per language over each article's title, questions, tags and text.

Words are stemmed with that language's Snowball stemmer (PyStemmer) and stop words dropped, so "returns",
"returned" and "return" meet, as do "Rücksendung" and "Rücksendungen". A query word the index has never seen
is replaced by the closest word it has (a typo: "trakcing" -> "tracking"), when one is close enough.
Building takes milliseconds for a base of this size; it happens once per base (at publish, and once per
container for the base in force), never per question.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Any

from chalicelib.kb.articles import STEMMERS, Article, Base

# How close (difflib ratio) an unknown query word must be to an indexed word to stand for it.
TYPO_CUTOFF = 0.8
# Title and example questions say what an article answers; they count more than its body.
_FIELD_REPEATS = {"title": 2, "questions": 2, "tags": 1, "short_answer": 1, "body": 1}


@dataclass(frozen=True)
class Hit:
    """An article a question matched, with its BM25 score (higher is better; not bounded)."""

    article_id: str
    title: str
    score: float
    coverage: float  # the share of the question's words (IDF-weighted) the article has, 0..1
    body: str
    short_answer: str | None
    language: str


class _LanguageIndex:
    """The articles of one language, their BM25 index, and the words it knows (for typos)."""

    def __init__(self, language: str, articles: list[Article]) -> None:
        import bm25s  # numpy and bm25s load when an index is built, not with the webhooks
        import Stemmer

        self.language = language
        self.articles = articles
        from bm25s import stopwords

        self._stemmer = Stemmer.Stemmer(STEMMERS[language])
        # Coverage ignores bm25s' longer lists ("do", "have", "where"), which say nothing about the topic;
        # ranking keeps its short one ("when will it arrive" ranks better with "when").
        function_words = {"en": stopwords.STOPWORDS_EN_PLUS, "de": stopwords.STOPWORDS_GERMAN}[language]
        self._function_stems = frozenset(self._stemmer.stemWords(list(function_words)))
        self._bm25s = bm25s
        corpus = [_document(a) for a in articles]
        tokens = bm25s.tokenize(corpus, stopwords=language, stemmer=self._stemmer.stemWords, show_progress=False)
        self._retriever = bm25s.BM25()
        self._retriever.index(tokens, show_progress=False)
        self._vocabulary: dict[str, int] = dict(tokens.vocab)
        self._terms = [frozenset(ids) for ids in tokens.ids]
        count = len(articles)
        frequency: dict[int, int] = {}
        for terms in self._terms:
            for term in terms:
                frequency[term] = frequency.get(term, 0) + 1
        self._idf = {t: math.log(1 + (count - f + 0.5) / (f + 0.5)) for t, f in frequency.items()}
        # A query word no article has weighs as much as the rarest: the base says nothing about it.
        self._unknown_idf = math.log(1 + (count - 0.5) / 1.5)
        self._words = sorted({w.lower() for text in corpus for w in _words(text)})

    def scores(self, text: str) -> list[tuple[float, float, Article]]:
        """(BM25 score, coverage, article) for every article sharing a word with ``text``.

        Coverage is the share of the question's words (weighted by IDF) the article contains: a question about
        something the base never mentions shares only a common word or two with any article, however high
        BM25 scores that word.
        """
        words = [self._known(w) for w in _words(text.lower())]
        stems = self._bm25s.tokenize(
            " ".join(words),
            stopwords=self.language,
            stemmer=self._stemmer.stemWords,
            show_progress=False,
            return_ids=False,
        )[0]
        query = [t for t in dict.fromkeys(stems) if t in self._vocabulary]
        if not query:
            return []
        content = [t for t in dict.fromkeys(stems) if t not in self._function_stems]
        ids = [self._vocabulary[t] for t in content if t in self._vocabulary]
        total = sum(self._idf[i] for i in ids) + self._unknown_idf * (len(content) - len(ids))
        scores: Any = self._retriever.get_scores(query)
        return [
            (float(score), sum(self._idf[i] for i in ids if i in terms) / total if total else 0.0, article)
            for score, terms, article in zip(scores, self._terms, self.articles, strict=True)
            if score > 0
        ]

    def _known(self, word: str) -> str:
        """The word, or the indexed word it is most likely a typo of."""
        if len(word) < 4 or self._stemmer.stemWord(word) in self._vocabulary:
            return word
        close = difflib.get_close_matches(word, self._words, n=1, cutoff=TYPO_CUTOFF)
        return close[0] if close else word


class Index:
    """A published base, ready to answer: ``search`` ranks articles for a question."""

    def __init__(self, base: Base) -> None:
        self.base = base
        by_language: dict[str, list[Article]] = {}
        for article in base.articles:
            by_language.setdefault(article.language, []).append(article)
        self._languages = {lang: _LanguageIndex(lang, arts) for lang, arts in sorted(by_language.items())}

    @property
    def min_coverage(self) -> float:
        return self.base.min_coverage

    def search(
        self, text: str, *, language: str | None = None, channel: str | None = None, limit: int = 3
    ) -> list[Hit]:
        """The best ``limit`` articles for ``text``, best first; only ``language``'s and ``channel``'s when given."""
        if not text.strip() or limit < 1:
            return []
        indexes = [self._languages[language]] if language in self._languages else []
        if language is None:
            indexes = list(self._languages.values())
        ranked = [
            (score, coverage, article)
            for index in indexes
            for score, coverage, article in index.scores(text)
            if article.serves(channel)
        ]
        ranked.sort(key=lambda found: (-found[0], found[2].article_id))
        if language is None and ranked:  # no language known: the customer writes the best hit's language
            ranked = [found for found in ranked if found[2].language == ranked[0][2].language]
        return [_hit(score, coverage, article) for score, coverage, article in ranked[:limit]]

    def answer(
        self, text: str, *, language: str | None = None, channel: str | None = None, min_coverage: float | None = None
    ) -> Hit | None:
        """The best article when it covers at least ``min_coverage`` of the question (default: the base's)."""
        hits = self.search(text, language=language, channel=channel, limit=1)
        threshold = self.min_coverage if min_coverage is None else min_coverage
        return hits[0] if hits and hits[0].coverage >= threshold else None


def _document(article: Article) -> str:
    parts = {
        "title": article.title,
        "questions": " ".join(article.questions),
        "tags": " ".join(article.tags),
        "short_answer": article.short_answer or "",
        "body": article.body,
    }
    return " ".join(" ".join([text] * _FIELD_REPEATS[name]) for name, text in parts.items())


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _hit(score: float, coverage: float, article: Article) -> Hit:
    return Hit(
        article_id=article.article_id,
        title=article.title,
        score=round(score, 3),
        coverage=round(coverage, 3),
        body=article.body,
        short_answer=article.short_answer,
        language=article.language,
    )
