"""Exact point-to-point shortest paths on an undirected weighted graph, in scipy's C Dijkstra.

A pure Python heap Dijkstra needs a second or more per query on a 100k-node street grid, so the
search runs inside `scipy.sparse.csgraph.dijkstra`, which has no "stop at target" option but has
`limit=` (do not settle nodes farther than `limit`) and `min_only=` (one search from several
sources at once, labelling every node with its nearest source). One call from both ends with
`limit=r` grows two balls of radius r, one around s and one around t, in one heap:

- every node v gets `dist[v] = min(d(s, v), d(t, v))` and the source that achieves it;
- along a shortest s-t path P of length d the label switches from s to t once, at an edge
  (u, w) with `dist[u] = d(s, u)` and `dist[w] = d(t, w)`, so
  `mu = min over edges (u, w) labelled (s, t) of dist[u] + len(u, w) + dist[w]` equals d;
- with the limit, that edge is settled whenever d <= 2r (every node of P is within d/2 of an end),
  and every candidate is the length of a real walk, so `mu >= d` always.

Hence if `mu <= 2r` then `mu == d` (exact); otherwise d > 2r and the search is repeated with
`r = mu / 2` (mu is an upper bound on d, so the repeat cannot fail) or, when the balls did not
touch, with a larger r. The two balls of radius about d/2 cover about half the area of the one
ball of radius d a plain Dijkstra settles.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components, dijkstra

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_NO_PRED = -9999  # scipy's marker for "no predecessor" / "no source"


def dedupe_edges(edges: IntArray, lengths: FloatArray) -> tuple[IntArray, FloatArray]:
    """Undirected edges as (lo, hi) pairs, self-loops dropped, parallel edges reduced to the shortest."""
    lo = np.minimum(edges[:, 0], edges[:, 1])
    hi = np.maximum(edges[:, 0], edges[:, 1])
    keep = lo != hi
    lo, hi, lengths = lo[keep], hi[keep], lengths[keep]
    if lo.size == 0:
        return np.empty((0, 2), dtype=np.int64), np.empty(0, dtype=np.float64)
    order = np.lexsort((lengths, hi, lo))
    lo, hi, lengths = lo[order], hi[order], lengths[order]
    first = np.ones(lo.size, dtype=bool)
    first[1:] = (lo[1:] != lo[:-1]) | (hi[1:] != hi[:-1])
    return np.stack([lo[first], hi[first]], axis=1).astype(np.int64), lengths[first].astype(np.float64)


@dataclass(frozen=True)
class CsrGraph:
    """A symmetric CSR adjacency of the open edges, with connected-component labels."""

    matrix: csr_matrix
    indptr: NDArray[np.int32]
    indices: NDArray[np.int32]
    data: FloatArray
    degree: IntArray
    component: NDArray[np.int32]

    @classmethod
    def build(cls, n_nodes: int, edges: IntArray, lengths: FloatArray) -> CsrGraph:
        """`edges` must already be deduplicated (see `dedupe_edges`); both directions are stored."""
        src = np.concatenate([edges[:, 0], edges[:, 1]])
        dst = np.concatenate([edges[:, 1], edges[:, 0]])
        wt = np.concatenate([lengths, lengths])
        order = np.lexsort((dst, src))
        src, dst, wt = src[order], dst[order], wt[order]
        degree = np.bincount(src, minlength=n_nodes).astype(np.int64)
        indptr = np.zeros(n_nodes + 1, dtype=np.int32)
        np.cumsum(degree, out=indptr[1:])
        # int32 indices and float64 data: scipy's csgraph then uses the arrays without copying them.
        indices = dst.astype(np.int32)
        data = wt.astype(np.float64)
        # Built from raw arrays (not COO) so zero-length edges stay explicit edges of weight 0.
        matrix = csr_matrix((data, indices, indptr), shape=(n_nodes, n_nodes))
        _, labels = connected_components(matrix, directed=False)
        return cls(matrix, indptr, indices, data, degree, labels.astype(np.int32))

    def shortest(self, s: int, t: int, radius_guess: float) -> tuple[float, list[int]] | None:
        """Exact length and node sequence of a shortest s-t path; None when t is unreachable."""
        if s == t:
            return 0.0, [s]
        if self.component[s] != self.component[t]:
            return None
        r = max(float(radius_guess), 1e-9)
        while True:
            dist, pred, source = dijkstra(
                self.matrix, directed=True, indices=[s, t], min_only=True, return_predecessors=True, limit=r
            )
            meet = self._meeting_edge(dist, source, s, t)
            if meet is not None:
                mu, u, w = meet
                if mu <= 2.0 * r:
                    return mu, self._unwind(pred, u)[::-1] + self._unwind(pred, w)
                r = mu / 2.0  # mu >= d, so the next search settles the meeting edge
            else:
                r *= 4.0  # same component: the balls will touch eventually

    def _meeting_edge(
        self, dist: FloatArray, source: NDArray[np.int32], s: int, t: int
    ) -> tuple[float, int, int] | None:
        """Best (dist[u] + len + dist[w], u, w) over edges from an s-labelled u to a t-labelled w."""
        side_s = np.flatnonzero(source == s)
        side_t = np.flatnonzero(source == t)
        # Scan the adjacency of the smaller labelled set; the edge is the same seen from either end.
        flipped = side_t.size < side_s.size
        nodes, other = (side_t, s) if flipped else (side_s, t)
        starts = self.indptr[nodes].astype(np.int64)
        counts = self.indptr[nodes + 1].astype(np.int64) - starts
        total = int(counts.sum())
        if total == 0:
            return None
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts)
        pos = offsets + np.arange(total, dtype=np.int64)
        nbr = self.indices[pos]
        hit = np.flatnonzero(source[nbr] == other)
        if hit.size == 0:
            return None
        here = np.repeat(nodes, counts)[hit]
        there = nbr[hit].astype(np.int64)
        cost = dist[here] + self.data[pos[hit]] + dist[there]
        best = int(np.argmin(cost))
        u, w = int(here[best]), int(there[best])
        if flipped:
            u, w = w, u
        return float(cost[best]), u, w

    @staticmethod
    def _unwind(pred: NDArray[np.int32], node: int) -> list[int]:
        """Nodes from `node` back to the source of its search tree, `node` first."""
        out = [node]
        p = int(pred[node])
        while p != _NO_PRED:
            out.append(p)
            p = int(pred[p])
        return out
