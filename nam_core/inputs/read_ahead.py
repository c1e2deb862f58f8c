"""Blocks read by a thread ahead of their consumer, so that reading overlaps the consumer's work."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator

__all__ = ["READ_AHEAD_BLOCKS", "read_ahead"]

#: Blocks a reading thread keeps ready ahead of the caller.
READ_AHEAD_BLOCKS = 2


def read_ahead(blocks: Iterator, depth: int = READ_AHEAD_BLOCKS) -> Iterator:
    """The items of ``blocks``, produced by a thread up to ``depth`` items ahead of the caller.

    h5py releases the GIL while it reads and decompresses, so the next block is read while the
    caller works on this one (two cores busy instead of one). An error while reading is raised
    in the caller; a caller that stops early stops the thread.
    """
    ready: queue.Queue = queue.Queue(maxsize=depth)
    stopped = threading.Event()
    finished = object()

    def hand_over(item) -> bool:
        while not stopped.is_set():
            try:
                ready.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in blocks:
                if not hand_over((None, item)):
                    return
            hand_over((None, finished))
        except BaseException as error:  # raised in the caller's thread
            hand_over((error, None))
        finally:
            blocks.close()

    reader = threading.Thread(target=produce, name="counts-reader", daemon=True)
    reader.start()
    try:
        while True:
            error, item = ready.get()
            if error is not None:
                raise error
            if item is finished:
                return
            yield item
    finally:
        stopped.set()
        reader.join()
