"""The free-text themes facade: which answers, the permission check, the model, the sample.

Reading the answers needs what reading the submissions needs (`submission.list`, checked by
the read facade), since free text can hold anything a respondent said. At most `max_answers`
non-empty answers are analysed: beyond that a seeded random sample of them is, and the result
says so (`sampled`). The embedding model is optional (the `text` extra plus the model wheel):
without it the endpoint answers 501.61 saying how to install it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from odk_mcp.kernel import problems
from odk_mcp.kernel.actor import Actor
from odk_mcp.kernel.problems import Problem
from odk_mcp.services.analytics.adapters import embedding
from odk_mcp.services.analytics.domain.errors import AnalysisError
from odk_mcp.services.analytics.domain.fields import FieldIndex, Kind
from odk_mcp.services.analytics.loading import FormFrames, compute, problem_of

if TYPE_CHECKING:
    from odk_mcp.services.analytics.domain.themes import ThemesResult

DEFAULT_MAX_ANSWERS = 2000


def model_missing(missing: str) -> Problem:
    return Problem(
        problems.TEXT_MODEL_MISSING,
        f"Free-text themes need the optional embedding model ({missing!r} is not installed):"
        f" {embedding.INSTALL_HINT}.",
        {"missing": missing, "install": embedding.INSTALL_HINT},
    )


class Themes:
    def __init__(self, frames: FormFrames, max_answers: int = DEFAULT_MAX_ANSWERS) -> None:
        self._frames = frames
        self._max_answers = max_answers

    async def themes(
        self,
        actor: Actor,
        project_id: int,
        xml_form_id: str,
        path: str,
        odata_filter: str | None = None,
        max_themes: int = 8,
        quotes: int = 5,
    ) -> ThemesResult:
        form = await self._frames.form(actor, project_id, xml_form_id)
        try:
            FieldIndex.of(form.all_fields).require(path, [Kind.TEXT], "field")
        except AnalysisError as error:
            raise problem_of(error) from error
        missing = embedding.missing_module()
        if missing is not None:
            raise model_missing(missing)
        data = await self._frames.load(form, [path], odata_filter, meta=[], ordered=True)
        limit = self._max_answers

        def work() -> ThemesResult:
            import numpy as np

            from odk_mcp.services.analytics.domain.themes import SEED, distinct_answers, themes

            values = [v for v in data.frame.get_column(path).to_list() if v is not None and str(v).strip()]
            total = len(values)
            sampled = total > limit
            if sampled:
                chosen = np.sort(np.random.default_rng(SEED).choice(total, size=limit, replace=False))
                values = [values[i] for i in chosen]
            answers = distinct_answers([str(v) for v in values])
            vectors = (
                embedding.encoder().encode(answers.texts) if answers.texts else np.zeros((0, 384), np.float32)
            )
            return themes(path, answers, vectors, embedding.MODEL_NAME, total, sampled, max_themes, quotes)

        try:
            return await compute(work)
        except embedding.ModelUnavailable as error:
            raise model_missing(error.missing) from error
