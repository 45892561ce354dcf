"""Compute beside encoding: a bounded two-stage pipeline for streamed outputs.

``overlapped(items, consume)`` calls ``consume(item)`` for every item, in order, in a second thread, while the
calling thread produces the next items (the kernels release the GIL, and pyarrow releases it while it
encodes). At most ``depth`` produced items wait for the consumer, so memory holds at most ``depth + 2``
items (one being produced, ``depth`` waiting, one being consumed). The output is the one the sequential
loop ``for item in items: consume(item)`` writes, byte for byte: the same items, in the same order, to the
same consumer.

An exception on either side stops both: the producer stops at its next item, the consumer finishes the
item it is on and takes no other, and the exception is raised in the calling thread (Ctrl-C and the
termination signals included), so the caller's writer can discard its file as it does for the loop.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")
DEPTH = 2  # produced items that may wait for the consumer
_DONE = object()


def overlapped(items: Iterable[T], consume: Callable[[T], object], depth: int = DEPTH) -> None:
    """``for item in items: consume(item)``, with ``consume`` in a second thread beside the production."""
    waiting: queue.Queue = queue.Queue(maxsize=depth)
    failed: list[BaseException] = []
    stop = threading.Event()

    def consumer() -> None:
        while True:
            item = waiting.get()
            if item is _DONE or stop.is_set():
                return
            try:
                consume(item)
            except BaseException as exc:  # handed to the calling thread
                failed.append(exc)
                stop.set()
                return

    def put(item) -> bool:
        """Wait for room for ``item``; False when the consumer has stopped."""
        while not stop.is_set():
            try:
                waiting.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    thread = threading.Thread(target=consumer, name="scalesweep-writer", daemon=True)
    thread.start()
    interrupted: BaseException | None = None
    try:
        for item in items:
            if not put(item):
                break
        else:
            put(_DONE)
    except BaseException as exc:
        interrupted = exc
    while thread.is_alive():  # the consumer ends its item before the caller discards the output
        if interrupted is not None:
            stop.set()
            try:  # unblock a consumer waiting for an item that will not come
                waiting.put_nowait(_DONE)
            except queue.Full:
                pass
        try:
            thread.join()
        except BaseException as exc:  # a signal while waiting: stop, and raise it once the consumer is done
            interrupted = interrupted or exc
    if interrupted is not None:
        raise interrupted
    if failed:
        raise failed[0]
