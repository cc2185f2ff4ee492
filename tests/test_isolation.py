"""Configuration files, and the test session's isolation from the developer's (the root ``conftest.py``)."""
import os
import subprocess
import sys
from pathlib import Path


def _run(home: Path, env_extra: dict, code: str = "print(conf.timeout)") -> subprocess.CompletedProcess:
    """``code`` after ``from astro_semsearch import conf`` in a fresh Python with ``HOME=home``."""
    env = {k: v for k, v in os.environ.items() if k not in ("ASTROPY_CONFIG_DIR", "XDG_CONFIG_HOME")}
    env.update(HOME=str(home), **env_extra)
    return subprocess.run([sys.executable, "-c", f"from astro_semsearch import conf; {code}"],
                          env=env, capture_output=True, text=True, check=True)


def _timeout_seen(home: Path, env_extra: dict) -> float:
    return float(_run(home, env_extra).stdout.strip().splitlines()[-1])


def _user_file(home: Path, text: str) -> None:
    cfg = home / ".config" / "astropy"
    cfg.mkdir(parents=True)
    (cfg / "astro_semsearch.cfg").write_text(text)


def test_a_users_configuration_file_does_not_reach_the_tests(tmp_path):
    # a developer's ~/.config/astropy/astro_semsearch.cfg that changes a default (a top-level line, as documented)
    _user_file(tmp_path, "timeout = 5.0\n")
    assert _timeout_seen(tmp_path, {}) == 5.0  # outside the test session it is read...
    # ...and with the session's ASTROPY_CONFIG_DIR (which subprocesses inherit) it is not
    assert _timeout_seen(tmp_path, {"ASTROPY_CONFIG_DIR": os.environ["ASTROPY_CONFIG_DIR"]}) == 30.0


def test_the_session_reads_configuration_from_an_empty_directory():
    from astropy.config import get_config_dir_path

    from astro_semsearch import conf

    where = get_config_dir_path("astropy", ensure_exists=False)
    assert where == Path(os.environ["ASTROPY_CONFIG_DIR"])
    assert Path.home() not in where.parents
    assert not (where / "astro_semsearch.cfg").exists()
    assert conf.timeout == 30.0


def test_a_doctests_temporary_files_lie_under_its_tmp_path(pytester, monkeypatch):
    # the root conftest in a fresh pytest run, with one doctest that makes a directory as a user would;
    # the inner run sets (and removes) its own ASTROPY_CONFIG_DIR: monkeypatch gives the session's back
    monkeypatch.setenv("ASTROPY_CONFIG_DIR", os.environ["ASTROPY_CONFIG_DIR"])
    pytester.makeconftest((Path(__file__).parents[1] / "conftest.py").read_text())
    pytester.makepyfile(example='''
def f():
    """
    >>> import tempfile
    >>> "basetemp" in tempfile.mkdtemp()  # pytest's --basetemp, where the doctest's tmp_path lies
    True
    """
''')
    result = pytester.runpytest("--doctest-modules", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


def test_items_under_a_config_section_are_used_with_a_warning_to_move_them(tmp_path):
    # the only layout astropy read before the items belonged to the package; top-level lines win,
    # and the values are read at each lookup, so a reload keeps them
    _user_file(tmp_path, "max_concurrency = 3\n[config]\ntimeout = 5.0\nmax_concurrency = 9\n__doc__ = x\n")
    out = _run(tmp_path, {}, "print(conf.timeout, conf.max_concurrency); conf.reload(); print(conf.timeout)")
    assert out.stdout.split()[-3:] == ["5.0", "3", "5.0"]
    said = out.stdout + out.stderr
    assert "sets timeout under a [config] section" in said and "delete the [config] line" in said
    assert "max_concurrency under" not in said and "__doc__" not in said  # only items it uses


def test_a_broken_configuration_file_fails_where_a_value_is_read_not_at_import(tmp_path):
    _user_file(tmp_path, "timeout = 5\n[[[bad\n")
    assert _run(tmp_path, {}, "print('imported')").stdout.strip().endswith("imported")
    try:
        _run(tmp_path, {})
    except subprocess.CalledProcessError as err:
        assert "[[[bad" in err.stderr
    else:
        raise AssertionError("reading a value from a broken file did not fail")
