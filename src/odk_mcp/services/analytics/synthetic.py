"""A synthetic household survey with planted data-quality problems and known truth.

Used by the tests (precision and recall of each quality rule), the benchmarks (a million
submissions) and demos. Honest interviews take about 30 minutes, near the enumerator's home
village; planted problems are speeders, straight-liners, exact and near duplicates, outlier
values, fabricated GPS points, and one enumerator who fills in interviews without
interviewees (answers from a narrow, distinctive distribution).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import polars as pl

from odk_mcp.services.forms import Choice, Field

REGIONS = ("north", "south", "east", "west")
CROPS = ("maize", "rice", "cassava", "beans", "sorghum", "none")
LIKERT = ("1", "2", "3", "4", "5")
AREA_BOX = (30.0, -5.0, 35.0, 0.0)  # min_lon, min_lat, max_lon, max_lat
FIRST_DAY = datetime(2026, 3, 2, tzinfo=UTC)
FORM_ID = "survey"


def _select(name: str, values: tuple[str, ...], list_name: str) -> Field:
    return Field(
        path=f"/{name}",
        name=name,
        type="string",
        repeat=None,
        binary=False,
        select_multiple=False,
        labels={"default": name.replace("_", " ").capitalize()},
        choices=tuple(Choice(v, {"default": v}) for v in values),
        choice_list=list_name,
    )


def _plain(name: str, kind: str) -> Field:
    return Field(
        path=f"/{name}",
        name=name,
        type=kind,
        repeat=None,
        binary=False,
        select_multiple=False,
        labels={"default": name},
    )


def survey_fields() -> tuple[Field, ...]:
    likert = tuple(_select(f"q{i}", LIKERT, "agree") for i in range(1, 9))
    return (
        _plain("start", "dateTime"),
        _plain("end", "dateTime"),
        _select("region", REGIONS, "regions"),
        _select("sex", ("f", "m"), "sex"),
        _plain("age", "int"),
        _plain("household_size", "int"),
        _plain("income", "decimal"),
        _select("crop", CROPS, "crops"),
        _select("has_phone", ("yes", "no"), "yesno"),
        *likert,
        _plain("village", "int"),
        _plain("weight", "decimal"),
        _plain("location", "geopoint"),
        _plain("visit_date", "date"),
        _plain("comment", "string"),
    )


@dataclass
class Truth:
    """Submission ids (and the enumerator) where each problem was planted."""

    speeding: set[int] = field(default_factory=set)
    straightlining: set[int] = field(default_factory=set)
    duplicate: set[int] = field(default_factory=set)
    near_duplicate: set[int] = field(default_factory=set)
    outlier: set[int] = field(default_factory=set)
    gps_outside_area: set[int] = field(default_factory=set)
    fabricator: str = ""


def survey(
    n: int = 10_000, enumerators: int = 20, seed: int = 7, problems: bool = True
) -> tuple[pl.DataFrame, Truth]:
    """`n` submissions in the read model's shape (oldest first) and where problems are."""
    rng = np.random.default_rng(seed)
    who = rng.integers(1, enumerators + 1, n)
    home_lat = rng.uniform(-4.5, -0.5, enumerators + 1)
    home_lon = rng.uniform(30.5, 34.5, enumerators + 1)
    region_of = rng.integers(0, len(REGIONS), enumerators + 1)
    created = np.sort(rng.uniform(0, 28 * 86400, n))  # seconds after FIRST_DAY
    minutes = rng.lognormal(np.log(30), 0.25, n)
    start = created - minutes * 60 - rng.uniform(60, 3600, n)
    wealth = rng.normal(0, 1, n)
    likert_base = np.clip(np.round(3 + wealth[:, None] * 0.4 + rng.normal(0, 1.2, (n, 8))), 1, 5).astype(int)
    data: dict[str, object] = {
        "/region": np.array(REGIONS)[region_of[who]],
        "/sex": rng.choice(["f", "m"], n),
        "/age": rng.integers(18, 86, n),
        "/household_size": rng.poisson(4.5, n) + 1,
        "/income": np.round(np.exp(rng.normal(5 + 0.4 * wealth, 0.5)), 2),
        "/crop": rng.choice(CROPS, n, p=[0.35, 0.2, 0.15, 0.15, 0.1, 0.05]),
        "/has_phone": np.where(rng.uniform(size=n) < 0.55 + 0.1 * np.tanh(wealth), "yes", "no"),
        **{f"/q{i + 1}": likert_base[:, i].astype(str) for i in range(8)},
        "/village": who * 100 + rng.integers(0, 5, n),
        "/weight": np.round(rng.uniform(0.5, 3.0, n), 4),
        "/comment": rng.choice(["", "ok", "respondent was busy", "second visit", "no problems"], n),
    }
    lat = home_lat[who] + rng.normal(0, 0.02, n)
    lon = home_lon[who] + rng.normal(0, 0.02, n)
    truth = Truth()
    end_minutes = minutes.copy()
    if problems:
        truth.fabricator = str(enumerators)
        _plant(rng, n, who, enumerators, data, lat, lon, end_minutes, truth)
    frame = pl.DataFrame(
        {
            "submission_id": np.arange(1, n + 1),
            "created_at": _instants(created),
            "submitter_id": who,
            "form_version": np.where(np.arange(n) < n // 2, "1", "2"),
            "__lat": lat,
            "__lon": lon,
            "__start": _instants(start),
            "__end": _instants(start + end_minutes * 60),
            **data,
        }
    )
    stamp = "%Y-%m-%dT%H:%M:%S%.3f+00:00"
    frame = frame.with_columns(
        pl.format("collect:{}", pl.col("submitter_id")).alias("device_id"),
        pl.format("uuid:{}", pl.col("submission_id")).alias("instance_id"),
        pl.format("{} {} 1200.0 5.0", pl.col("__lat").round(7), pl.col("__lon").round(7)).alias("/location"),
        pl.col("__start").dt.strftime(stamp).alias("/start"),
        pl.col("__end").dt.strftime(stamp).alias("/end"),
        pl.col("__start").dt.strftime("%Y-%m-%d").alias("/visit_date"),
    ).drop("__lat", "__lon", "__start", "__end")
    if problems:
        frame = _copies(rng, frame, truth)
    return frame, truth


def _instants(seconds: np.ndarray) -> pl.Series:
    """Seconds after FIRST_DAY as UTC datetimes."""
    micros = (FIRST_DAY.timestamp() * 1e6 + seconds * 1e6).astype(np.int64)
    return pl.Series(micros).cast(pl.Datetime("us", "UTC"))


def _plant(
    rng: np.random.Generator,
    n: int,
    who: np.ndarray,
    fabricator: int,
    data: dict[str, object],
    lat: np.ndarray,
    lon: np.ndarray,
    minutes: np.ndarray,
    truth: Truth,
) -> None:
    honest = np.flatnonzero(who != fabricator)
    picks = rng.permutation(honest)
    k = max(1, n // 50)
    speeders, liners, outliers, gps = (picks[i * k : (i + 1) * k] for i in range(4))
    minutes[speeders] = rng.uniform(2, 5, len(speeders))
    truth.speeding = {int(i) + 1 for i in speeders}
    for i in liners:
        value = rng.choice(LIKERT)
        for q in range(1, 9):
            data[f"/q{q}"][i] = value  # type: ignore[index]
    truth.straightlining = {int(i) + 1 for i in liners}
    half = len(outliers) // 2
    data["/age"][outliers[:half]] = rng.integers(200, 999, half)  # type: ignore[index]
    data["/income"][outliers[half:]] = data["/income"][outliers[half:]] * 1000  # type: ignore[index]
    truth.outlier = {int(i) + 1 for i in outliers}
    lat[gps] = rng.uniform(5, 10, len(gps))  # hundreds of km north of the area
    lon[gps] = rng.uniform(20, 25, len(gps))
    truth.gps_outside_area = {int(i) + 1 for i in gps}
    mine = np.flatnonzero(who == fabricator)
    for q in range(1, 9):
        data[f"/q{q}"][mine] = rng.choice(["3", "4", "5"], len(mine), p=[0.2, 0.3, 0.5])  # type: ignore[index]
    data["/crop"][mine] = rng.choice(["maize", "beans"], len(mine))  # type: ignore[index]
    data["/has_phone"][mine] = "yes"  # type: ignore[index]


def _copies(rng: np.random.Generator, frame: pl.DataFrame, truth: Truth) -> pl.DataFrame:
    """Append exact and near copies of clean honest submissions as new, later submissions."""
    planted = truth.speeding | truth.straightlining | truth.outlier | truth.gps_outside_area
    ids = frame["submission_id"].to_numpy()
    fabricator = int(truth.fabricator)
    clean = [
        int(i)
        for i, w in zip(ids, frame["submitter_id"].to_numpy(), strict=True)
        if int(i) not in planted and w != fabricator
    ]
    k = max(1, frame.height // 100)
    sources = rng.choice(clean, 2 * k, replace=False)
    copies = frame.filter(pl.col("submission_id").is_in(sources.tolist()))
    order = {int(s): j for j, s in enumerate(sources)}
    copies = (
        copies.with_columns(pl.col("submission_id").replace_strict(order).alias("__order"))
        .sort("__order")
        .drop("__order")
    )
    last = int(ids.max())
    new_ids = np.arange(last + 1, last + 1 + copies.height)
    latest = frame.select(pl.col("created_at").max()).item()
    copies = copies.with_columns(
        pl.Series("submission_id", new_ids),
        pl.Series("created_at", [latest + timedelta(minutes=j + 1) for j in range(copies.height)]),
        pl.Series("instance_id", [f"uuid:{i}" for i in new_ids]),
    )
    near_rows = np.arange(k, copies.height)
    changed_age = copies["/age"].to_numpy().copy()
    changed_age[near_rows] = changed_age[near_rows] + rng.integers(1, 5, len(near_rows))
    comments = copies["/comment"].to_list()
    for j in near_rows:
        comments[j] = "copied"
    copies = copies.with_columns(pl.Series("/age", changed_age), pl.Series("/comment", comments))
    truth.duplicate = {int(i) for i in new_ids[:k]}
    truth.near_duplicate = {int(i) for i in new_ids[k:]}
    return pl.concat([frame, copies])


def survey_xform() -> bytes:
    fields = survey_fields()
    instance = "".join(f"<{f.name}/>" for f in fields)
    binds = "".join(f'<bind nodeset="/data/{f.name}" type="{f.type}"/>' for f in fields)
    body = []
    for f in fields:
        label = f"<label>{f.labels.get('default', f.name)}</label>"
        if f.choices:
            items = "".join(
                f"<item><label>{c.value}</label><value>{c.value}</value></item>" for c in f.choices
            )
            body.append(f'<select1 ref="/data/{f.name}">{label}{items}</select1>')
        else:
            body.append(f'<input ref="/data/{f.name}">{label}</input>')
    return f"""<?xml version="1.0"?>
<h:html xmlns="http://www.w3.org/2002/xforms" xmlns:h="http://www.w3.org/1999/xhtml"
        xmlns:jr="http://openrosa.org/javarosa">
  <h:head><h:title>Household survey</h:title>
    <model>
      <instance><data id="{FORM_ID}" version="1">{instance}<meta><instanceID/></meta></data></instance>
      {binds}<bind nodeset="/data/meta/instanceID" type="string" readonly="true()"/>
    </model>
  </h:head>
  <h:body>{"".join(body)}</h:body>
</h:html>""".encode()
