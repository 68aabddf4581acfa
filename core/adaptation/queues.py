"""Per-class FIFO queues of detached adapted features (the IFC memory banks, method.md §4.8)."""

from __future__ import annotations

import torch


class FeatureQueue:
    """FIFO of at most ``cap`` detached float32 rows; pushing past the cap drops the oldest rows.

    Stored as a ring buffer: :meth:`tensor` is a view of the held rows in storage order (fine for
    nearest-neighbour search), :meth:`ordered` returns them oldest first.
    """

    def __init__(self, cap: int):
        if cap < 1:
            raise ValueError("queue cap must be ≥ 1")
        self.cap = int(cap)
        self._buf: torch.Tensor | None = None
        self._src = torch.empty(self.cap, dtype=torch.int64)  # source id (image index) per row
        self._pos = 0  # next row to write
        self._size = 0

    def __len__(self) -> int:
        return self._size

    @property
    def dim(self) -> int | None:
        return None if self._buf is None else self._buf.shape[1]

    def push(self, rows: torch.Tensor, source: int = -1) -> None:
        """Append (n, D) rows (copied, detached, float32) coming from ``source`` (e.g. image index)."""
        rows = rows.detach().to(torch.float32).reshape(-1, rows.shape[-1])
        n = rows.shape[0]
        if n == 0:
            return
        if self._buf is None:
            self._buf = torch.empty(self.cap, rows.shape[1], dtype=torch.float32, device=rows.device)
        elif rows.shape[1] != self._buf.shape[1]:
            raise ValueError(f"queue holds {self._buf.shape[1]}-d rows, got {rows.shape[1]}-d")
        if n >= self.cap:
            self._buf.copy_(rows[n - self.cap:])
            self._src.fill_(source)
            self._pos, self._size = 0, self.cap
            return
        first = min(n, self.cap - self._pos)
        self._buf[self._pos:self._pos + first] = rows[:first]
        self._src[self._pos:self._pos + first] = source
        if n > first:
            self._buf[: n - first] = rows[first:]
            self._src[: n - first] = source
        self._pos = (self._pos + n) % self.cap
        self._size = min(self._size + n, self.cap)

    def tensor(self) -> torch.Tensor:
        """The held rows (size, D), storage order; empty (0, 0) before the first push."""
        if self._buf is None:
            return torch.empty(0, 0)
        return self._buf[: self._size]

    def sources(self) -> torch.Tensor:
        """Source id of each row of :meth:`tensor` (same order)."""
        return self._src[: self._size]

    def ordered(self) -> torch.Tensor:
        """The held rows oldest first."""
        if self._buf is None or self._size < self.cap:
            return self.tensor().clone()
        return torch.cat([self._buf[self._pos:], self._buf[: self._pos]])


class ClassQueues:
    """Queues per (class id, kind). Kinds ending in "_global" use ``global_cap``, others
    ``patch_cap``. A class is *ready* once ``min_images`` images were pushed for it."""

    def __init__(self, patch_cap: int, global_cap: int, min_images: int):
        self.patch_cap = patch_cap
        self.global_cap = global_cap
        self.min_images = min_images
        self._queues: dict[tuple[int, str], FeatureQueue] = {}
        self._images: dict[int, int] = {}

    def push(self, class_id: int, kind: str, rows: torch.Tensor, source: int = -1) -> None:
        key = (int(class_id), kind)
        if key not in self._queues:
            cap = self.global_cap if kind.endswith("_global") else self.patch_cap
            self._queues[key] = FeatureQueue(cap)
        self._queues[key].push(rows, source)

    def count_images(self, class_id: int, n: int = 1) -> None:
        """Record that ``n`` more images of ``class_id`` were pushed."""
        self._images[int(class_id)] = self._images.get(int(class_id), 0) + n

    def images(self, class_id: int) -> int:
        return self._images.get(int(class_id), 0)

    def ready(self, class_id: int) -> bool:
        return self.images(class_id) >= self.min_images

    def bank(self, class_id: int, kind: str, exclude_source: int | None = None) -> torch.Tensor | None:
        """Rows held for (class, kind), without those from ``exclude_source``; None if empty."""
        q = self._queues.get((int(class_id), kind))
        if q is None or len(q) == 0:
            return None
        rows = q.tensor()
        if exclude_source is not None:
            keep = q.sources() != exclude_source
            if not bool(keep.all()):
                rows = rows[keep]
        return rows if rows.shape[0] else None

    def rows(self, class_id: int, kind: str) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(rows (size, D), source id per row (size,)) held for (class, kind); None if empty."""
        q = self._queues.get((int(class_id), kind))
        if q is None or len(q) == 0:
            return None
        return q.tensor(), q.sources()
