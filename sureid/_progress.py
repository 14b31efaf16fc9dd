"""A dependency-free progress line for long loops (training epochs, evaluation, data generation)."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


class Progress:
    """Wrap an iterable and print ``desc  i/n  rate  ETA  postfix`` to ``stream``.

    On a terminal the line is redrawn in place; otherwise (CI logs, files) a line is
    written every ``min_interval`` seconds and at the end, so logs stay short.

    Example:
        >>> for batch in Progress(loader, desc="epoch 1"):  # doctest: +SKIP
        ...     pass
    """

    def __init__(
        self,
        iterable: Iterable[T],
        *,
        desc: str = "",
        total: int | None = None,
        enabled: bool = True,
        stream: TextIO | None = None,
        min_interval: float | None = None,
    ) -> None:
        self.iterable = iterable
        self.desc = desc
        self.total = total if total is not None else _safe_len(iterable)
        self.enabled = enabled
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        if min_interval is None:
            min_interval = 0.2 if self.tty else 10.0
        self.min_interval = min_interval
        self.postfix = ""

    def set_postfix(self, text: str) -> None:
        self.postfix = text

    def __iter__(self) -> Iterator[T]:
        start = last = time.perf_counter()
        i = 0
        for i, item in enumerate(self.iterable, 1):
            yield item
            now = time.perf_counter()
            if self.enabled and now - last >= self.min_interval:
                self._print(i, now - start, final=False)
                last = now
        if self.enabled:
            self._print(i, time.perf_counter() - start, final=True)

    def _print(self, i: int, elapsed: float, *, final: bool) -> None:
        rate = i / elapsed if elapsed > 0 else 0.0
        count = f"{i}/{self.total}" if self.total else str(i)
        eta = ""
        if self.total and rate > 0 and not final:
            eta = f" eta {(self.total - i) / rate:.0f}s"
        line = f"{self.desc} {count} [{elapsed:.0f}s, {rate:.1f} it/s{eta}] {self.postfix}".rstrip()
        if self.tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()


def _safe_len(obj: object) -> int | None:
    try:
        return len(obj)  # type: ignore[arg-type]
    except TypeError:
        return None
