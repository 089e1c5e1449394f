import os
import threading

import numpy as np
import pytest

from pipeline.resources import lake as lake_module
from pipeline.resources.lake import LakeKeyError, LocalLake, ObjectGone, S3Lake, validate_key


@pytest.fixture(params=["folder", "s3"])
def any_lake(request, tmp_path):
    if request.param == "folder":
        return LocalLake(tmp_path / "lake")
    return request.getfixturevalue("s3_lake")


def test_write_read_exists_delete(any_lake):
    any_lake.write_bytes("raw/2019-10-01-00/a.csv", b"hello")
    assert any_lake.read_bytes("raw/2019-10-01-00/a.csv") == b"hello"
    assert any_lake.exists("raw/2019-10-01-00/a.csv") and not any_lake.exists("raw/2019-10-01-00/b.csv")
    any_lake.write_bytes("raw/2019-10-01-00/a.csv", b"replaced")
    assert any_lake.read_text("raw/2019-10-01-00/a.csv") == "replaced"
    any_lake.delete("raw/2019-10-01-00/a.csv")
    any_lake.delete("raw/2019-10-01-00/a.csv")  # deleting twice is fine
    assert not any_lake.exists("raw/2019-10-01-00/a.csv")


def test_list_is_sorted_prefix_scoped_and_paginated(any_lake):
    keys = [f"landing/2019-10-01-00-{m:02d}-00-s1.csv" for m in range(7)] + ["landingx/other.csv", "raw/x.csv"]
    for key in keys:
        any_lake.write_bytes(key, key.encode())
    page1 = any_lake.list_page("landing/", limit=3)
    page2 = any_lake.list_page("landing/", start_after=page1[-1].key, limit=3)
    page3 = any_lake.list_page("landing/", start_after=page2[-1].key, limit=3)
    assert [o.key for o in page1 + page2 + page3] == keys[:7]
    assert len(page3) == 1
    assert [o.key for o in any_lake.list("landing/", page_size=2)] == keys[:7]
    assert [o.key for o in any_lake.list("landing/2019-10-01-00-0", page_size=2)] == keys[:7]
    assert all(o.size == len(o.key) for o in page1)
    # the fingerprint changes with the content
    before = any_lake.list_page("raw/")[0].etag
    any_lake.write_bytes("raw/x.csv", b"different content!")
    assert any_lake.list_page("raw/")[0].etag != before


def test_list_page_stops_before_end_before(any_lake):
    keys = [f"landing/2019-10-01-{h:02d}-00-00-s1.csv" for h in range(4)]
    for key in keys:
        any_lake.write_bytes(key, b"x")
    split = "landing/2019-10-01-02-"
    assert [o.key for o in any_lake.list_page("landing/", end_before=split)] == keys[:2]
    assert [o.key for o in any_lake.list_page("landing/", start_after=keys[0], end_before=split)] == keys[1:2]
    assert [o.key for o in any_lake.list("landing/", page_size=1, end_before=split)] == keys[:2]
    assert [o.key for o in any_lake.list_page("landing/", start_after=split)] == keys[2:]


def test_a_listed_object_moved_before_it_is_read_raises_object_gone(any_lake):
    any_lake.write_bytes("landing/a.csv", b"x")
    listed = any_lake.list_page("landing/")
    any_lake.move("landing/a.csv", "raw/h/a.csv")  # a claim takes it between list and read
    with pytest.raises(ObjectGone, match="landing/a.csv"):
        any_lake.read_bytes(listed[0].key)
    assert isinstance(ObjectGone("x"), FileNotFoundError)


def test_the_listing_leaves_out_files_moved_after_the_folder_was_read(tmp_path, monkeypatch):
    """The folder lake reads the directory, then stats each file: a claim moving files in between
    (what a running ingest does) must not fail the listing."""
    lake = LocalLake(tmp_path / "lake")
    keys = [f"landing/2019-10-01-00-{m:02d}-00-s1.csv" for m in range(6)]
    for key in keys:
        lake.write_bytes(key, b"x")
    real_walk = os.walk

    def walk_then_claim(top, *args, **kwargs):
        for entry in real_walk(top, *args, **kwargs):
            yield entry  # the caller has the file names now
            for key in keys[::2]:
                if lake.exists(key):
                    lake.move(key, key.replace("landing/", "raw/2019-10-01-00/"))

    monkeypatch.setattr(lake_module.os, "walk", walk_then_claim)
    assert [o.key for o in lake.list_page("landing/")] == keys[1::2]


def test_listing_while_another_thread_moves_files_never_fails(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    keys = [f"landing/2019-10-01-00-{m // 60:02d}-{m % 60:02d}-s1.csv" for m in range(2000)]
    for key in keys:
        (lake.root / key).parent.mkdir(parents=True, exist_ok=True)
        (lake.root / key).write_bytes(b"x")
    (lake.root / "raw").mkdir()
    done = threading.Event()

    def claim() -> None:
        for key in keys:
            os.replace(lake.root / key, lake.root / "raw" / key.rsplit("/", 1)[1])
        done.set()

    mover = threading.Thread(target=claim)
    listings = 0
    mover.start()
    try:
        while not done.is_set():
            page = lake.list_page("landing/", limit=5000)
            assert {o.key for o in page} <= set(keys)
            listings += 1
    finally:
        mover.join()
    assert listings >= 1
    assert lake.list_page("landing/") == []


def test_move(any_lake):
    any_lake.write_bytes("landing/f.csv", b"x")
    any_lake.move("landing/f.csv", "raw/h/f.csv")
    assert not any_lake.exists("landing/f.csv") and any_lake.read_bytes("raw/h/f.csv") == b"x"


def test_write_file_stores_a_local_file_whole(any_lake, tmp_path):
    """What an executor uses to store an archive it wrote to its disk: above 8 MiB, an S3 lake
    gets a multipart upload, and the object is the file, byte for byte."""
    data = np.random.default_rng(3).bytes(9 * 1024 * 1024 + 17)
    (tmp_path / "big.bin").write_bytes(data)
    any_lake.write_file("archive/big.bin", tmp_path / "big.bin")
    assert any_lake.read_bytes("archive/big.bin") == data
    if isinstance(any_lake, S3Lake):  # a multipart upload's ETag ends in -<parts>
        assert next(iter(any_lake.list("archive/"))).etag.endswith("-2")
    with pytest.raises(LakeKeyError):
        any_lake.write_file("../out.bin", tmp_path / "big.bin")


@pytest.mark.parametrize("key", ["../etc/passwd", "a/../../b", "/etc/passwd", "a//b", ".hidden", "a/.tmp",
                                 "a\\b", "a/b\x00", "", "a/\nb", "c:/x"])
def test_path_escapes_and_odd_characters_are_refused(any_lake, key):
    with pytest.raises(LakeKeyError):
        any_lake.write_bytes(key, b"x")
    with pytest.raises(LakeKeyError):
        any_lake.read_bytes(key)


def test_a_symlink_out_of_the_root_is_refused(tmp_path):
    lake = LocalLake(tmp_path / "lake")
    (tmp_path / "outside").mkdir()
    (tmp_path / "lake" / "link").symlink_to(tmp_path / "outside")
    with pytest.raises(LakeKeyError, match="outside the lake root"):
        lake.write_bytes("link/x", b"x")
    assert not (tmp_path / "outside" / "x").exists()


def test_validate_key_allows_prefixes_and_names_with_spaces():
    assert validate_key("", prefix=True) == ""
    assert validate_key("landing/", prefix=True) == "landing/"
    assert validate_key("landing/weird name (1).csv") == "landing/weird name (1).csv"
