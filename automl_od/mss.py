"""Mean-shift outlier scoring (MSS; Tan et al., "MSS-PAE", Pattern Recognition 2025).

Reconstruction detectors score the error between a point and its reconstruction. MSS keeps
the network's input as it is but measures the error against the point after m mean-shift
steps towards its neighbours: inliers sit in dense regions and barely move, outliers are
pulled towards the data, so their error against the shifted target grows.

- Training points (``MeanShiftScorer.fit``): for t = 1..m every point is replaced by the mean of
  its k nearest neighbours among the step t-1 positions, itself included; all move at once.
- New points (``transform``): for t = 1..m the current query is averaged with its k-1 nearest
  neighbours among the training positions of step t-1; queries never move each other.

Cost and memory: one k-nearest-neighbour query per step (scikit-learn's ``NearestNeighbors``,
which picks a tree or chunked brute force and so bounds memory by its ``working_memory``).
The reference set is a row subsample of at most ``max_reference`` training rows (seeded);
above that the shift is towards neighbours in the subsample. k is capped at the reference
size minus one. Neighbour lists are computed for ``max(k, NEIGHBOUR_POOL)`` neighbours and
cached by the content of the arrays, so a search that tries several k on the same fold reuses
the first step's query (for m = 1 that is the whole cost); :func:`shift_for_each_k` serves a
list of k from one query.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

#: Neighbour lists are computed for at least this many neighbours (the top of the k range).
NEIGHBOUR_POOL = 100
#: The cache holds at most this many lists, each of at most _CACHE_MAX_CELLS indices (32 MB):
#: larger queries are computed for k only and not kept.
_CACHE_SIZE = 8
_CACHE_MAX_CELLS = 4_000_000
_NEIGHBOUR_CACHE: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()


def _digest(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array)
    return f"{array.shape}{array.dtype}" + hashlib.blake2b(array.view(np.uint8).data, digest_size=16).hexdigest()


def nearest_neighbours(reference: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """Indices (n_queries, k) of each query's k nearest reference rows, nearest first (cached)."""
    from sklearn.neighbors import NearestNeighbors

    k = min(int(k), len(reference))
    if len(queries) * k > _CACHE_MAX_CELLS:
        return NearestNeighbors(n_neighbors=k).fit(reference).kneighbors(queries, return_distance=False)
    key = (_digest(reference), _digest(queries))
    cached = _NEIGHBOUR_CACHE.get(key)
    if cached is None or cached.shape[1] < k:
        pool = min(max(k, NEIGHBOUR_POOL), len(reference), max(k, _CACHE_MAX_CELLS // max(len(queries), 1)))
        cached = NearestNeighbors(n_neighbors=pool).fit(reference).kneighbors(queries, return_distance=False)
        _NEIGHBOUR_CACHE[key] = cached
        while len(_NEIGHBOUR_CACHE) > _CACHE_SIZE:
            _NEIGHBOUR_CACHE.popitem(last=False)
    _NEIGHBOUR_CACHE.move_to_end(key)
    return cached[:, :k]


class MeanShiftScorer:
    """Fit on training rows; ``transform`` gives new rows' shifted targets x^MS.

    ``steps`` is m, ``k`` the neighbourhood size (the point itself counts as one of the k).
    """

    def __init__(self, k: int = 10, steps: int = 1, max_reference: int = 20_000, random_state: int | None = None) -> None:
        self.k, self.steps, self.max_reference, self.random_state = k, steps, max_reference, random_state

    def fit(self, X: np.ndarray) -> MeanShiftScorer:
        if int(self.steps) < 1 or int(self.k) < 2:
            raise ValueError(f"mean shift needs steps >= 1 and k >= 2, but got steps={self.steps}, k={self.k}")
        X = np.asarray(X, dtype=np.float64)
        if len(X) > self.max_reference:
            rows = np.sort(np.random.default_rng(self.random_state).choice(len(X), size=self.max_reference, replace=False))
            X = X[rows]
        if len(X) < 2:
            raise ValueError("mean shift needs at least 2 training rows")
        self.k_ = max(2, min(int(self.k), len(X) - 1))
        positions = [X]
        for _ in range(int(self.steps) - 1):
            positions.append(self._step(positions[-1]))
        self.positions_ = positions  # steps 0..m-1: what new rows are shifted towards
        return self

    def _step(self, previous: np.ndarray) -> np.ndarray:
        return previous[nearest_neighbours(previous, previous, self.k_)].mean(axis=1)

    @property
    def shifted_training_(self) -> np.ndarray:
        """The (reference) training rows after m steps (computed on demand: scoring new rows
        does not need the last step).

        Note: ``transform`` of a training row is not the same thing: the row then counts as a
        query, which is averaged with its k-1 nearest training rows, itself among them."""
        return self._step(self.positions_[-1])

    def transform(self, X: np.ndarray) -> np.ndarray:
        current = np.asarray(X, dtype=np.float64)
        for reference in self.positions_:
            neighbours = nearest_neighbours(reference, current, self.k_ - 1)
            current = (current + reference[neighbours].sum(axis=1)) / self.k_
        return current


def shift_for_each_k(reference: np.ndarray, queries: np.ndarray, ks: Sequence[int]) -> dict[int, np.ndarray]:
    """One mean-shift step (m = 1) of the queries for every k in ``ks`` from a single k_max query:
    the shifted point for k is (q + sum of its k-1 nearest reference rows) / k, a prefix sum.
    Keys are the requested k; each k is capped at n-1 like :class:`MeanShiftScorer` does."""
    reference, queries = np.asarray(reference, dtype=np.float64), np.asarray(queries, dtype=np.float64)
    capped = {int(k): max(2, min(int(k), len(reference) - 1)) for k in ks}
    order = sorted(set(capped.values()))
    neighbours = nearest_neighbours(reference, queries, order[-1] - 1)
    running = queries.copy()
    by_capped: dict[int, np.ndarray] = {}
    taken = 0
    for k in order:
        for j in range(taken, k - 1):
            running += reference[neighbours[:, j]]
        taken = k - 1
        by_capped[k] = running / k
    return {k: by_capped[c] for k, c in capped.items()}
