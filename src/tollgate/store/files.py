"""The store's files are the owner's only: the database, its side files and its directory.

The database holds key hashes, the operator token's hash and every usage record
(request text too, when the operator opts in), so other users of the machine
must not read it. Files are created 0600 and the directory 0700; files left
with wider modes by an older version are tightened when the store opens them.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

log = logging.getLogger("tollgate.store")

FILE_MODE = 0o600
DIR_MODE = 0o700
# The default data directory (`sqlite:///.tollgate/tollgate.db`) is tollgate's own, so an existing
# one is tightened too; any other directory the operator named is left as it is, unless we made it.
OWN_DIR_NAME = ".tollgate"


def tighten(path: Path, mode: int = FILE_MODE) -> None:
    """Take away group and other permissions from `path`, if it exists."""
    try:
        current = stat.S_IMODE(os.stat(path).st_mode)
        if current & 0o077:
            os.chmod(path, current & mode)
    except FileNotFoundError:
        pass
    except PermissionError:
        log.warning("cannot make %s private to its owner: it belongs to another user", path)


def tighten_fd(fd: int, mode: int = FILE_MODE) -> None:
    """`tighten` for an open file."""
    current = stat.S_IMODE(os.fstat(fd).st_mode)
    if current & 0o077:
        try:
            os.fchmod(fd, current & mode)
        except PermissionError:
            log.warning("cannot make an open store file private to its owner (mode %o)", current)


def private_dir(path: Path) -> None:
    """The directory `path`, made 0700 when we create it (or when it is tollgate's own `.tollgate`)."""
    existed = path.is_dir()
    path.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    if not existed or path.name == OWN_DIR_NAME:
        tighten(path, DIR_MODE)


def private_file(path: Path) -> None:
    """Create `path` empty with mode 0600 if it is missing; tighten it if it exists."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, FILE_MODE)
    except PermissionError:
        tighten(path)  # not ours to open for writing: the store's own open will say so
        return
    try:
        tighten_fd(fd)
    finally:
        os.close(fd)
