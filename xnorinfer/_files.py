"""Reading untrusted inputs (model files, images) without blocking or unbounded memory."""

from __future__ import annotations

import os
import stat

READ_CHUNK = 1 << 20  # bytes per read() of a file object: a lying size never becomes one allocation


def open_regular_file(path, error=ValueError):
    """A binary file object for `path`, which must be a regular file. Opened without blocking, so
    a FIFO or a device is refused instead of hanging the reader (`xnorinfer info /dev/zero`).
    FileNotFoundError and IsADirectoryError pass through; anything else not a regular file raises
    `error` (an exception class or factory) with what it is."""
    fd = os.open(os.fspath(path), os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(f"{os.fspath(path)}: is a directory")
        if not stat.S_ISREG(mode):
            kind = (
                "a FIFO"
                if stat.S_ISFIFO(mode)
                else "a device"
                if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "a socket"
                if stat.S_ISSOCK(mode)
                else "not a file"
            )
            raise error(f"{kind}, not a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        os.close(fd)
        raise


def read_bounded(file, limit: int, error, what: str) -> bytes:
    """All of `file` (a binary file object), refusing more than `limit` bytes."""
    parts, size = [], 0
    while True:
        chunk = file.read(min(READ_CHUNK, limit + 1 - size))
        if not chunk:
            return b"".join(parts)
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise error(f"{what}: the file object returned {type(chunk).__name__}, not bytes (open it in 'rb' mode)")
        parts.append(bytes(chunk))
        size += len(chunk)
        if size > limit:
            raise error(f"{what}: larger than {limit:,} bytes, refused")
