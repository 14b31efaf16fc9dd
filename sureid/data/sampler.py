"""P x K identity sampler: seeded, exact length, distributed-aware."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

from .._checks import INT64_MAX, check_int, check_label, is_int

__all__ = ["RandomIdentitySampler"]


class RandomIdentitySampler(Sampler[int]):
    """Yields dataset indices so that every ``batch_size`` consecutive ones hold P = batch_size / K
    distinct identities with K = ``num_instances`` images each, and every image once per epoch.

    Use it as ``sampler=`` with the *same* ``batch_size`` on every process:
    ``DataLoader(ds, batch_size=s.batch_size, sampler=s)``. ``batch_size`` is per process.

    One epoch:

    1. Identities are dealt to the ranks (a seeded shuffle, then in snake order of their group
       counts), so **ranks see disjoint identities** with about equal numbers of images.
    2. On each rank, every identity's images are shuffled and cut into groups of K. An identity
       with fewer than K images is padded by drawing with replacement (as torchreid does); an
       incomplete last group is completed with other images of the same identity, so **every
       image is in a group**. That gives ``g_i`` groups for identity ``i`` and ``N`` in all.
    3. The rank's ``B = max(ceil(N / P), max_i g_i)`` batches are filled one by one: identities
       that need every remaining batch go first, the other slots go to identities drawn without
       replacement with probability proportional to their groups left. When fewer than P
       identities have groups left (the last batches), the free slots get an extra group of an
       identity not yet in the batch. Every group is used exactly once, so every image appears
       at least once; the extra groups are the only repeats.

    ``len(sampler)`` is exact, ``B * batch_size`` with ``B`` the largest over the ranks (all
    ranks yield the same number of batches). With one process ``B`` does not depend on the
    epoch; with several it can change by one between epochs as the identities are re-dealt (the
    DataLoader reads it after :meth:`set_epoch`). The sampler only yields whole batches, so a
    DataLoader's ``drop_last`` changes nothing.

    Randomness is a local ``numpy.random.Generator`` seeded with ``(seed, epoch)``: the same on
    every rank, independent of global RNG state. Call :meth:`set_epoch` each epoch.

    Args:
        labels: identity of every dataset item, length ``len(dataset)``.
        batch_size: per-process batch size, a multiple of ``num_instances``.
        num_instances: K, images per identity in a batch.
        seed: base seed.
        rank, world_size: default from ``torch.distributed`` when initialised, else 0 and 1.

    Raises:
        ValueError / TypeError: bad sizes, fewer identities than ``P * world_size``.
    """

    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int = 64,
        num_instances: int = 4,
        *,
        seed: int = 0,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        batch_size = check_int("batch_size", batch_size)
        num_instances = check_int("num_instances", num_instances, low=1)
        # numpy seeds are non-negative: -1 failed only when the first epoch was drawn
        seed = check_int("seed", seed, low=0)
        if batch_size < num_instances or batch_size % num_instances:
            raise ValueError(
                f"batch_size must be a positive multiple of num_instances={num_instances}, "
                f"got {batch_size}"
            )
        if world_size is None or rank is None:
            dist = torch.distributed
            on = dist.is_available() and dist.is_initialized()
            if world_size is None:
                world_size = dist.get_world_size() if on else 1
            rank = rank if rank is not None else (dist.get_rank() if on else 0)
        world_size = check_int("world_size", world_size, low=1)
        rank = check_int("rank", rank, low=0, high=world_size - 1)
        if isinstance(labels, torch.Tensor):
            labels = labels.tolist()
        if not isinstance(labels, np.ndarray) and isinstance(labels, Sequence):
            for i, v in enumerate(labels):  # before numpy turns 2**63 or a mix into floats
                if is_int(v):
                    check_label(f"labels[{i}]", v)
        arr = np.asarray(labels)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {arr.shape}")
        if arr.dtype == np.uint64 and arr.max() <= INT64_MAX:
            arr = arr.astype(np.int64)
        if not np.issubdtype(arr.dtype, np.integer) or arr.dtype == np.uint64:
            raise TypeError(
                f"labels must be integers that fit int64 (floats are refused, even whole "
                f"ones), got dtype {arr.dtype}"
            )
        self.batch_size, self.num_instances = batch_size, num_instances
        self.num_pids_per_batch = batch_size // num_instances
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self.epoch = 0
        pids, inverse = np.unique(arr, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))[:-1]
        self._items = np.split(order, bounds)  # dataset indices per identity, ascending
        need = self.num_pids_per_batch * self.world_size
        if len(pids) < need:
            raise ValueError(
                f"need at least P * world_size = {self.num_pids_per_batch} * {self.world_size} "
                f"= {need} identities (P = batch_size / num_instances), labels have {len(pids)}"
            )
        k = self.num_instances
        self._groups = np.array([-(-len(x) // k) for x in self._items])  # ceil(n_i / K)

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle; call with the epoch number (an int >= 0) before each epoch.

        Raises:
            TypeError: ``epoch`` is not an int (``"3"``, ``1.7`` and ``True`` are refused).
            ValueError: ``epoch`` is negative.
        """
        self.epoch = check_int("epoch", epoch, low=0)

    def _deal(self, rng: np.random.Generator) -> list[np.ndarray]:
        """Identities of each rank: a shuffle, sorted by group count, dealt in snake order."""
        ids = rng.permutation(len(self._items))
        ids = ids[np.argsort(-self._groups[ids], kind="stable")]
        w = self.world_size
        snake = np.concatenate([np.arange(w), np.arange(w)[::-1]])
        owner = snake[np.arange(len(ids)) % (2 * w)]
        return [np.sort(ids[owner == r]) for r in range(w)]

    def _num_batches(self, ids: np.ndarray) -> int:
        g = self._groups[ids]
        return max(-(-int(g.sum()) // self.num_pids_per_batch), int(g.max()))

    @property
    def num_batches(self) -> int:
        """Batches per rank in the current epoch."""
        rng = np.random.default_rng([self.seed, self.epoch])
        return max(self._num_batches(ids) for ids in self._deal(rng))

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _groups_of(self, pid: int, rng: np.random.Generator) -> list[np.ndarray]:
        """Identity ``pid``'s images shuffled into groups of K, padded from its own images."""
        items, k = self._items[pid], self.num_instances
        perm = rng.permutation(items)
        short = -len(perm) % k
        if short:
            pool = perm if len(perm) < k else perm[: len(perm) - len(perm) % k]
            pad = rng.choice(pool, size=short, replace=len(pool) < short)
            perm = np.concatenate([perm, pad])
        return [perm[i : i + k] for i in range(0, len(perm), k)]

    def batches(self) -> Iterator[np.ndarray]:
        """This rank's batches of the current epoch, each ``(batch_size,)`` dataset indices."""
        rng = np.random.default_rng([self.seed, self.epoch])
        dealt = self._deal(rng)
        total = max(self._num_batches(ids) for ids in dealt)
        ids = dealt[self.rank]
        rng = np.random.default_rng([self.seed, self.epoch, self.rank + 1])
        queues = {int(pid): self._groups_of(pid, rng) for pid in ids}
        p = self.num_pids_per_batch
        for b in range(total):
            left = np.array([len(queues[int(pid)]) for pid in ids])
            must = ids[left == total - b]  # left == batches left: needed in every one of them
            rest = (left > 0) & (left < total - b)
            take = min(p - len(must), int(rest.sum()))
            chosen = must.tolist()
            if take > 0:
                w = left[rest] / left[rest].sum()
                chosen += rng.choice(ids[rest], size=take, replace=False, p=w).tolist()
            batch = [queues[pid].pop() for pid in chosen]
            if len(chosen) < p:  # the last batches: extra groups of identities not in this one
                spare = np.setdiff1d(ids, chosen)
                for pid in rng.choice(spare, size=p - len(chosen), replace=False).tolist():
                    batch.append(self._groups_of(pid, rng)[0])
            yield np.concatenate(batch)

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch.tolist()

    def __repr__(self) -> str:
        return (
            f"RandomIdentitySampler(P={self.num_pids_per_batch}, K={self.num_instances}, "
            f"batches={self.num_batches}, rank={self.rank}/{self.world_size}, epoch={self.epoch})"
        )
