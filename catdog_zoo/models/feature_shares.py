"""Extracting into the feature cache: one process's rows straight into an entry, or each worker's share of an
entry (``multi_worker``) joined through the cache folder; the images each replica extracted (``mirrored``).
"""

from __future__ import annotations

import numpy as np

from ..data import cache
from ..util.rows import RowsView, shard_bounds
from .frozen import EXTRACT_BATCH


def count_shares(shares: list, report, what: str, say) -> None:
    """Images each replica extracted (mirrored), said and added to the report."""
    if any(shares):
        say(f"{len(shares)} replicas extracted {' + '.join(map(str, shares))} {what}")
        so_far = report.replica_images or [0] * len(shares)
        report.replica_images = [a + b for a, b in zip(so_far, shares)]


def extract_into(name: str, images, start: int, stop: int, run, label: str, progress):
    """Rows ``start..stop`` of ``images`` through ``run``, straight into the cache entry ``name``."""
    with progress(label, stop - start) as bar, cache.writing(name, dtype=np.float32) as out:
        run(RowsView(images, start, stop), out.append, bar.advance, start // EXTRACT_BATCH)
        return out.commit()


def extract_shared(cluster, name: str, images, run, label: str, progress, say) -> tuple:
    """``(rows, images this worker extracted)``: each worker extracts its share (whole batches) into an
    entry of its own in the cache folder, waits for the others, then joins the shares into ``name``.

    The shares meet through the cache folder, which workers on one machine share (a cluster needs it on
    a shared file system; the secret that signs entries too). A share another worker's folder does not
    show here is extracted here as well, after one line saying so: slower, never wrong.
    """
    w, n = cluster.worker_index, cluster.workers
    bounds = shard_bounds(len(images), n, EXTRACT_BATCH)

    def share_name(i):
        return f"{name}-share{i}of{n}"
    mine = extract_into(share_name(w), images, bounds[w], bounds[w + 1], run, label, progress)
    print(f"Worker {w} of {n}: extracted {bounds[w + 1] - bounds[w]} of {len(images)} images ({label})", flush=True)
    cluster.barrier()
    extracted = bounds[w + 1] - bounds[w]
    with cache.writing(name, dtype=np.float32) as whole:
        for i in range(n):
            share = mine if i == w else cache.load(share_name(i))
            if share is None or len(share) != bounds[i + 1] - bounds[i]:
                say(f"Note: worker {i}'s share of {label} is not in {cache.cache_root()} here (is the cache folder "
                    "shared between workers?); extracting it in this worker too")
                run(RowsView(images, bounds[i], bounds[i + 1]), whole.append, lambda k: None,
                    bounds[i] // EXTRACT_BATCH)
                extracted += bounds[i + 1] - bounds[i]
                continue
            for start in range(0, len(share), 4096):
                whole.append(share[start:start + 4096])
        rows = whole.commit()
    cluster.barrier()  # every worker has read every share: each removes its own
    getattr(mine, "close", lambda: None)()  # (an array when the cache folder cannot be written)
    cache.remove(share_name(w))
    return rows, extracted
