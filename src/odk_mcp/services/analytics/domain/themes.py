"""Themes in free-text answers: cluster sentence embeddings, quote, and name by their words.

Pure computation over already-embedded answers (the embedding model is an adapter):

- identical answers (after trimming and case-folding spaces) count once, with their count as
  a weight, so a hundred "no water" answers pull a theme without drowning the clustering;
- k-means on the unit-norm embeddings (Euclidean distance there is a monotone function of
  cosine distance), the number of themes chosen by the weighted answers' silhouette
  (cosine) over 2…`max_themes`; a fixed seed makes the result reproducible;
- a theme's quotes are the distinct answers nearest its centroid (the most typical ones);
- its words are the highest class-based TF-IDF terms (c-TF-IDF, as in BERTopic): a word's
  frequency in the theme, times log(1 + average words per theme / the word's frequency over
  all themes) — frequent here, rare elsewhere.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from odk_mcp.services.analytics.domain.errors import AnalysisError

SEED = 20240611
MIN_ANSWERS = 3
SILHOUETTE_SAMPLE = 3000
# Words for naming themes: two or more letters (numbers and single letters say little).
WORDS = r"(?u)\b[^\W\d_]{2,}\b"


@dataclass(frozen=True)
class Answers:
    """Distinct answers in first-seen order with how many times each was given."""

    texts: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True)
class Quote:
    text: str
    count: int
    similarity: float


@dataclass(frozen=True)
class Word:
    word: str
    score: float


@dataclass(frozen=True)
class Theme:
    theme: int
    size: int
    share: float
    distinct: int
    quotes: list[Quote]
    words: list[Word]


@dataclass(frozen=True)
class ThemesResult:
    field: str
    model: str
    answers: int
    distinct: int
    total_answers: int
    sampled: bool
    silhouette: float | None
    themes: list[Theme]


def distinct_answers(values: Sequence[str | None]) -> Answers:
    """Non-empty answers, identical ones (ignoring case and runs of spaces) merged with a count;
    the first spelling seen is the one quoted."""
    first: dict[str, str] = {}
    counts: Counter[str] = Counter()
    for value in values:
        if value is None:
            continue
        text = " ".join(value.split())
        if not text:
            continue
        key = text.casefold()
        first.setdefault(key, text)
        counts[key] += 1
    return Answers(tuple(first.values()), tuple(counts[k] for k in first))


def themes(
    field: str,
    answers: Answers,
    embeddings: npt.NDArray[np.float32],
    model: str,
    total_answers: int,
    sampled: bool,
    max_themes: int = 8,
    quotes: int = 5,
    words: int = 8,
) -> ThemesResult:
    """The themes of `answers` (one embedding row per distinct answer)."""
    if answers.total < MIN_ANSWERS or len(answers.texts) < 2:
        raise AnalysisError(
            "tooFewAnswers",
            f"Themes need at least {MIN_ANSWERS} non-empty answers with two different ones;"
            f" {field!r} has {answers.total} ({len(answers.texts)} different).",
            {"field": field, "answers": answers.total, "distinct": len(answers.texts)},
        )
    weights = np.asarray(answers.counts, dtype=np.float64)
    labels, silhouette = _cluster(embeddings, weights, max_themes)
    order = sorted(set(labels.tolist()), key=lambda c: (-weights[labels == c].sum(), c))
    out: list[Theme] = []
    term_scores = _ctfidf(answers, labels, order)
    for number, cluster in enumerate(order, start=1):
        members = np.flatnonzero(labels == cluster)
        centroid = np.average(embeddings[members], axis=0, weights=weights[members])
        centroid /= max(float(np.linalg.norm(centroid)), 1e-12)
        similarity = embeddings[members] @ centroid
        nearest = members[np.argsort(-similarity, kind="stable")][:quotes]
        size = int(weights[members].sum())
        out.append(
            Theme(
                theme=number,
                size=size,
                share=size / answers.total,
                distinct=len(members),
                quotes=[
                    Quote(answers.texts[i], answers.counts[i], round(float(embeddings[i] @ centroid), 4))
                    for i in nearest
                ],
                words=[Word(w, round(s, 4)) for w, s in term_scores[cluster][:words]],
            )
        )
    return ThemesResult(
        field=field,
        model=model,
        answers=answers.total,
        distinct=len(answers.texts),
        total_answers=total_answers,
        sampled=sampled,
        silhouette=None if silhouette is None else round(silhouette, 4),
        themes=out,
    )


def _cluster(
    embeddings: npt.NDArray[np.float32], weights: npt.NDArray[np.float64], max_themes: int
) -> tuple[npt.NDArray[np.int64], float | None]:
    """k-means labels for the k in 2…max_themes with the best weighted cosine silhouette
    (one theme when fewer than three distinct answers)."""
    from sklearn.cluster import KMeans
    from sklearn.metrics import silhouette_samples

    n = len(embeddings)
    if n < 3:
        return np.zeros(n, dtype=np.int64), None
    best: tuple[float, npt.NDArray[np.int64]] | None = None
    # The silhouette needs all pairwise distances: past SILHOUETTE_SAMPLE answers it is
    # estimated on a seeded sample of them (memory and time stay bounded).
    scored = np.arange(n)
    if n > SILHOUETTE_SAMPLE:
        scored = np.sort(np.random.default_rng(SEED).choice(n, size=SILHOUETTE_SAMPLE, replace=False))
    for k in range(2, min(max_themes, n - 1) + 1):
        model = KMeans(n_clusters=k, n_init=4, random_state=SEED).fit(embeddings, sample_weight=weights)
        labels = model.labels_.astype(np.int64)
        if len(set(labels[scored].tolist())) < 2:
            continue
        silhouettes = silhouette_samples(embeddings[scored], labels[scored], metric="cosine")
        score = float(np.average(silhouettes, weights=weights[scored]))
        if best is None or score > best[0] + 1e-9:
            best = (score, labels)
    if best is None:
        return np.zeros(n, dtype=np.int64), None
    return best[1], best[0]


def _ctfidf(
    answers: Answers, labels: npt.NDArray[np.int64], clusters: Sequence[int]
) -> dict[int, list[tuple[str, float]]]:
    """Each cluster's terms by c-TF-IDF, highest first (English stop words left out)."""
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, CountVectorizer

    vectorizer = CountVectorizer(stop_words=list(ENGLISH_STOP_WORDS), token_pattern=WORDS)
    try:
        matrix: Any = vectorizer.fit_transform(answers.texts)
    except ValueError:  # nothing but stop words and numbers: no words to name themes by
        return {c: [] for c in clusters}
    vocabulary = vectorizer.get_feature_names_out()
    weights = np.asarray(answers.counts, dtype=np.float64)
    per_class = np.vstack(
        [
            np.asarray(matrix[labels == c].multiply(weights[labels == c][:, None]).sum(axis=0)).ravel()
            for c in clusters
        ]
    )
    totals = per_class.sum(axis=1, keepdims=True)
    tf = per_class / np.maximum(totals, 1.0)
    average = per_class.sum() / len(clusters)
    idf = np.log1p(average / np.maximum(per_class.sum(axis=0), 1.0))
    scores = tf * idf
    out: dict[int, list[tuple[str, float]]] = {}
    for row, cluster in enumerate(clusters):
        ranked = np.argsort(-scores[row], kind="stable")
        out[cluster] = [(str(vocabulary[j]), float(scores[row, j])) for j in ranked if per_class[row, j] > 0]
    return out
