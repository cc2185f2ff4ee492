"""Writes that survive a full disk and a kill, one writer per output, and the permissions of written files.

The full disk is simulated at the one seam every array write goes through
(`astro_semsearch._io._write_block`) and at `shutil.disk_usage`; a kill is a
child process that ends itself with ``os._exit`` in the middle of a swap.
"""
from __future__ import annotations

import errno
import os
import stat
import subprocess
import sys
import textwrap
import threading
from collections import namedtuple
from pathlib import Path

import numpy as np
import pytest
from astropy.table import Table
from astropy.utils.exceptions import AstropyUserWarning

from astro_semsearch import _io
from astro_semsearch.exceptions import IndexIntegrityError, LockedError
from astro_semsearch.index import GalaxyIndex, ShardedIndex, open_index

REPO = Path(__file__).resolve().parent.parent


def _index(n=60, dim=8, seed=0, name="io"):
    rng = np.random.default_rng(seed)
    table = Table({"object_id": [f"O{i}" for i in range(n)], "ra": rng.uniform(0, 360, n),
                   "dec": rng.uniform(-60, 60, n)})
    return GalaxyIndex.build(rng.normal(size=(n, dim)).astype(np.float32), table, name=name)


def _hidden(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name.startswith(f".{path.name}."))


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _run(code: str, *args, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, env=env)


# --------------------------------------------------------------------------- no memory maps, full disk
def test_write_npy_writes_what_numpy_writes(tmp_path):
    a = np.random.default_rng(0).normal(size=(1000, 7)).astype(np.float32)
    _io.write_npy(tmp_path / "ours.npy", [a[:300], a[300:]], a.shape, block_rows=128)
    np.save(tmp_path / "numpy.npy", a)
    assert (tmp_path / "ours.npy").read_bytes() == (tmp_path / "numpy.npy").read_bytes()
    with pytest.raises(ValueError, match="rows written"):
        _io.write_npy(tmp_path / "short.npy", [a[:10]], (11, 7))


def test_save_never_memory_maps_its_output(tmp_path, monkeypatch):
    """A memory-mapped write on a full disk kills the process with SIGBUS (exit 135): none is made."""
    def refuse(*args, **kwargs):
        raise AssertionError("a memory map was opened for writing")

    monkeypatch.setattr(np.lib.format, "open_memmap", refuse)
    real_memmap = np.memmap

    class NoWriteMemmap(real_memmap):
        def __new__(cls, *args, mode="r+", **kwargs):
            if mode not in ("r", "c"):
                refuse()
            return real_memmap.__new__(cls, *args, mode=mode, **kwargs)

    monkeypatch.setattr(np, "memmap", NoWriteMemmap)
    path = _index().save(tmp_path / "idx")
    monkeypatch.undo()  # loading memory-maps vectors.npy read-only, as it should
    assert GalaxyIndex.load(path).ntotal == 60


def test_full_disk_is_an_oserror_and_leaves_the_old_index(tmp_path, monkeypatch):
    from astro_semsearch.index import storage

    path = _index(name="old").save(tmp_path / "idx")
    written = []

    def full(f, block):
        if written:
            raise OSError(errno.ENOSPC, "No space left on device")
        written.append(len(block))
        f.write(memoryview(block).cast("B"))

    monkeypatch.setattr(_io, "_write_block", full)
    real = _io.write_npy
    monkeypatch.setattr(storage, "write_npy", lambda p, parts, shape: real(p, parts, shape, block_rows=1000))
    with pytest.raises(OSError, match="No space left"):
        _index(n=5000, name="new").save(path, overwrite=True)
    assert written == [1000]  # the disk filled up after the first block
    assert _hidden(path) == []  # the temporary directory is gone
    assert GalaxyIndex.load(path).name == "old"  # the old index is untouched


def test_free_space_is_checked_before_the_big_writes(tmp_path, monkeypatch):
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(_io.shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 1000, 1000))
    with pytest.raises(OSError, match=r"writing index .*idx needs [\d,]+ bytes, 1,000 free on /") as err:
        _index().save(tmp_path / "idx")
    assert err.value.errno == errno.ENOSPC
    assert not (tmp_path / "idx").exists() and _hidden(tmp_path / "idx") == []


def test_truncated_vectors_under_a_loaded_index_raise_instead_of_crashing(tmp_path):
    """Reading a truncated memory-mapped file would SIGBUS; the loaded index checks the size first."""
    path = _index(n=3000).save(tmp_path / "idx")
    out = _run("""
        import os, sys
        from astro_semsearch.index import GalaxyIndex
        from astro_semsearch.exceptions import IndexIntegrityError
        idx = GalaxyIndex.load(sys.argv[1])
        idx.vectors([2999])
        os.truncate(os.path.join(sys.argv[1], "vectors.npy"), 4096)
        try:
            idx.vectors([2999])
        except IndexIntegrityError as exc:
            print("REFUSED", exc)
    """, path)
    assert out.returncode == 0, (out.returncode, out.stderr[-2000:])  # -7 would be the SIGBUS
    assert "REFUSED" in out.stdout and "truncated on disk" in out.stdout and "vectors.npy" in out.stdout


def test_a_save_over_a_loaded_index_keeps_its_mapping_valid(tmp_path):
    path = _index(name="a").save(tmp_path / "idx")
    loaded = GalaxyIndex.load(path)
    before = loaded.vectors([5])
    _index(n=10, seed=3, name="b").save(path, overwrite=True)  # renamed over: another inode
    np.testing.assert_allclose(loaded.vectors([5]), before, atol=0)
    assert GalaxyIndex.load(path).name == "b"


# --------------------------------------------------------------------------- kills and stale leftovers
def test_leftovers_of_dead_writers_are_removed_on_the_next_save(tmp_path):
    path = tmp_path / "idx"
    dead, host = _dead_pid(), _io._host()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])  # a writer that is alive
    try:
        stale = [f".idx.tmp-{dead}@{host}-abc123", f".idx.old-{dead}@{host}-x_1", f".idx.new-{dead}@{host}-q9"]
        kept = [f".idx.tmp-{live.pid}@{host}-live", f".idx.tmp-{dead}@other-host.example-far", ".idx.tmp-legacy"]
        path.mkdir()
        for name in stale + kept:
            (tmp_path / name).mkdir()
            (tmp_path / name / "vectors.npy").write_bytes(b"partial")
        _index().save(path, overwrite=True)
        assert _hidden(path) == sorted(kept)  # a live writer, another host and unrecognised names are left alone
    finally:
        live.kill()
        live.wait()


KILL_IN_SWAP = """
    import os, sys
    import numpy as np
    from astropy.table import Table
    from astro_semsearch.index import GalaxyIndex
    path = sys.argv[1]
    def make(name, n):
        rng = np.random.default_rng(n)
        t = Table({"object_id": [f"K{i}" for i in range(n)], "ra": rng.uniform(0, 10, n), "dec": rng.uniform(0, 10, n)})
        return GalaxyIndex.build(rng.normal(size=(n, 8)).astype("float32"), t, name=name)
    make("first", 30).save(path)
    real = os.rename
    def rename(src, dst):
        if os.fspath(dst) == path and ".new-" in os.fspath(src):
            os._exit(137)  # killed between moving the old index aside and moving the new one in
        return real(src, dst)
    os.rename = rename
    make("second", 40).save(path, overwrite=True)
"""


def test_a_kill_between_the_two_renames_is_recovered_on_open(tmp_path):
    path = tmp_path / "idx"
    out = _run(KILL_IN_SWAP, path)
    assert out.returncode == 137, out.stderr[-2000:]
    assert not path.exists()
    assert {n.split("-")[0] for n in _hidden(path)} == {".idx.new", ".idx.old"}  # both copies, hidden
    with pytest.warns(AstropyUserWarning, match="restored the new copy"):
        index = open_index(path)
    assert index.name == "second" and index.ntotal == 40
    assert _hidden(path) == []


def test_the_previous_copy_is_restored_when_only_it_is_left(tmp_path):
    path = _index(name="previous").save(tmp_path / "idx")
    aside = tmp_path / f".idx.old-{_dead_pid()}@{_io._host()}-zz9"

    def hide():
        aside.mkdir()
        os.rename(path, aside / "d")

    hide()
    with pytest.warns(AstropyUserWarning, match="restored the previous copy"):
        assert GalaxyIndex.load(path).name == "previous"
    assert _hidden(path) == []
    hide()  # a save to the path restores it too, and then does not replace it without overwrite
    with pytest.warns(AstropyUserWarning, match="restored"), pytest.raises(FileExistsError):
        _index(name="other").save(path)
    assert GalaxyIndex.load(path).name == "previous"


def test_an_error_between_the_renames_puts_the_old_index_back(tmp_path, monkeypatch):
    path = _index(name="old").save(tmp_path / "idx")
    real, failed = os.rename, []

    def failing(src, dst):
        if os.fspath(dst) == os.fspath(path) and not path.exists() and not failed:
            failed.append(src)  # the old index was moved aside; moving the new one in fails
            raise OSError(errno.EIO, "I/O error")
        return real(src, dst)

    monkeypatch.setattr(os, "rename", failing)
    with pytest.raises(OSError, match="I/O error"):
        _index(name="new").save(path, overwrite=True)
    monkeypatch.undo()
    assert GalaxyIndex.load(path).name == "old" and _hidden(path) == []


def test_nothing_is_replaced_when_the_target_appears_meanwhile(tmp_path, monkeypatch):
    from astro_semsearch.index import storage

    path = tmp_path / "idx"
    real, raced = storage.write_npy, []

    def racing(p, parts, shape):
        if not raced:
            raced.append(1)
            _index(name="theirs").save(path)  # another writer finished first (same thread: the lock is re-entered)
        return real(p, parts, shape)

    monkeypatch.setattr(storage, "write_npy", racing)
    with pytest.raises(FileExistsError, match="appeared while it was being written"):
        _index(name="ours").save(path)
    monkeypatch.undo()
    assert GalaxyIndex.load(path).name == "theirs" and _hidden(path) == []


# --------------------------------------------------------------------------- one writer per output
def test_output_lock_records_its_owner_and_is_reentrant(tmp_path):
    import json

    target = tmp_path / "out"
    with _io.output_lock(target) as lock:
        assert lock == tmp_path / "out.lock"
        info = json.loads(lock.read_text())
        assert info["pid"] == os.getpid() and info["host"] == _io._host() and info["user"] and info["since"]
        with _io.output_lock(target):  # nested writes of one thread
            assert lock.exists()
        assert lock.exists()
    assert not lock.exists()


def test_two_writers_to_one_index_the_second_is_refused(tmp_path):
    path = tmp_path / "idx"
    holding, release = threading.Event(), threading.Event()

    def first():
        with _io.output_lock(path):
            holding.set()
            release.wait(30)

    t = threading.Thread(target=first)
    t.start()
    try:
        assert holding.wait(30)
        with pytest.raises(LockedError, match=rf"another thread of this process \(pid {os.getpid()} on host .*\) "
                                              rf"is writing to .*idx; if it is gone, delete .*idx\.lock"):
            _index().save(path)
        assert not path.exists() and _hidden(path) == []
    finally:
        release.set()
        t.join()
    _index().save(path)  # free again


HOLD_LOCK = """
    import sys, time
    from astro_semsearch._io import output_lock
    with output_lock(sys.argv[1]):
        print("locked", flush=True)
        sys.stdin.read()  # until the parent closes it (or kills us)
"""


def _holder(path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(HOLD_LOCK), str(path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_another_process_holds_the_lock_then_dies(tmp_path):
    path = _index(name="kept").save(tmp_path / "idx")
    proc = _holder(path)
    try:
        with pytest.raises(LockedError, match=rf"another process \(pid {proc.pid} on host"):
            _index(name="replaced").save(path, overwrite=True)
        sharded = ShardedIndex.create(tmp_path / "sh")
        holder2 = _holder(tmp_path / "sh")
        try:
            before = (tmp_path / "sh" / "shards.json").read_bytes()
            with pytest.raises(LockedError, match="sh.lock"):
                sharded.add_shard(_index())
            assert (tmp_path / "sh" / "shards.json").read_bytes() == before
        finally:
            holder2.kill()
            holder2.wait()
    finally:
        proc.kill()  # killed while holding: the lock file stays behind
        proc.wait()
    assert GalaxyIndex.load(path).name == "kept"
    assert (tmp_path / "idx.lock").exists()
    with pytest.warns(AstropyUserWarning, match=rf"took over the lock .*idx\.lock .*pid {proc.pid}"):
        _index(name="replaced").save(path, overwrite=True)
    assert GalaxyIndex.load(path).name == "replaced" and not (tmp_path / "idx.lock").exists()
    with pytest.warns(AstropyUserWarning, match="took over"):
        sharded.add_shard(_index())
    assert sharded.nshards == 1


def test_a_lock_of_another_host_is_never_taken_over(tmp_path):
    import json

    lock = tmp_path / "idx.lock"
    lock.write_text(json.dumps({"pid": _dead_pid(), "host": "elsewhere.example", "user": "u", "since": "T",
                                "token": "t"}))
    with pytest.raises(LockedError, match="on host elsewhere.example.*delete .*idx.lock"):
        _index().save(tmp_path / "idx")
    assert lock.exists()


# --------------------------------------------------------------------------- permissions follow the umask
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_write_bytes_follows_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        _io.atomic_write_bytes(tmp_path / "f.txt", b"x")
        ShardedIndex.create(tmp_path / "sh")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "sh" / "shards.json").stat().st_mode) == mode
    assert _io.current_umask() == old


def test_saved_index_files_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        path = _index().save(tmp_path / "idx")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()} == {0o644}


def test_read_json_refuses_deep_and_huge_files(tmp_path, monkeypatch):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(IndexIntegrityError, match="nested too deeply"):
        _io.read_json(deep, IndexIntegrityError)
    monkeypatch.setattr(_io, "MAX_JSON_BYTES", 10)
    (tmp_path / "big.json").write_text('{"a": "0123456789"}')
    with pytest.raises(IndexIntegrityError, match="too large"):
        _io.read_json(tmp_path / "big.json", IndexIntegrityError)
