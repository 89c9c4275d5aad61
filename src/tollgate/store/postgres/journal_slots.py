"""Local journal slots: each gateway process's own ledger journal, beside any number of others.

With PostgreSQL many processes (`--workers N`, many machines) write the ledger. Each makes its
writes durable by one append to a journal file of its own (ledger/journal.py) before they reach the
database in batches. A process takes the first slot `journal-<n>` of the journal directory whose
lock it can flock; the lock is dropped by the kernel when the process dies, so a restarted worker
(or any process that finds an unlocked slot with leftovers) takes the slot and replays what the
dead one left. Each slot has an id (a random hex string, in `journal-<n>.id`, made the first
time the slot is used, beside the id of the database it journals for): the database keeps the last
entry applied per slot id (`ledger_journals`), so two machines' `journal-0` never mix and a replay
applies exactly what the database lacks; and a slot of another database sharing the directory (a
second gateway, the CLI pointed elsewhere) is never replayed into this one.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tollgate.ledger.journal import Journal
from tollgate.store.files import private_dir

# A process gives up looking for a free slot past this many (each is a live process, or a bug).
MAX_SLOTS = 4096
_SLOT_NAME = re.compile(r"^journal-(\d+)-ledger\.lock$")


@dataclass(slots=True)
class Slot:
    number: int
    id: str
    journal: Journal


def _slot_journal(directory: Path, number: int) -> Journal:
    return Journal(directory / f"journal-{number}")


def _owner(directory: Path, number: int) -> tuple[str, str] | None:
    """(slot id, database id) the slot's id file names, or None when it has none (or one unreadable)."""
    try:
        lines = (directory / f"journal-{number}.id").read_text(encoding="ascii").split()
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return (lines[0], lines[1]) if len(lines) == 2 and re.fullmatch(r"[0-9a-f]{32}", lines[0]) else None


def _new_owner(directory: Path, number: int, database: str) -> str:
    """Give the slot a new id, for `database` (its lock must be held, so nobody else writes the file)."""
    slot_id = uuid.uuid4().hex
    path = directory / f"journal-{number}.id"
    temporary = path.with_name(path.name + ".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, f"{slot_id}\n{database}\n".encode("ascii"))
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(temporary, path)
    return slot_id


def take_slot(directory: Path, database: str) -> Slot:
    """Lock the first free slot of `directory` (created 0700 if missing) for this process and `database` (an id
    of the database, ASCII without spaces). A slot that holds another database's journal is left alone."""
    private_dir(directory)
    for number in range(MAX_SLOTS):
        journal = _slot_journal(directory, number)
        if not journal.try_lock():
            continue
        owner = _owner(directory, number)
        if owner is not None and owner[1] == database:
            return Slot(number, owner[0], journal)
        if journal.files():  # another database's leftovers (or a slot of unknown owner): not ours to touch
            journal.unlock()
            continue
        return Slot(number, _new_owner(directory, number, database), journal)
    raise RuntimeError(f"every one of the {MAX_SLOTS} ledger journal slots in {directory} is locked")


def orphans(directory: Path, own: int, database: str) -> Iterator[Slot]:
    """Slots of `database` other than `own` that nobody holds and that hold journal files, each locked while the
    caller has it. The caller replays the slot before asking for the next one (which unlocks it)."""
    numbers = sorted(int(m.group(1)) for m in map(_SLOT_NAME.match, os.listdir(directory)) if m)
    for number in numbers:
        owner = _owner(directory, number)
        if number == own or owner is None or owner[1] != database:
            continue
        journal = _slot_journal(directory, number)
        if not journal.files() or not journal.try_lock():
            continue
        try:
            if journal.files():  # (the owner may have emptied it before letting go)
                yield Slot(number, owner[0], journal)
        finally:
            journal.unlock()
