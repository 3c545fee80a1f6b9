#!/usr/bin/env python3
"""Independent re-computation of siamrec's headline numbers from its plain-text outputs.

  independent_eval.py topn RECS.tsv TRAIN_FILE TEST_FILE [K]
      RECS.tsv from `siamrec recommend --all-users` (user<TAB>item,item,...); TRAIN/TEST files in
      MovieLens u.data format (user item rating time). Prints P@K, R@K, NDCG@K, HR@K over users with
      test items (binary relevance, log2 discount, ideal DCG over min(|test|, K)); checks that no
      train item was recommended.
  independent_eval.py ncf-pairs NCF_DIR OUT_PAIRS.tsv
      Writes the NCF candidate pairs (test item + 99 negatives per user) with MovieLens ids, for
      `siamrec score --pairs`.
  independent_eval.py ncf SCORES.tsv NCF_DIR [K]
      SCORES.tsv from `siamrec score`; HR@K and NDCG@K of each user's test item among its 100
      candidates, a tied negative ranked above (pessimistic).
Only the Python standard library is used; no siamrec code.
"""
import math
import sys


def read_pairs(path):
    d = {}
    for line in open(path):
        p = line.split()
        if len(p) >= 2:
            d.setdefault(p[0], set()).add(p[1])
    return d


def topn(recs, train_file, test_file, k=10):
    train, test = read_pairs(train_file), read_pairs(test_file)
    n = prec = rec = ndcg = hr = 0.0
    for line in open(recs):
        user, items = line.rstrip('\n').split('\t')
        items = items.split(',')[:k]
        assert not (set(items) & train.get(user, set())), f'train item recommended to {user}'
        t = test.get(user)
        if not t:
            continue
        hits = [1 if i in t else 0 for i in items]
        dcg = sum(h / math.log2(r + 2) for r, h in enumerate(hits))
        idcg = sum(1 / math.log2(r + 2) for r in range(min(len(t), k)))
        n += 1
        prec += sum(hits) / k
        rec += sum(hits) / len(t)
        ndcg += dcg / idcg
        hr += 1 if sum(hits) else 0
    print(f'users {int(n)}  P@{k} {prec/n:.4f}  R@{k} {rec/n:.4f}  NDCG@{k} {ndcg/n:.4f}  HR@{k} {hr/n:.4f}')


def ncf_maps(ncf_dir):
    lg = ncf_dir.rstrip('/') + '/../ml-1m-implicit-lightgcn/'
    umap = dict(l.split()[::-1] for l in open(lg + 'user_list.txt') if l.split()[1].isdigit())
    imap = dict(l.split()[::-1] for l in open(lg + 'item_list.txt') if l.split()[1].isdigit())
    return umap, imap


def ncf_pairs(ncf_dir, out):
    umap, imap = ncf_maps(ncf_dir)
    with open(out, 'w') as f:
        for line in open(ncf_dir.rstrip('/') + '/ml-1m.test.negative'):
            p = line.rstrip('\n').split('\t')
            u, i = p[0][1:-1].split(',')
            for item in [i] + [x for x in p[1:] if x]:
                f.write(f'{umap[u]}\t{imap[item]}\n')


def ncf(scores, ncf_dir, k=10):
    umap, imap = ncf_maps(ncf_dir)
    s = {}
    for line in open(scores):
        u, i, v = line.split('\t')
        s[(u, i)] = float(v)
    n = hr = ndcg = 0.0
    for line in open(ncf_dir.rstrip('/') + '/ml-1m.test.negative'):
        p = line.rstrip('\n').split('\t')
        u, i = p[0][1:-1].split(',')
        uu = umap[u]
        pos = s[(uu, imap[i])]
        negs = [s[(uu, imap[x])] for x in p[1:] if x]
        rank = sum(1 for v in negs if v >= pos)  # ties pessimistic
        n += 1
        if rank < k:
            hr += 1
            ndcg += 1 / math.log2(rank + 2)
    print(f'users {int(n)}  HR@{k} {hr/n:.4f}  NDCG@{k} {ndcg/n:.4f}')


if __name__ == '__main__':
    cmd = sys.argv[1]
    if cmd == 'topn':
        topn(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]) if len(sys.argv) > 5 else 10)
    elif cmd == 'ncf-pairs':
        ncf_pairs(sys.argv[2], sys.argv[3])
    elif cmd == 'ncf':
        ncf(sys.argv[2], sys.argv[3], int(sys.argv[4]) if len(sys.argv) > 4 else 10)
    else:
        sys.exit(__doc__)
