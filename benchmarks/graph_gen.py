"""Synthetic kgkd graphs of any size, in the vocabulary of ``graphs/sentiment.ttl`` (for scale tests).

Generated on demand into a temp folder, never committed. Kept free of torch and of the
benchmark helpers so the tests can import it cheaply.
"""

from __future__ import annotations

import random
from pathlib import Path

GENRES = ("product reviews", "movie reviews", "restaurant reviews", "social media", "news editorial",
          "forum posts", "app reviews", "hotel reviews")  # fmt: skip
HEADER = """@prefix :        <https://w3id.org/kgkd/graphs/generated#> .
@prefix kgkd:    <https://w3id.org/kgkd/vocab#> .
@prefix rdfs:    <http://www.w3.org/2000/01/rdf-schema#> .
@prefix xsd:     <http://www.w3.org/2001/XMLSchema#> .

:sentiment_classification a kgkd:Task ;
    rdfs:label "sentiment classification" ;
    rdfs:comment "Decide whether a short text is negative or positive." ;
    kgkd:hasLabelSet :sentiment_binary .

:sentiment_binary a kgkd:LabelSet ;
    rdfs:label "binary sentiment" ;
    rdfs:comment "0 = negative, 1 = positive." .

:negative a kgkd:Label ; rdfs:label "negative" ; kgkd:inLabelSet :sentiment_binary ; kgkd:labelIndex 0 .
:positive a kgkd:Label ; rdfs:label "positive" ; kgkd:inLabelSet :sentiment_binary ; kgkd:labelIndex 1 .
"""


def generated_turtle(domains: int, *, teacher_every: int = 10, links: int = 3, seed: int = 0) -> str:
    """Turtle text of a valid graph with ``domains`` domains (``d00000`` ...), one teacher per
    ``teacher_every`` domains and ``links`` weighted ``kgkd:similarTo`` links per domain."""
    if domains < 2:
        raise ValueError(f"domains must be >= 2, got {domains}")
    rng = random.Random(seed)
    width = max(5, len(str(domains - 1)))
    name = [f"d{i:0{width}d}" for i in range(domains)]
    parts = [HEADER]
    for i, dom in enumerate(name):
        genre = GENRES[i % len(GENRES)]
        others = rng.sample(range(domains), min(links + 1, domains))
        sims = ",\n        ".join(
            f"[ kgkd:target :{name[j]} ; kgkd:weight {rng.randint(1, 99) / 100} ]"
            for j in [j for j in others if j != i][:links]
        )
        parent = f"\n    kgkd:sharesGenre :{name[i - len(GENRES)]} ;" if i >= len(GENRES) else ""
        parts.append(
            f""":{dom} a kgkd:Domain ;
    rdfs:label "Domain {i}" ;
    rdfs:comment "Generated text domain {i} ({genre})." ;
    kgkd:modality "text" ;
    kgkd:hasTask :sentiment_classification ;
    kgkd:hasLabelSet :sentiment_binary ;
    kgkd:genre "{genre}" ;
    kgkd:avgLength {rng.randint(50, 300) / 10} ;
    kgkd:isReview {"true" if "reviews" in genre else "false"} ;{parent}
    kgkd:similarTo {sims} .
"""
        )
        if i % teacher_every == 0:
            parts.append(
                f""":teacher_{dom} a kgkd:Teacher ;
    rdfs:label "Teacher of domain {i}" ;
    rdfs:comment "Generated teacher trained on {dom}." ;
    kgkd:architecture "hf:minilm" ;
    kgkd:trainedOn :{dom} ;
    kgkd:predicts :sentiment_binary .
"""
            )
    return "\n".join(parts)


def write_generated(path: str | Path, domains: int, **options: int) -> Path:
    """Write :func:`generated_turtle` to ``path`` and return it."""
    out = Path(path)
    out.write_text(generated_turtle(domains, **options), encoding="utf-8")
    return out
