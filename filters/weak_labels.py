"""Weak category labels from keywords, to train the sample's small category classifiers.

GneissWeb's category classifiers were trained on 800k documents labelled by a commercial
categorizer (WatsonNLP). We have no such labels, so the sample models learn from a transparent
keyword heuristic instead, applied to real web text:

- a document's hits for a category = occurrences of that category's keywords (whole words,
  lower-cased), per 1,000 words;
- positive for a category when it has >= `min_distinct` distinct keywords of it and a density
  >= `min_density`;
- negative (`cc`) when it has no more than one keyword hit of *any* category (clearly off-topic);
- anything in between is left out of training (ambiguous).

The resulting classifiers mostly re-learn these keyword lists, smoothed by fastText; they are
fit for exercising the pipeline on the sample, not for curating real data. The production
config uses GneissWeb's released classifiers.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable

CATEGORY_KEYWORDS: dict[str, frozenset[str]] = {
    "medical": frozenset(
        [
            "patient",
            "patients",
            "doctor",
            "doctors",
            "physician",
            "clinic",
            "clinical",
            "hospital",
            "disease",
            "diseases",
            "symptom",
            "symptoms",
            "treatment",
            "treatments",
            "therapy",
            "diagnosis",
            "diagnosed",
            "medication",
            "medications",
            "medicine",
            "drug",
            "drugs",
            "surgery",
            "surgical",
            "cancer",
            "diabetes",
            "infection",
            "infections",
            "vaccine",
            "nurse",
            "nursing",
            "health",
            "healthcare",
            "chronic",
            "pain",
            "blood",
            "heart",
            "dental",
            "prescription",
            "pharmacy",
            "cardiac",
            "tumor",
            "syndrome",
            "disorder",
            "medical",
            "illness",
        ]
    ),
    "education": frozenset(
        [
            "student",
            "students",
            "school",
            "schools",
            "teacher",
            "teachers",
            "teaching",
            "classroom",
            "curriculum",
            "education",
            "educational",
            "learning",
            "learn",
            "course",
            "courses",
            "university",
            "college",
            "degree",
            "graduate",
            "undergraduate",
            "lesson",
            "lessons",
            "homework",
            "exam",
            "exams",
            "tuition",
            "academic",
            "professor",
            "professors",
            "grade",
            "grades",
            "kindergarten",
            "scholarship",
            "semester",
            "campus",
            "enrollment",
            "literacy",
            "pupils",
            "instructor",
        ]
    ),
    "technology": frozenset(
        [
            "software",
            "hardware",
            "computer",
            "computers",
            "app",
            "apps",
            "application",
            "applications",
            "data",
            "internet",
            "online",
            "website",
            "server",
            "servers",
            "cloud",
            "programming",
            "code",
            "developer",
            "developers",
            "technology",
            "digital",
            "device",
            "devices",
            "network",
            "networks",
            "algorithm",
            "database",
            "smartphone",
            "android",
            "iphone",
            "windows",
            "linux",
            "browser",
            "cyber",
            "security",
            "encryption",
            "wifi",
            "processor",
            "download",
            "user",
            "users",
            "interface",
            "api",
        ]
    ),
    "science": frozenset(
        [
            "research",
            "researchers",
            "scientist",
            "scientists",
            "science",
            "scientific",
            "experiment",
            "experiments",
            "laboratory",
            "theory",
            "hypothesis",
            "physics",
            "chemistry",
            "biology",
            "molecules",
            "molecule",
            "atoms",
            "atom",
            "cell",
            "cells",
            "genetic",
            "genes",
            "gene",
            "species",
            "evolution",
            "energy",
            "particles",
            "quantum",
            "climate",
            "ecosystem",
            "astronomy",
            "planet",
            "planets",
            "galaxy",
            "universe",
            "study",
            "studies",
            "analysis",
            "measurement",
        ]
    ),
}

_WORD = re.compile(r"[a-z]+")


def keyword_hits(text: str) -> tuple[int, dict[str, Counter[str]]]:
    """(number of words, {category: Counter of its keywords found})."""
    words = _WORD.findall(text.lower())
    hits = {c: Counter(w for w in words if w in kws) for c, kws in CATEGORY_KEYWORDS.items()}
    return len(words), hits


def weak_label(text: str, category: str, min_distinct: int = 4, min_density: float = 15.0) -> bool | None:
    """True (positive), False (clearly none of the categories) or None (ambiguous: leave out)."""
    n, hits = keyword_hits(text)
    if n == 0:
        return None
    own = hits[category]
    if len(own) >= min_distinct and 1000 * sum(own.values()) / n >= min_density:
        return True
    if sum(sum(c.values()) for c in hits.values()) <= 1:
        return False
    return None


def weak_examples(texts: Iterable[str], category: str, **kw: float) -> list[tuple[str, bool]]:
    out = []
    for t in texts:
        y = weak_label(t, category, **kw)  # type: ignore[arg-type]
        if y is not None:
            out.append((t, y))
    return out
