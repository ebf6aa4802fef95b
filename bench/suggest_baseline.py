#!/usr/bin/env python3
"""The scikit-learn baseline for `switchboard intents suggest`'s grouping (issue 17).

Owns: the baseline figures of BENCHMARKS.md, "Suggestions (issue 17)".

Write the messages first (the same split, held-out and tuning intents as our figures), then run
this script on them:

    cargo run --release -p switchboard-core --example suggest_eval -- \
        ../shared/data/banking77/train.csv --write /tmp/suggest
    pip install scikit-learn
    python3 bench/suggest_baseline.py /tmp/suggest

The folder holds heldout.csv (the development-side messages of the ten held-out intents: the
evaluation) and tune1.csv, tune2.csv, tune3.csv (three sets of ten other intents), all
`text,category`. Baselines: TF-IDF (sublinear TF; word unigrams, the "plain" one, and word 1-2-grams
+ char_wb 2-5-grams) with scikit-learn's AgglomerativeClustering, average linkage on cosine
distance, cut at the distance threshold whose mean ARI over the three tuning sets is highest
(the same selection rule as ours). Scored as ours: adjusted Rand index over all messages, each
message of a group smaller than --min-size (3) a group of its own; purity and coverage of the
groups of at least min-size. For context, the same pipelines told the true number of intents
(n_clusters=10), which ours is never told.
"""
import csv
import sys
from collections import Counter
from pathlib import Path

MIN_SIZE = 3


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def score(labels, assigned, min_size=MIN_SIZE):
    from sklearn.metrics import adjusted_rand_score

    sizes = Counter(assigned)
    kept = [sizes[g] >= min_size for g in assigned]
    top = max(assigned) + 1
    predicted = [g if k else top + i for i, (g, k) in enumerate(zip(assigned, kept))]
    ari = adjusted_rand_score(labels, predicted)
    groups = {}
    for lab, g, k in zip(labels, assigned, kept):
        if k:
            groups.setdefault(g, Counter())[lab] += 1
    covered = sum(kept)
    purity = sum(c.most_common(1)[0][1] for c in groups.values()) / covered if covered else 0.0
    return {"ari": ari, "purity": purity, "coverage": covered / len(labels), "groups": len(groups), "messages": len(labels)}


def vectorizer(kind):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    if kind == "word":
        return TfidfVectorizer(sublinear_tf=True)
    return make_union(
        TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )


def cluster(texts, kind, threshold=None, n_clusters=None):
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics.pairwise import cosine_distances

    x = vectorizer(kind).fit_transform(texts)
    d = cosine_distances(x)
    model = AgglomerativeClustering(
        n_clusters=n_clusters,
        metric="precomputed",
        linkage="average",
        distance_threshold=None if n_clusters else threshold,
    )
    return list(model.fit_predict(d))


def line(name, s):
    print(
        f"  {name:<52} ARI {s['ari']:.3f}  purity {s['purity']:.3f}  coverage {s['coverage']:.3f}"
        f"  ({s['groups']} groups >= min-size, {s['messages']} messages)"
    )


def main():
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/suggest")
    held = load(folder / "heldout.csv")
    tunes = [load(folder / f"tune{k}.csv") for k in (1, 2, 3)]
    import sklearn

    print(f"scikit-learn {sklearn.__version__}; min-size {MIN_SIZE}")
    for kind, title in [("word", "TF-IDF words"), ("word+char", "TF-IDF word 1-2-grams + char_wb 2-5-grams")]:
        best = None
        for t in [0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9, 0.92, 0.94, 0.96]:
            scores = [score(labels, cluster(texts, kind, threshold=t)) for texts, labels in tunes]
            mean = sum(s["ari"] for s in scores) / len(scores)
            if best is None or mean > best[0]:
                best = (mean, t)
        mean, t = best
        print(f"{title}: distance threshold {t} (similarity {1 - t:.2f}), mean tuning ARI {mean:.3f}")
        line("held-out intents' messages (evaluation)", score(held[1], cluster(held[0], kind, threshold=t)))
        for k, (texts, labels) in enumerate(tunes, 1):
            line(f"tuning set {k}", score(labels, cluster(texts, kind, threshold=t)))
        line("held-out, told n_clusters=10 (oracle, for context)", score(held[1], cluster(held[0], kind, n_clusters=10)))


if __name__ == "__main__":
    main()
