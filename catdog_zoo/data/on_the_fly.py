"""A split whose pixels are not kept: the files known to decode, decoded again whenever rows are read."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import ZooError
from .limits import ImageError
from .pixels import decode_file


class DecodedOnTheFly:
    """The pixels of files known to decode, decoded again whenever rows are asked for (a slice, an index,
    a shuffled batch), on every core: what a split is when its pixels are not kept in the cache."""

    def __init__(self, paths, size):
        self.paths, self.size = list(paths), tuple(size)
        self.shape, self.dtype, self.ndim = (len(self.paths), *self.size, 3), np.dtype(np.uint8), 4

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, key):
        if isinstance(key, (int, np.integer)):
            return self._decode([self.paths[key]])[0]
        index = np.arange(len(self.paths))[key]
        return self._decode([self.paths[i] for i in np.atleast_1d(index)])

    def __array__(self, dtype=None, copy=None):
        whole = self[:]
        return whole if dtype is None else whole.astype(dtype)

    def _decode(self, paths) -> np.ndarray:
        # A thread per core, not the graph pipeline of whole splits: setting a pipeline up costs about 40 ms,
        # more than a batch takes to decode this way.
        def one(path):
            try:
                return decode_file(path, self.size)
            except ImageError as exc:
                raise ZooError(f"{path} no longer decodes ({exc}); it changed during the run: run again") from None
        if not paths:
            return np.zeros((0, *self.size, 3), np.uint8)
        with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
            return np.stack(list(pool.map(one, paths)))
