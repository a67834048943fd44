"""Gradio's cache under its cap (backend/cache_room.py): uploads make room by removing the
oldest files, never recent ones, and are refused when there is still none; one visitor's
uploads within its share (UploadShare)."""

from __future__ import annotations

import os

import pytest

from backend.cache_room import CacheRoom, UploadShare

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


def test_a_burst_of_uploads_that_fits_looks_at_the_folder_once_and_the_one_past_the_cap_is_refused(tmp_path):
    # The region editor sends three uploads a stroke; walking the folder for each (thousands of
    # files on a busy server) kept every one of them waiting. What was admitted still counts.
    looks = []

    class Counted(CacheRoom):
        def _files(self):
            looks.append(1)
            return super()._files()

    room = Counted(tmp_path, max_bytes=10 * MB, keep_seconds=600, clock=lambda: NOW)
    put(tmp_path, "old", 4, age_seconds=60)
    for n in range(5):
        assert room.admit(1 * MB)
        put(tmp_path, f"upload-{n}", 1, age_seconds=0)  # Gradio writes it
        room.done(1 * MB)
    assert len(looks) == 1
    assert not room.admit(2 * MB)  # 9 MB there, all recent: no room
    assert len(looks) == 2  # past the estimate, it looked again before refusing


def test_what_the_app_wrote_meanwhile_is_seen_at_the_next_sweep(room, tmp_path):
    assert room.admit(1 * MB)
    room.done(1 * MB)
    put(tmp_path, "results", 9.5, age_seconds=60)  # a run's results, written by the app
    room.sweep()
    assert not room.admit(1 * MB)


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


# -- one visitor's share (UploadShare) ------------------------------------------------------


class Clock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_a_visitor_past_its_share_is_refused_while_others_upload_and_it_may_again_later():
    clock = Clock()
    share = UploadShare(50 * MB, window=600, clock=clock)
    assert share.admit("10.0.0.1", 30 * MB)
    clock.now = 300.0
    assert share.admit("10.0.0.1", 20 * MB)
    assert not share.admit("10.0.0.1", 1)  # 50 MB in the last 10 minutes: its share
    assert share.admit("10.0.0.2", 50 * MB)  # another address has its own
    assert share.message("10.0.0.1", 1 * MB) == (
        "This upload (1 MB) would take you past what one visitor may upload 50 MB every 10 minutes "
        "(STUDIO_UPLOAD_MB_PER_VISITOR): you have uploaded 50 MB of it in the last 10 minutes. "
        "Try again in a few minutes.")
    assert share.message("10.0.0.3", 60 * MB) == (
        "This upload is 60 MB, and one visitor may upload 50 MB every 10 minutes (STUDIO_UPLOAD_MB_PER_VISITOR): "
        "send a smaller file.")
    clock.now = 599.0
    assert not share.admit("10.0.0.1", 1)
    clock.now = 601.0  # the upload of t=0 is older than the window (and no longer protected in the cache)
    assert share.admit("10.0.0.1", 30 * MB)
    assert not share.admit("10.0.0.1", 1)  # the 20 MB of t=300 still count


def test_an_upload_the_cache_had_no_room_for_does_not_count_against_the_share():
    share = UploadShare(50 * MB, window=600, clock=Clock())
    assert share.admit("10.0.0.1", 40 * MB)
    share.give_back("10.0.0.1", 40 * MB)  # refused with 507: nothing was written
    assert share.admit("10.0.0.1", 50 * MB)


def test_a_file_fetched_from_a_url_counts_what_it_took_once_it_is_known():
    """A URL is admitted as the largest file it may be, then settled to the bytes it brought."""
    share = UploadShare(50 * MB, window=600, clock=Clock())
    assert share.admit("10.0.0.1", 40 * MB)
    assert not share.admit("10.0.0.1", 40 * MB)  # while the first one is fetched, it counts 40 MB
    share.settle("10.0.0.1", 40 * MB, 5 * MB)
    assert share.admit("10.0.0.1", 40 * MB)  # 5 + 40: within 50
    assert not share.admit("10.0.0.1", 6 * MB)
