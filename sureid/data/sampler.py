"""P x K identity sampler: seeded, exact length, distributed-aware."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Sampler

__all__ = ["RandomIdentitySampler"]


class RandomIdentitySampler(Sampler[int]):
    """Yields dataset indices so that every ``batch_size`` consecutive ones hold P = batch_size / K
    distinct identities with K = ``num_instances`` images each.

    Use it as ``sampler=`` with the *same* ``batch_size`` on every process:
    ``DataLoader(ds, batch_size=s.batch_size, sampler=s)``. ``batch_size`` is per process.

    One epoch: each identity's images are shuffled and cut into groups of K (an identity
    with fewer than K images gets one group drawn with replacement; an incomplete last group
    is dropped, as in torchreid). That gives ``N`` groups and ``N // P`` global batches. Each
    batch draws P distinct identities, weighted by their groups left; an identity that ran out
    is refilled with a fresh shuffle, so every batch can always be filled. Global batch ``i``
    goes to rank ``i % world_size``; the last ``(N // P) % world_size`` batches are dropped so all
    ranks get the same number. The sampler therefore only ever yields whole batches (so a
    DataLoader's ``drop_last`` changes nothing) and ``len(sampler)`` is exact:
    ``(N // P // world_size) * batch_size``.

    Randomness is a local ``numpy.random.Generator`` seeded with ``(seed, epoch)``: the same on
    every rank, independent of global RNG state. Call :meth:`set_epoch` each epoch.

    Args:
        labels: identity of every dataset item, length ``len(dataset)``.
        batch_size: per-process batch size, a multiple of ``num_instances``.
        num_instances: K, images per identity in a batch.
        seed: base seed.
        rank, world_size: default from ``torch.distributed`` when initialised, else 0 and 1.

    Raises:
        ValueError / TypeError: bad sizes, fewer identities than P, an epoch with no batch.
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
        for n, v in (("batch_size", batch_size), ("num_instances", num_instances), ("seed", seed)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise TypeError(f"{n} must be an int, got {type(v).__name__}")
        if num_instances < 1:
            raise ValueError(f"num_instances must be >= 1, got {num_instances}")
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
        if world_size < 1:
            raise ValueError(f"world_size must be >= 1, got {world_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, {world_size}), got {rank}")
        if isinstance(labels, torch.Tensor):
            labels = labels.tolist()
        arr = np.asarray(labels)
        if arr.ndim != 1 or arr.size == 0:
            raise ValueError(f"labels must be a non-empty 1-D sequence, got shape {arr.shape}")
        if not np.issubdtype(arr.dtype, np.integer):
            raise TypeError(f"labels must be integers, got dtype {arr.dtype}")
        self.batch_size, self.num_instances = int(batch_size), int(num_instances)
        self.num_pids_per_batch = self.batch_size // self.num_instances
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.epoch = 0
        pids, inverse = np.unique(arr, return_inverse=True)
        order = np.argsort(inverse, kind="stable")
        bounds = np.cumsum(np.bincount(inverse))[:-1]
        self._items = np.split(order, bounds)  # dataset indices per identity, ascending
        if len(pids) < self.num_pids_per_batch:
            raise ValueError(
                f"need at least P = batch_size / num_instances = {self.num_pids_per_batch} "
                f"identities, labels have {len(pids)}"
            )
        self._groups = np.array([max(1, len(x) // self.num_instances) for x in self._items])
        self.num_batches = int(self._groups.sum()) // self.num_pids_per_batch // self.world_size
        if self.num_batches == 0:
            raise ValueError(
                f"too few images for one batch of {self.batch_size} per rank on "
                f"{self.world_size} rank(s)"
            )

    def set_epoch(self, epoch: int) -> None:
        """Change the shuffle; call with the epoch number before each epoch."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_batches * self.batch_size

    def _groups_of(self, pid: int, rng: np.random.Generator) -> list[np.ndarray]:
        items, k = self._items[pid], self.num_instances
        if len(items) < k:
            return [rng.choice(items, size=k, replace=True)]
        perm = rng.permutation(items)
        return [perm[i * k : (i + 1) * k] for i in range(len(items) // k)]

    def batches(self) -> Iterator[np.ndarray]:
        """This rank's batches of the current epoch, each ``(batch_size,)`` dataset indices."""
        rng = np.random.default_rng([self.seed, self.epoch])
        queues = [self._groups_of(p, rng) for p in range(len(self._items))]
        left = np.array([len(q) for q in queues], dtype=np.float64)
        p = self.num_pids_per_batch
        for i in range(self.num_batches * self.world_size):
            chosen = rng.choice(len(queues), size=p, replace=False, p=left / left.sum())
            batch = []
            for pid in chosen:
                batch.append(queues[pid].pop())
                left[pid] -= 1
            for pid in chosen:  # refill exhausted identities so later batches can be filled
                if not queues[pid]:
                    queues[pid] = self._groups_of(pid, rng)
                    left[pid] = len(queues[pid])
            if i % self.world_size == self.rank:
                yield np.concatenate(batch)

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch.tolist()

    def __repr__(self) -> str:
        return (
            f"RandomIdentitySampler(P={self.num_pids_per_batch}, K={self.num_instances}, "
            f"batches={self.num_batches}, rank={self.rank}/{self.world_size}, epoch={self.epoch})"
        )
