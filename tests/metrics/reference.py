"""Slow, obvious Market-1501 evaluator, written the way the field's reference Python code is.

A per-query loop in the style of torchreid's ``eval_market1501`` (python path) plus
fast-reid's mINP, with two documented conventions made explicit:

* ties: a *stable* argsort, i.e. ties broken by gallery index;
* a valid query that keeps fewer than ``max_rank`` gallery items has its CMC curve padded
  with its last value (1, since it holds a match), so every curve has length ``max_rank``.

``float64_reference`` gives feature distances in float64 without cancellation.

Used only to check ``sureid.metrics`` (tests and ``benchmarks/eval_speed.py``).
"""

from __future__ import annotations

import numpy as np


def reference_eval(distmat, q_pids, g_pids, q_camids, g_camids, max_rank=50):
    """Return ``(cmc, mAP, mINP, num_valid, per_query_ap)``; ValueError if no query is valid."""
    distmat = np.asarray(distmat)
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    num_q, num_g = distmat.shape
    all_cmc, all_ap, all_inp = [], [], []
    per_query_ap = []
    num_valid_q = 0
    for q_idx in range(num_q):
        q_pid, q_camid = q_pids[q_idx], q_camids[q_idx]
        order = np.argsort(distmat[q_idx], kind="stable")
        matches = (g_pids[order] == q_pid).astype(np.int32)
        # remove gallery samples that have the same pid and camid with query
        remove = (g_pids[order] == q_pid) & (g_camids[order] == q_camid)
        keep = np.invert(remove)
        raw_cmc = matches[keep]
        if not np.any(raw_cmc):
            per_query_ap.append(float("nan"))
            continue
        cmc = raw_cmc.cumsum()
        pos_max_idx = np.max(np.where(raw_cmc == 1))
        inp = cmc[pos_max_idx] / (pos_max_idx + 1.0)
        all_inp.append(inp)
        cmc[cmc > 1] = 1
        cmc = list(cmc[:max_rank])
        while len(cmc) < max_rank:
            cmc.append(cmc[-1])
        all_cmc.append(cmc)
        num_valid_q += 1
        num_rel = raw_cmc.sum()
        tmp_cmc = raw_cmc.cumsum()
        tmp_cmc = [x / (i + 1.0) for i, x in enumerate(tmp_cmc)]
        tmp_cmc = np.asarray(tmp_cmc) * raw_cmc
        ap = tmp_cmc.sum() / num_rel
        all_ap.append(ap)
        per_query_ap.append(ap)
    if num_valid_q == 0:
        raise ValueError("all query identities do not appear in gallery")
    all_cmc = np.asarray(all_cmc, dtype=np.float64).sum(0) / num_valid_q
    return all_cmc, float(np.mean(all_ap)), float(np.mean(all_inp)), num_valid_q, np.array(
        per_query_ap
    )


def float64_reference(q, g, metric):
    """Distances in float64 from the features as given (direct differences, no cancellation)."""
    q, g = np.asarray(q, np.float64), np.asarray(g, np.float64)
    if metric == "cosine":
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
        g = g / np.linalg.norm(g, axis=1, keepdims=True)
        return ((q[:, None] - g[None]) ** 2).sum(-1) / 2  # = 1 - cos, without cancellation
    return ((q[:, None] - g[None]) ** 2).sum(-1)
