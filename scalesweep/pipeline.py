"""Compute beside encoding: a bounded two-stage pipeline for streamed outputs.

``overlapped(items, consume)`` calls ``consume(item)`` for every item, in order, in a second thread, while the
calling thread produces the next items (the kernels release the GIL, and pyarrow releases it while it
encodes). At most ``depth`` produced items wait for the consumer, so memory holds at most ``depth + 2``
items (one being produced, ``depth`` waiting, one being consumed). The output is the one the sequential
loop ``for item in items: consume(item)`` writes, byte for byte: the same items, in the same order, to the
same consumer.

Once the first item is handed over, the kernels of the calling thread use one thread fewer than numba's
maximum (when that is their count and there are at least two) until the pipeline ends: the consumer encodes
on a core of its own instead of taking turns with the kernels' threads (the README's performance section
has the figures). Results do not depend on the thread count.

An exception on either side stops both: the producer stops at its next item, the consumer finishes the
item it is on and takes no other, and the exception is raised in the calling thread (Ctrl-C and the
termination signals included), so the caller's writer can discard its file as it does for the loop.
"""

from __future__ import annotations

import contextlib
import queue
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")
DEPTH = 2  # produced items that may wait for the consumer
_DONE = object()


@contextlib.contextmanager
def _core_for_the_consumer() -> Iterator[None]:
    """One kernel thread fewer in the calling thread while the block runs, when it has numba's maximum (numba
    counts threads per calling thread, so other threads keep theirs); nothing where numba is not loaded."""
    numba = sys.modules.get("numba")
    if numba is None:
        yield
        return
    before = numba.get_num_threads()
    lowered = before >= 2 and before == numba.config.NUMBA_NUM_THREADS
    if lowered:
        numba.set_num_threads(before - 1)
    try:
        yield
    finally:
        if lowered:
            numba.set_num_threads(before)


def overlapped(items: Iterable[T], consume: Callable[[T], object], depth: int = DEPTH) -> None:
    """``for item in items: consume(item)``, with ``consume`` in a second thread beside the production."""
    with contextlib.ExitStack() as spare:
        _overlapped(items, consume, depth, spare)


def _overlapped(items: Iterable[T], consume: Callable[[T], object], depth: int, spare: contextlib.ExitStack) -> None:
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
    handed = False
    try:
        for item in items:
            if not put(item):
                break
            if not handed:  # the consumer has work from now on: give it a core
                spare.enter_context(_core_for_the_consumer())
                handed = True
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
