"""Knowledge-base articles: Markdown files whose YAML front matter says what each answers, and the base they form.

An article is ``<folder>/<language>/<id>.md`` (the folder level is only for people; the id is the file name):
front matter between ``---`` lines, then the Markdown body agents and e-mail show. Mistakes are reported the
way routing.yaml's are (``routing.config``'s ``ConfigError``: ``FILE:LINE: FIELD: MESSAGE``), so ``switchboard kb
check`` and the admin API read like ``rules check``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from chalicelib.routing.config.lines import load_yaml, pydantic_problems
from chalicelib.routing.config.problems import ConfigError, Problem
from chalicelib.routing.config.schema import Channel

DEFAULT_DIR = Path(__file__).resolve().parent / "articles"
SETTINGS_FILE = "kb.yaml"
# The languages retrieval can stem (PyStemmer's algorithm for each).
STEMMERS = {"en": "english", "de": "german"}
ARTICLE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
# Below this coverage a hit is not confident enough to answer on its own (when kb.yaml sets no min_coverage).
DEFAULT_MIN_COVERAGE = 0.55


def _check_language(value: str) -> str:
    if value not in STEMMERS:
        raise ValueError(f"unsupported language (languages: {', '.join(STEMMERS)})")
    return value


Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]


class FrontMatter(BaseModel):
    """What an article's front matter may say."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
    language: Annotated[str, AfterValidator(_check_language)]
    tags: list[Text] = Field(default_factory=list)
    channels: list[Channel] = Field(default_factory=list)  # empty: every channel
    questions: list[Text] = Field(default_factory=list)
    # For SMS and WhatsApp, where the body is too long: one SMS-sized paragraph.
    short_answer: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=480)] | None = None


class SettingsIn(BaseModel):
    """kb.yaml beside the articles."""

    model_config = ConfigDict(extra="forbid")

    min_coverage: Annotated[float, Field(gt=0, le=1)] = DEFAULT_MIN_COVERAGE


@dataclass(frozen=True)
class Article:
    """One published article."""

    article_id: str
    title: str
    language: str
    tags: tuple[str, ...]
    channels: tuple[str, ...]
    questions: tuple[str, ...]
    short_answer: str | None
    body: str

    def serves(self, channel: str | None) -> bool:
        return channel is None or not self.channels or channel in self.channels


@dataclass(frozen=True)
class Base:
    """A whole knowledge base: its articles and the coverage a hit needs to answer by itself."""

    articles: tuple[Article, ...]
    min_coverage: float = DEFAULT_MIN_COVERAGE


def parse_article(text: str, source: str, article_id: str) -> Article:
    """One article file's text; ``ConfigError`` naming ``source``, the line and the field of every mistake."""
    lines = text.splitlines(keepends=True)
    if not lines or lines[0].strip() != "---":
        raise ConfigError.from_problems(
            source, [Problem(1, "", "an article starts with front matter between '---' lines")]
        )
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise ConfigError.from_problems(source, [Problem(1, "", "the front matter has no closing '---' line")])
    problems = []
    if not ARTICLE_ID.match(article_id):
        problems.append(Problem(None, "", f"file name {article_id!r}: use lower-case letters, digits and '-'"))
    data, node_lines = load_yaml("".join(lines[1:end]), source)
    node_lines = {path: line + 1 for path, line in node_lines.items()}  # the opening '---' is line 1
    if not isinstance(data, dict):
        raise ConfigError.from_problems(source, [*problems, Problem(2, "", "the front matter must be a mapping")])
    front: FrontMatter | None = None
    try:
        front = FrontMatter.model_validate(data)
    except ValidationError as exc:
        for problem in pydantic_problems(exc, node_lines, FrontMatter):
            # Every problem has a line, even one pydantic could not place.
            problems.append(
                problem
                if problem.line and problem.field
                else Problem(problem.line or 1, problem.field, problem.message)
            )
    body = "".join(lines[end + 1 :]).strip("\n")
    if not body.strip():
        problems.append(Problem(end + 1, "body", "the article has no body after the front matter"))
    if problems or front is None:
        raise ConfigError.from_problems(source, problems)
    return Article(
        article_id=article_id,
        title=front.title,
        language=front.language,
        tags=tuple(front.tags),
        channels=tuple(front.channels),
        questions=tuple(front.questions),
        short_answer=front.short_answer,
        body=body + "\n",
    )


def parse_base(files: Mapping[str, str], settings: str | None = None, settings_source: str = SETTINGS_FILE) -> Base:
    """A base from ``{path: text}`` (``*.md`` articles) and ``kb.yaml``'s text; every file's mistakes at once."""
    problems: list[tuple[str, Problem]] = []
    articles: dict[str, Article] = {}
    for name in sorted(files):
        article_id = Path(name).stem
        try:
            article = parse_article(files[name], name, article_id)
        except ConfigError as error:
            problems.extend((name, problem) for problem in error.problems)
            continue
        if article_id in articles:
            message = f"an article with id {article_id!r} already exists (ids are file names, unique in the base)"
            problems.append((name, Problem(None, "", message)))
            continue
        articles[article_id] = article
    min_coverage = DEFAULT_MIN_COVERAGE
    if settings is not None:
        try:
            min_coverage = _parse_settings(settings, settings_source).min_coverage
        except ConfigError as error:
            problems.extend((settings_source, problem) for problem in error.problems)
    if not articles and not problems:
        problems.append(("", Problem(None, "", "the knowledge base has no articles (*.md)")))
    if problems:
        raise KnowledgeBaseError(problems)
    return Base(articles=tuple(articles.values()), min_coverage=min_coverage)


def load_base(folder: str | Path) -> Base:
    """The base in a folder: every ``*.md`` below it, and its ``kb.yaml``; errors name files as found."""
    folder = Path(folder)
    files = {str(path): _read(path) for path in sorted(folder.rglob("*.md"))}
    settings_path = folder / SETTINGS_FILE
    settings = _read(settings_path) if settings_path.exists() else None
    return parse_base(files, settings, str(settings_path))


def _parse_settings(text: str, source: str) -> SettingsIn:
    data, node_lines = load_yaml(text, source)
    try:
        return SettingsIn.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigError.from_problems(source, pydantic_problems(exc, node_lines, SettingsIn)) from None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise KnowledgeBaseError([(str(path), Problem(None, "", f"cannot read: {exc}"))]) from None


class KnowledgeBaseError(ConfigError):
    """A base with mistakes: one ``FILE:LINE: FIELD: MESSAGE`` line per problem, over all its files."""

    def __init__(self, problems: Iterable[tuple[str, Problem]]) -> None:
        located = list(problems)
        super().__init__("\n".join(p.render(source) if source else p.message for source, p in located))
        self.problems = tuple(p for _, p in located)
        self.sources = tuple(source for source, _ in located)
