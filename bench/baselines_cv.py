#!/usr/bin/env python3
"""The scikit-learn baselines of bench/baselines.py on the cross-validation folds that
`cargo run --release -p switchboard-core --example tune` writes with WRITE=dir (5 folds of
Banking77's training file, fold seeds 1 and 2; `FOLDS=k` for k folds), so that the matcher and the
baselines are compared on the very same 20,006 predictions. Prints accuracy and balanced accuracy
(mean per-intent recall), as the `tune` example does.

Usage: WRITE=/tmp/folds cargo run --release -p switchboard-core --example tune
       python3 bench/baselines_cv.py /tmp/folds
"""
import csv
import glob
import re
import sys


def load(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["category"] for r in rows]


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else "/tmp/folds"
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_union
    from sklearn.svm import LinearSVC

    def features():
        return make_union(
            TfidfVectorizer(analyzer="word", ngram_range=(1, 2), sublinear_tf=True),
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
        )

    models = [("tfidf_logreg", lambda: LogisticRegression(C=10, max_iter=2000)), ("tfidf_linearsvc", lambda: LinearSVC(C=1.0))]
    acc = {name: [] for name, _ in models}
    bal = {name: [] for name, _ in models}
    folds = sorted({tuple(map(int, re.findall(r"s(\d+)f(\d+)_", p)[0])) for p in glob.glob(f"{d}/s*f*_test.csv")})
    if not folds:
        sys.exit(f"no folds in {d}: write them with WRITE={d} (see the docstring)")
    for seed, fold in folds:
        xt, yt = load(f"{d}/s{seed}f{fold}_train.csv")
        xe, ye = load(f"{d}/s{seed}f{fold}_test.csv")
        v = features()
        a, b = v.fit_transform(xt), v.transform(xe)
        for name, make in models:
            pred = make().fit(a, yt).predict(b)
            acc[name].append(sum(p == g for p, g in zip(pred, ye)) / len(ye))
            recall = {}
            for p, g in zip(pred, ye):
                r = recall.setdefault(g, [0, 0])
                r[0] += p == g
                r[1] += 1
            bal[name].append(sum(r / n for r, n in recall.values()) / len(recall))
        print(f"seed {seed} fold {fold}: " + ", ".join(f"{n} {acc[n][-1] * 100:.1f}" for n in acc), flush=True)
    for name, a in acc.items():
        b = bal[name]
        print(f"{name}: mean {sum(a) / len(a) * 100:.2f} % (balanced {sum(b) / len(b) * 100:.2f} %) over {len(a)} folds")


if __name__ == "__main__":
    main()
