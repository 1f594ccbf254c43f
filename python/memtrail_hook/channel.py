"""The events channel as a writer sees it (docs/events.md): one JSON object
per line, written with one non-blocking `write` of at most PIPE_BUF bytes so
that lines from several processes never interleave and a stuck or vanished
recorder never blocks the program."""

import json
import os

# A line up to PIPE_BUF bytes is written to a FIFO in one piece.
MAX_LINE = 4096


class Gone(Exception):
    """The channel is closed for good (its recorder stopped)."""


class Channel:
    def __init__(self, path):
        # O_NONBLOCK: the open fails (ENXIO) when nobody reads a FIFO, and a
        # full FIFO fails a write (EAGAIN) instead of blocking.
        self.fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_APPEND)

    def send(self, data):
        """Writes one encoded line; a full channel skips it."""
        try:
            os.write(self.fd, data)
        except BlockingIOError:
            pass
        except (BrokenPipeError, OSError) as e:
            raise Gone() from e

    def close(self):
        try:
            os.close(self.fd)
        except OSError:
            pass


def encode(event):
    """One event as a line of bytes."""
    return (json.dumps(event, separators=(",", ":")) + "\n").encode("utf-8")


def fitting(make, n):
    """The line `make(n)` for the largest n (starting at `n`, shrinking by a
    quarter) whose encoding fits in MAX_LINE; None when none does."""
    while n > 0:
        data = encode(make(n))
        if len(data) <= MAX_LINE:
            return data
        n = n * 3 // 4
    return None
