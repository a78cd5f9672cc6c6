"""Batch samplers: length-bucketed random batches for training, length-sorted batches for evaluation.

Training order is a pure function of ``(seed, epoch)``: every rank of a distributed run computes the same global
list of batches and takes every ``world_size``-th one, and a resumed run skips the batches it already trained on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np


class LengthBucketSampler:
    """Random batches of similar-length examples, for ``DataLoader(batch_sampler=...)``.

    Each epoch: shuffle the examples; cut the shuffled order into mega-buckets of ``bucket_batches`` batches;
    sort each mega-bucket by length and cut it into batches (so a batch holds examples of similar length and
    little padding); shuffle the order of all batches. With ``bucketing=False`` the batches are plain
    consecutive slices of the shuffled order; with ``shuffle=False`` the order is the dataset order.

    Under data parallelism the batch list is padded (by repeating its first batches) to a multiple of
    ``world_size`` so every rank gets the same number of batches; with ``world_size=1`` each example appears
    exactly once per epoch.

    Args:
        lengths: token length of every example.
        batch_size: examples per batch (the last batch of a mega-bucket may be smaller).
        seed: base seed; the order of epoch ``e`` depends only on ``(seed, e)``.
        shuffle: shuffle examples and batches.
        bucketing: group examples of similar length.
        bucket_batches: batches per mega-bucket (the window within which lengths are sorted).
        rank / world_size: this process's share of the batches.
        drop_last: drop the last incomplete batch (of the whole epoch) instead of keeping it.
    """

    def __init__(
        self,
        *,
        lengths: Sequence[int],
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        bucketing: bool = True,
        bucket_batches: int = 50,
        rank: int = 0,
        world_size: int = 1,
        drop_last: bool = False,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if bucket_batches < 1:
            raise ValueError(f"bucket_batches must be >= 1, got {bucket_batches}")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if len(lengths) == 0:
            raise ValueError("cannot sample batches from an empty dataset")
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (N,)
        self.batch_size = batch_size
        self.seed = seed
        self.shuffle = shuffle
        self.bucketing = bucketing
        self.bucket_batches = bucket_batches
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, *, skip: int = 0) -> None:
        """Select the epoch's order, and skip this rank's first ``skip`` batches (mid-epoch resume)."""
        if skip < 0:
            raise ValueError(f"skip must be >= 0, got {skip}")
        self.epoch = epoch
        self.skip = skip

    def global_batches(self) -> list[np.ndarray]:
        """Every rank's batches of the current epoch, in order (before the split over ranks)."""
        n = len(self.lengths)
        rng = np.random.default_rng([self.seed, self.epoch])
        order = rng.permutation(n) if self.shuffle else np.arange(n)  # (N,)
        if self.bucketing:
            window = self.batch_size * self.bucket_batches * self.world_size
            batches = []
            for start in range(0, n, window):
                chunk = order[start : start + window]  # (W,)
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]  # (W,) longest first
                batches.extend(chunk[i : i + self.batch_size] for i in range(0, len(chunk), self.batch_size))
        else:
            batches = [order[i : i + self.batch_size] for i in range(0, n, self.batch_size)]
        if self.drop_last and len(batches) > 1 and len(batches[-1]) < self.batch_size:
            batches.pop()
        if self.shuffle and self.bucketing:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        if self.world_size > 1 and len(batches) % self.world_size:
            missing = self.world_size - len(batches) % self.world_size
            batches.extend(batches[i % len(batches)] for i in range(missing))
        return batches

    @property
    def num_batches(self) -> int:
        """This rank's batches in a whole epoch (the same on every rank)."""
        n = len(self.lengths)
        count = -(-n // self.batch_size)  # bucketing windows are multiples of batch_size: same count
        if self.drop_last and count > 1 and n % self.batch_size:
            count -= 1
        return -(-count // self.world_size)

    def __iter__(self) -> Iterator[list[int]]:
        mine = self.global_batches()[self.rank :: self.world_size]
        for batch in mine[self.skip :]:
            yield batch.tolist()

    def __len__(self) -> int:
        return max(0, self.num_batches - self.skip)


def sorted_batches(
    lengths: Sequence[int], *, batch_size: int, rank: int = 0, world_size: int = 1
) -> list[list[int]]:
    """Evaluation batches: the dataset sorted by length (longest first), cut into batches, this rank's share.

    Ranks get disjoint shares that together cover every example once (their batch counts may differ by one).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")  # (N,)
    batches = [order[i : i + batch_size].tolist() for i in range(0, len(order), batch_size)]
    return batches[rank::world_size]
