"""File helpers shared by the pipeline stages (not public API): hashing, atomic writes, locks, progress bars.

Writes that survive a full disk and a kill
------------------------------------------
* `atomic_directory` builds a directory under a hidden temporary name
  beside its target and swaps it in with renames, so the target path always
  holds the complete old or the complete new directory. The hidden names
  carry the writer's pid and host (``.<name>.tmp-<pid>@<host>-<random>``),
  so what a killed writer leaves behind is recognised and removed by the
  next writer (`remove_stale`), and a target lost between the two renames of
  a swap is restored from its hidden copy (`recover_directory`).
* `write_npy` writes ``.npy`` files with ordinary chunked writes (no memory
  map: a full disk is an `OSError`, never a ``SIGBUS``); `check_free_space`
  refuses a large write that cannot fit before it starts.
* `atomic_write_bytes` writes one file through a temporary file and
  `os.replace`, with the permissions the user's umask gives.
* `output_lock` makes one writer at a time per output path (``<path>.lock``).
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import getpass
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
import threading
import time
import uuid
import warnings
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from .exceptions import LockedError

__all__ = ["sha256_file", "atomic_directory", "atomic_write_bytes", "progress", "read_json", "write_npy",
           "check_free_space", "output_lock", "lock_path", "remove_stale", "recover_directory", "current_umask",
           "hidden_copies"]

#: Largest JSON file `read_json` reads (manifests are a few kB; this stops a mistaken multi-GB read).
MAX_JSON_BYTES = 64 * 1024 * 1024
#: An unreadable lock file older than this many seconds is taken as left by a crash.
UNREADABLE_LOCK_AGE = 30.0


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Return the hex sha256 of a file, read in chunks (files may be GBs)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- owners of hidden names
def _host() -> str:
    return re.sub(r"[^A-Za-z0-9.-]", "_", socket.gethostname())[:64] or "localhost"


def _owner_tag() -> str:
    """``<pid>@<host>``: who made a hidden temporary name."""
    return f"{os.getpid()}@{_host()}"


_HIDDEN = re.compile(r"^(?P<pid>\d+)@(?P<host>[A-Za-z0-9._-]+)-(?P<rand>[a-z0-9_]+)$")


def _pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (a process of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _owner_gone(pid: int, host: str) -> bool:
    """True only when the owner certainly is gone: same host, no such process."""
    return host == _host() and pid != os.getpid() and not _pid_alive(pid)


def hidden_copies(final: str | os.PathLike) -> list[tuple[str, int, str, Path]]:
    """``(kind, pid, host, path)`` of every hidden temporary beside ``final`` (kind: tmp, new or old)."""
    final = Path(final)
    out = []
    try:
        entries = list(final.parent.iterdir())
    except OSError:
        return out
    for entry in entries:
        for kind in ("tmp", "new", "old"):
            prefix = f".{final.name}.{kind}-"
            if entry.name.startswith(prefix):
                m = _HIDDEN.match(entry.name[len(prefix):])
                if m:
                    out.append((kind, int(m["pid"]), m["host"], entry))
    return out


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_stale(final: str | os.PathLike) -> list[Path]:
    """Remove the hidden temporaries beside ``final`` whose writer is gone (killed); return them.

    Only entries named by this module (``.<name>.tmp-<pid>@<host>-...``)
    are touched, and only when ``<host>`` is this host and process ``<pid>``
    no longer exists; a writer on another host is never second-guessed.
    """
    removed = []
    for _kind, pid, host, path in hidden_copies(final):
        if _owner_gone(pid, host):
            _remove(path)
            removed.append(path)
    return removed


def recover_directory(final: str | os.PathLike) -> Path | None:
    """Put back a directory that a killed swap left only as a hidden copy; return it, or None.

    A writer killed between the two renames of `atomic_directory`'s swap
    leaves no directory at ``final``, but the new one complete under
    ``.<name>.new-*`` and the old one under ``.<name>.old-*/d``. The new one
    is restored when there is one, else the old one, with an
    `~astropy.utils.exceptions.AstropyUserWarning`; then the other hidden
    copies of dead writers are removed.
    """
    from astropy.utils.exceptions import AstropyUserWarning

    final = Path(final)
    if final.exists() or not final.parent.is_dir():
        return None
    dead = [c for c in hidden_copies(final) if _owner_gone(c[1], c[2])]
    new = [c for c in dead if c[0] == "new" and c[3].is_dir()]
    old = [c for c in dead if c[0] == "old" and (c[3] / "d").is_dir()]
    for kind, pid, host, path in sorted(new, key=lambda c: -c[3].stat().st_mtime) + old:
        source = path if kind == "new" else path / "d"
        try:
            os.rename(source, final)
        except OSError:
            if final.exists():
                break  # another process restored it first
            continue
        warnings.warn(f"{final} was missing: a save by process {pid} on {host} was killed while it swapped "
                      f"directories; restored the {'new' if kind == 'new' else 'previous'} copy from {source}",
                      AstropyUserWarning, stacklevel=3)
        remove_stale(final)
        return final
    return None


# --------------------------------------------------------------------------- atomic writes
def current_umask() -> int:
    """The process umask, read without changing it where the system allows (Linux ``/proc``)."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


@contextlib.contextmanager
def atomic_directory(final: str | os.PathLike, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary directory that replaces ``final`` on success.

    The temporary directory lives beside ``final`` (same filesystem, so the
    renames are atomic). On error it is removed and ``final`` is untouched;
    a kill at any moment leaves the old or the new directory at ``final``,
    or (between the two renames of the swap) the new one complete under a
    hidden name that `recover_directory` puts back on the next open or save.
    Hidden leftovers of killed writers are removed first (`remove_stale`).

    Raises
    ------
    FileExistsError
        ``final`` exists (at the start or when the new directory is ready)
        and ``overwrite`` is False: nothing is ever replaced silently.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    recover_directory(final)
    remove_stale(final)
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists (pass overwrite=True, --overwrite on the command line, to replace it)")
    tag = _owner_tag()
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-{tag}-", dir=final.parent))
    os.chmod(tmp, 0o777 & ~current_umask())  # mkdtemp makes it private (0700)
    try:
        yield tmp
        if final.exists() and not overwrite:
            raise FileExistsError(f"{final} appeared while it was being written (pass overwrite=True, --overwrite on the command line, to replace it)")
        ready = tmp.with_name(tmp.name.replace(".tmp-", ".new-", 1))
        os.rename(tmp, ready)  # complete: from here on a kill leaves a copy to restore
        tmp = ready
        _swap(ready, final, tag)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _swap(ready: Path, final: Path, tag: str) -> None:
    """Rename ``ready`` to ``final``, moving an existing ``final`` aside first and putting it back on error."""
    if not final.exists():
        os.rename(ready, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-{tag}-", dir=final.parent))
    os.rename(final, old / "d")
    try:
        os.rename(ready, final)
    except BaseException:
        if not final.exists():
            os.rename(old / "d", final)
        shutil.rmtree(old, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file and ``os.replace``.

    The file gets the permissions the user's umask gives (``0o666 & ~umask``,
    as `open` would), not the private ``0o600`` of `tempfile.mkstemp`.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.tmp-{_owner_tag()}-", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _mount_point(path: Path) -> Path:
    path = path.resolve()
    while not os.path.ismount(path) and path.parent != path:
        path = path.parent
    return path


def check_free_space(directory: str | os.PathLike, needed: int, what: str) -> None:
    """Raise `OSError` (``ENOSPC``) unless ``needed`` bytes fit on the filesystem of ``directory``."""
    directory = Path(directory)
    free = shutil.disk_usage(directory).free
    if free < needed:
        raise OSError(errno.ENOSPC, f"writing {what} needs {int(needed):,} bytes, {int(free):,} free on "
                                    f"{_mount_point(directory)}")


def _write_block(f, block: np.ndarray) -> None:
    """Write one C-contiguous array's bytes (the seam tests use to simulate a full disk)."""
    f.write(memoryview(block).cast("B"))


def write_npy(path: str | os.PathLike, parts: Iterable, shape: tuple[int, int], dtype=np.float32,
              block_rows: int = 1 << 15) -> None:
    """Write a 2-D ``.npy`` file from row blocks, with ordinary writes (never a memory map).

    ``parts`` are arrays (in memory or memory-mapped) stacked in order; they
    are written ``block_rows`` rows at a time, so no second copy is made.
    A full disk raises `OSError` (``ENOSPC``), which the caller's
    `atomic_directory` cleans up after; a memory-mapped write would instead
    kill the process with ``SIGBUS``.
    """
    dtype = np.dtype(dtype)
    header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False,
              "shape": (int(shape[0]), int(shape[1]))}
    written = 0
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for part in parts:
            for s in range(0, len(part), block_rows):
                block = np.ascontiguousarray(part[s:s + block_rows], dtype=dtype)
                if block.ndim != 2 or block.shape[1] != header["shape"][1]:
                    raise ValueError(f"row block of shape {block.shape} does not fit an array of shape {shape}")
                _write_block(f, block)
                written += len(block)
        if written != header["shape"][0]:
            raise ValueError(f"{path}: {written} rows written, the header says {header['shape'][0]}")
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------- one writer per output
_HELD: dict[str, tuple[int, int]] = {}  # lock file -> (thread id, depth), locks this process holds
_HELD_GUARD = threading.Lock()


def lock_path(path: str | os.PathLike) -> Path:
    """The lock file of an output path: ``<path>.lock`` beside it."""
    path = Path(path)
    return path.with_name(path.name + ".lock")


def _read_lock(lock: Path) -> dict | None:
    try:
        info = json.loads(lock.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _locked_error(path: Path, lock: Path, info: dict | None, same_process: bool = False) -> LockedError:
    if info is None:
        who = "another process (its lock file cannot be read yet)"
    else:
        who = (f"another {'thread of this process' if same_process else 'process'} (pid {info.get('pid')} on "
               f"host {info.get('host')}, user {info.get('user')}, since {info.get('since')})")
    return LockedError(f"{who} is writing to {path}; if it is gone, delete {lock}")


def _is_stale(lock: Path, info: dict | None) -> bool:
    if info is None:  # created but never written: a crash between open() and write()
        with contextlib.suppress(OSError):
            return time.time() - lock.stat().st_mtime > UNREADABLE_LOCK_AGE
        return False
    pid, host = info.get("pid"), info.get("host")
    return isinstance(pid, int) and isinstance(host, str) and _owner_gone(pid, host)


def _take_over(lock: Path, info: dict | None) -> bool:
    """Move a stale lock out of the way; False if someone else changed it meanwhile."""
    aside = lock.with_name(f"{lock.name}.stale-{_owner_tag()}-{uuid.uuid4().hex[:8]}")
    try:
        os.rename(lock, aside)
    except FileNotFoundError:
        return True  # already gone
    try:
        moved = _read_lock(aside)
    except FileNotFoundError:
        moved = None
    if (moved or {}).get("token") != (info or {}).get("token"):  # a fresh lock was moved: put it back
        with contextlib.suppress(OSError):
            os.link(aside, lock)
        with contextlib.suppress(OSError):
            aside.unlink()
        return False
    with contextlib.suppress(OSError):
        aside.unlink()
    return True


def _acquire(path: Path, lock: Path) -> str:
    """Create ``lock`` (O_CREAT | O_EXCL) holding who writes; return its token."""
    from astropy.utils.exceptions import AstropyUserWarning

    token = uuid.uuid4().hex
    record = {"path": str(path), "user": getpass.getuser(), "host": _host(), "pid": os.getpid(),
              "since": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(), "token": token}
    for _attempt in range(5):
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            try:
                info = _read_lock(lock)
            except FileNotFoundError:
                continue  # released meanwhile: try again
            if not _is_stale(lock, info):
                raise _locked_error(path, lock, info) from None
            if _take_over(lock, info):
                owner = "unreadable lock" if info is None else f"pid {info.get('pid')} on {info.get('host')}"
                warnings.warn(f"took over the lock {lock} left by a process that is gone ({owner})",
                              AstropyUserWarning, stacklevel=4)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        return token
    raise _locked_error(path, lock, None)


@contextlib.contextmanager
def output_lock(path: str | os.PathLike) -> Iterator[Path]:
    """Hold ``<path>.lock`` while writing ``path``: one writer at a time per output.

    The lock file is created atomically (``O_CREAT | O_EXCL``) and records
    the user, host, pid and start time of its writer. A lock whose process
    is gone (same host, no such pid) is taken over with an
    `~astropy.utils.exceptions.AstropyUserWarning`; a lock of another host is
    never taken over. The same thread may enter the lock of a path it holds
    again (nested writes); another thread of this process is refused like
    another process.

    Raises
    ------
    LockedError
        Another writer holds the lock. The message names it and says which
        file to delete if it is gone.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "my-index"
    >>> with output_lock(out) as lock:
    ...     lock.name
    'my-index.lock'
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = lock_path(path)
    key = str(lock.resolve())
    me = threading.get_ident()
    with _HELD_GUARD:
        held = _HELD.get(key)
        if held is not None and held[0] == me:
            _HELD[key] = (me, held[1] + 1)
    if held is not None and held[0] == me:
        try:
            yield lock
        finally:
            with _HELD_GUARD:
                _HELD[key] = (me, _HELD[key][1] - 1)
        return
    if held is not None:
        with contextlib.suppress(FileNotFoundError):
            raise _locked_error(path, lock, _read_lock(lock), same_process=True)
    token = _acquire(path, lock)
    with _HELD_GUARD:
        _HELD[key] = (me, 1)
    try:
        yield lock
    finally:
        with _HELD_GUARD:
            _HELD.pop(key, None)
        with contextlib.suppress(FileNotFoundError):
            if (_read_lock(lock) or {}).get("token") == token:
                lock.unlink()


# --------------------------------------------------------------------------- small helpers
def progress(iterable=None, **kwargs):
    """A tqdm progress bar that respects ``conf.show_progress``."""
    from tqdm.auto import tqdm

    from .config import conf

    kwargs.setdefault("disable", not conf.show_progress)
    return tqdm(iterable, **kwargs)


def read_json(path: str | os.PathLike, error: type[Exception] = ValueError) -> dict:
    """A JSON object from ``path``; ``error`` (naming the file) if it is not valid JSON or not an object.

    Files over `MAX_JSON_BYTES`, invalid UTF-8 and JSON nested too deeply
    for Python to parse are refused the same way.
    """
    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise error(f"cannot read {path}: {exc}") from None
    if size > MAX_JSON_BYTES:
        raise error(f"{path} is {size:,} bytes, too large for a manifest (at most {MAX_JSON_BYTES:,})")
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{path} is not valid JSON: {exc}") from None
    except RecursionError:
        raise error(f"{path} is not a valid manifest: its JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise error(f"{path} must hold a JSON object")
    return value
