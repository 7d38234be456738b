"""A small news-authors JSONL written in the test (never copied from ../shared): authors with distinct
vocabularies and categories, dated articles, one prolific author."""

from __future__ import annotations

import json
from pathlib import Path

TOPICS = {
    "politics": "senate vote bill campaign governor election congress policy",
    "sports": "match league coach season playoff goal striker stadium",
    "food & drink": "recipe kitchen chef flavor dinner bake spice pasta",
    "travel": "flight island hotel beach passport journey tour resort",
    "entertainment": "movie actor premiere album singer festival series award",
    "crime": "police arrest court trial suspect charge jury robbery",
}


def write_authors(path: Path, n_authors: int = 9, base: int = 6, prolific: int = 40) -> Path:
    """``n_authors`` authors, author i writing ``base + i`` articles (author 0: ``prolific``)."""
    names = list(TOPICS)
    lines = []
    for a in range(n_authors):
        category = names[a % len(names)]
        words = TOPICS[category].split()
        count = prolific if a == 0 else base + a
        for n in range(count):
            title = f"Author{a} {words[n % len(words)]} {words[(n + a) % len(words)]} story {n}"
            desc = f"{words[(n + 2) % len(words)]} {words[(n + 3) % len(words)]} report number {n} by author {a}"
            lines.append({"user_id": f"author-{a}", "text": f"{title}. {desc}", "title": title, "category": category.upper(),
                          "timestamp": f"2020-{1 + n // 28:02d}-{1 + n % 28:02d}", "post_id": f"https://news/{a}/{n}",
                          "kind": "article", "tags": [category.upper()]})
    path.write_text("".join(json.dumps(x) + "\n" for x in lines), encoding="utf-8")
    return path
