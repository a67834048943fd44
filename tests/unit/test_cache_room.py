"""Gradio's cache under its cap (backend/cache_room.py): uploads make room by removing the
oldest files, never recent ones, and are refused when there is still none."""

from __future__ import annotations

import os

import pytest

from backend.cache_room import CacheRoom

MB = 2**20
NOW = 1_000_000.0


def put(folder, name: str, size_mb: float, age_seconds: float):
    """A file as Gradio keeps one (a folder of its own), last written `age_seconds` ago."""
    path = folder / name / "image.png"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"\0" * int(size_mb * MB))
    os.utime(path, (NOW - age_seconds, NOW - age_seconds))
    return path


@pytest.fixture
def room(tmp_path):
    return CacheRoom(tmp_path, max_bytes=10 * MB, keep_seconds=600, clock=lambda: NOW)


def test_an_upload_that_fits_changes_nothing(room, tmp_path):
    kept = put(tmp_path, "a", 4, age_seconds=7200)
    assert room.admit(5 * MB)
    assert kept.exists()


def test_an_upload_past_the_cap_removes_the_oldest_files_first_and_their_folders(room, tmp_path):
    oldest = put(tmp_path, "oldest", 3, age_seconds=7200)
    older = put(tmp_path, "older", 3, age_seconds=3600)
    recent = put(tmp_path, "recent", 3, age_seconds=60)
    assert room.admit(3 * MB)  # 12 MB asked of 10: the oldest goes, that is enough
    assert not oldest.exists() and not oldest.parent.exists()
    assert older.exists() and recent.exists()


def test_files_of_the_last_minutes_are_never_removed_and_the_upload_is_refused(room, tmp_path):
    recent = [put(tmp_path, f"r{n}", 3, age_seconds=30 * n) for n in range(3)]
    assert not room.admit(2 * MB)
    assert all(path.exists() for path in recent)
    assert "10 MB" in room.message() and "STUDIO_CACHE_MAX_MB" in room.message()


def test_uploads_in_flight_count_until_they_are_done(room):
    # Many uploads at once cannot all pass the same check: each takes its room when admitted.
    assert room.admit(6 * MB)
    assert not room.admit(6 * MB)
    room.done(6 * MB)
    assert room.admit(6 * MB)


def test_a_sweep_brings_what_runs_wrote_back_under_the_cap(room, tmp_path):
    old = [put(tmp_path, f"old{n}", 2, age_seconds=3600 + n) for n in range(6)]  # 12 MB
    room.sweep()
    left = [path for path in old if path.exists()]
    assert sum(path.stat().st_size for path in left) <= 10 * MB
    assert left == old[:len(left)]  # the newest stayed


def test_past_the_hard_limit_the_sweep_removes_recent_files_too_the_oldest_first(room, tmp_path):
    # Events that each write a little (History thumbnails, downloads) flooded the cache with
    # recent files: past 1.25 times the cap the sweep removes them, down to the cap.
    recent = [put(tmp_path, f"r{n}", 1, age_seconds=300 - n) for n in range(14)]  # 14 MB, r0 the oldest
    room.sweep()
    assert [path.exists() for path in recent] == [False] * 4 + [True] * 10
    # Below the hard limit, recent files stay (the cache is a little over its cap for a while).
    more = put(tmp_path, "more", 1, age_seconds=1)
    room.sweep()
    assert more.exists() and all(path.exists() for path in recent[4:])
