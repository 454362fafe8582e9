"""A background thread that takes a sample at a fixed interval while a benchmark runs."""

from __future__ import annotations

import threading
from typing import Self


class PeriodicSampler:
    """Calls ``sample`` every ``interval`` seconds between entering and leaving the context."""

    def __init__(self, interval: float) -> None:
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.sample()

    def sample(self) -> None:
        raise NotImplementedError
