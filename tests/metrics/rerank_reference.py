"""A straightforward dense k-reciprocal re-ranking, written like torchreid's ``re_ranking``.

Differences from torchreid, all deliberate and documented in sureid.metrics.rerank:

* the distances are used as given (torchreid squares them first);
* it takes the whole ``(N, N)`` matrix of all items, queries first, and each row is divided
  by its own maximum (torchreid builds ``[[q_q, q_g], [q_g.T, g_g]]``, divides its columns
  and transposes: the same numbers when the matrix is symmetric, which floating-point
  distances are only up to rounding);
* ``np.argsort(kind="stable")``: ties by item index (torchreid's default sort is unstable).

Everything is dense ``(N, N)``: fine for the few hundred items of the tests.
"""

import numpy as np


def rerank_reference(dist, num_query, k1=20, k2=6, lambda_value=0.3):
    original_dist = np.array(dist, dtype=np.float32)
    row_max = np.max(original_dist, axis=1, keepdims=True)
    row_max[row_max <= 0] = 1.0
    original_dist = 1.0 * original_dist / row_max
    V = np.zeros_like(original_dist).astype(np.float32)
    initial_rank = np.argsort(original_dist, axis=1, kind="stable").astype(np.int32)

    query_num = num_query
    all_num = original_dist.shape[0]

    for i in range(all_num):
        # k-reciprocal neighbours
        forward_k_neigh_index = initial_rank[i, : k1 + 1]
        backward_k_neigh_index = initial_rank[forward_k_neigh_index, : k1 + 1]
        fi = np.where(backward_k_neigh_index == i)[0]
        k_reciprocal_index = forward_k_neigh_index[fi]
        k_reciprocal_expansion_index = k_reciprocal_index
        for j in range(len(k_reciprocal_index)):
            candidate = k_reciprocal_index[j]
            half = int(np.around(k1 / 2.0)) + 1
            candidate_forward_k_neigh_index = initial_rank[candidate, :half]
            candidate_backward_k_neigh_index = initial_rank[candidate_forward_k_neigh_index, :half]
            fi_candidate = np.where(candidate_backward_k_neigh_index == candidate)[0]
            candidate_k_reciprocal_index = candidate_forward_k_neigh_index[fi_candidate]
            shared = np.intersect1d(candidate_k_reciprocal_index, k_reciprocal_index)
            if len(shared) > 2.0 / 3 * len(candidate_k_reciprocal_index):
                k_reciprocal_expansion_index = np.append(
                    k_reciprocal_expansion_index, candidate_k_reciprocal_index
                )
        k_reciprocal_expansion_index = np.unique(k_reciprocal_expansion_index)
        weight = np.exp(-original_dist[i, k_reciprocal_expansion_index])
        V[i, k_reciprocal_expansion_index] = 1.0 * weight / np.sum(weight)

    original_dist = original_dist[:query_num,]
    if k2 != 1:
        V_qe = np.zeros_like(V, dtype=np.float32)
        for i in range(all_num):
            V_qe[i, :] = np.mean(V[initial_rank[i, :k2], :], axis=0)
        V = V_qe
    invIndex = []
    for i in range(all_num):
        invIndex.append(np.where(V[:, i] != 0)[0])

    jaccard_dist = np.zeros_like(original_dist, dtype=np.float32)
    for i in range(query_num):
        temp_min = np.zeros(shape=[1, all_num], dtype=np.float32)
        indNonZero = np.where(V[i, :] != 0)[0]
        indImages = [invIndex[ind] for ind in indNonZero]
        for j in range(len(indNonZero)):
            temp_min[0, indImages[j]] = temp_min[0, indImages[j]] + np.minimum(
                V[i, indNonZero[j]], V[indImages[j], indNonZero[j]]
            )
        jaccard_dist[i] = 1 - temp_min / (2.0 - temp_min)

    final_dist = jaccard_dist * (1 - lambda_value) + original_dist * lambda_value
    return final_dist[:query_num, query_num:]
