"""Where the compiled HOG detector keeps its kernels: beside the installation when it is writable,
else the workspace (never numba's per-user cache under $HOME); $NUMBA_CACHE_DIR wins."""

from __future__ import annotations

import os

from scanner.fingerprints import faces


def _unset(monkeypatch):
    # set first, so that monkeypatch records the variable and removes whatever the test leaves
    monkeypatch.setenv("NUMBA_CACHE_DIR", "placeholder")
    monkeypatch.delenv("NUMBA_CACHE_DIR")


def test_a_writable_installation_keeps_numbas_default(monkeypatch, tmp_path):
    _unset(monkeypatch)
    monkeypatch.setattr(faces.os, "access", lambda path, mode: True)
    faces.compiled_code_cache(str(tmp_path))
    assert "NUMBA_CACHE_DIR" not in os.environ


def test_a_read_only_installation_compiles_into_the_workspace(monkeypatch, tmp_path):
    _unset(monkeypatch)
    probed = []
    monkeypatch.setattr(faces.os, "access", lambda path, mode: probed.append(path) or False)
    faces.compiled_code_cache(str(tmp_path))
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "cache" / "numba")
    assert probed and all(p.startswith(os.path.dirname(faces.__file__)) for p in probed)


def test_an_explicit_cache_dir_is_kept(monkeypatch, tmp_path):
    monkeypatch.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setattr(faces.os, "access", lambda path, mode: False)
    faces.compiled_code_cache(str(tmp_path / "ws"))
    assert os.environ["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")
