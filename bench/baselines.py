#!/usr/bin/env python3
"""Python baselines for `switchboard eval`, on exactly the same development split.

Owns: the scikit-learn and rapidfuzz reference numbers quoted in BENCHMARKS.md.

Write the split first (the same stratified 80/20, seed 42, that `switchboard eval --dev-split`
uses), then run this script on it:

    switchboard eval --train ../shared/data/banking77/train.csv --dev-split 0.2 --seed 42 \
        --write-split /tmp/split
    pip install scikit-learn rapidfuzz
    python3 bench/baselines.py /tmp/split

The split directory holds train.csv, dev.csv and dev_typos.csv (the dev messages after the seeded
typo generator of `switchboard eval --typos`), all `text,category`.
Baselines: TF-IDF (word 1-2-grams + char_wb 2-5-grams, sublinear TF) with LogisticRegression and
with LinearSVC, and nearest training example by normalised Levenshtein similarity (rapidfuzz).
"""
import csv
import json
import sys
import time
from pathlib import Path


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def main():
    split = Path(sys.argv[1] if len(sys.argv) > 1 else "split")
    xtr, ytr = load(split / "train.csv")
    xdev, ydev = load(split / "dev.csv")
    xtyp, ytyp = load(split / "dev_typos.csv")
    assert ytyp == ydev

    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline, make_union
    from sklearn.svm import LinearSVC

    def features():
        return make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )

    def acc(pred, gold):
        return sum(p == g for p, g in zip(pred, gold)) / len(gold)

    results = {}
    for name, clf in [
        ("tfidf_logreg", LogisticRegression(C=10, max_iter=2000)),
        ("tfidf_linearsvc", LinearSVC(C=1.0)),
    ]:
        pipe = make_pipeline(features(), clf)
        t0 = time.perf_counter()
        pipe.fit(xtr, ytr)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        clean = acc(pipe.predict(xdev), ydev)
        # Per-message latency: one message at a time, as a bot would see them.
        sample = xdev[:300]
        t1 = time.perf_counter()
        for x in sample:
            pipe.predict([x])
        us = (time.perf_counter() - t1) / len(sample) * 1e6
        typo = acc(pipe.predict(xtyp), ytyp)
        results[name] = dict(accuracy=clean, typo_accuracy=typo, drop_points=(clean - typo) * 100,
                             train_s=train_s, us_per_message=us)

    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    def nearest(texts):
        norm = [t.lower() for t in xtr]
        out = []
        for t in texts:
            _, _, i = process.extractOne(t.lower(), norm, scorer=Levenshtein.normalized_similarity)
            out.append(ytr[i])
        return out

    t0 = time.perf_counter()
    clean = acc(nearest(xdev), ydev)
    us = (time.perf_counter() - t0) / len(xdev) * 1e6
    typo = acc(nearest(xtyp), ytyp)
    results["rapidfuzz_nearest_levenshtein"] = dict(accuracy=clean, typo_accuracy=typo,
                                                    drop_points=(clean - typo) * 100, train_s=0.0,
                                                    us_per_message=us)

    print(json.dumps(results, indent=2))
    for k, r in results.items():
        print(f"{k:32s} accuracy {r['accuracy']*100:6.2f}%  typos {r['typo_accuracy']*100:6.2f}%  "
              f"drop {r['drop_points']:5.2f} pts  train {r['train_s']:.2f} s  {r['us_per_message']:.0f} µs/msg")


if __name__ == "__main__":
    main()
