"""Index readers: MUSIC JSON (solo, duet), Sound-of-Pixels CSV, folders, id resolution, bad files."""

from __future__ import annotations

import json

import pytest

from tribert.data import indexes as ix
from tribert.errors import TribertError


def touch(path):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")  # the readers only look at names; nothing is decoded here
    return path


def test_music_json_solo_and_duet(tmp_path):
    solo = tmp_path / "MUSIC21_solo_videos.json"
    solo.write_text(json.dumps({"videos": {"violin": ["aaa", "bbb"], "cello": ["ccc", "aaa"]}}))
    duet = tmp_path / "MUSIC_duet_videos.json"
    duet.write_text(json.dumps({"videos": {"acoustic_guitar violin": ["ddd"]}}))

    s = ix.read_music_json(solo)
    assert [(e.id, e.labels) for e in s] == [("aaa", ["violin"]), ("bbb", ["violin"]), ("ccc", ["cello"])]
    d = ix.read_music_json(duet)
    assert [(e.id, e.labels) for e in d] == [("ddd", ["acoustic_guitar", "violin"])]
    assert all(e.path is None and e.source == str(solo) for e in s)


@pytest.mark.parametrize("text, reason", [
    ("{not json", "corrupt JSON index"),
    ('["aaa"]', 'must look like {"videos"'),
    ('{"videos": ["aaa"]}', 'must look like {"videos"'),
    ('{"videos": {"violin": "aaa"}}', "must be a list of YouTube id strings"),
    ('{"videos": {"violin": [1, 2]}}', "must be a list of YouTube id strings"),
])
def test_malformed_json(tmp_path, text, reason):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(TribertError) as info:
        ix.read_music_json(path)
    msg = str(info.value)
    assert str(path) in msg and reason in msg and "\n" not in msg
    with pytest.raises(TribertError, match="index file not found"):
        ix.read_music_json(tmp_path / "nope.json")


def test_sop_csv(tmp_path):
    path = tmp_path / "train.csv"
    path.write_text("./data/audio/violin/v1.mp3,./data/frames/violin/v1.mp4,1580\n"
                    "\n"
                    "/abs/audio/mystery/m1.mp3,/abs/frames/mystery/m1.mp4,12\n")
    entries = ix.read_sop_csv(path)
    assert [(e.id, e.labels, e.num_frames) for e in entries] == [("v1", ["violin"], 1580), ("m1", [], 12)]
    assert entries[0].audio_path == tmp_path / "data/audio/violin/v1.mp3"  # relative to the CSV
    assert entries[0].frames_dir == tmp_path / "data/frames/violin/v1.mp4"
    assert str(entries[1].audio_path) == "/abs/audio/mystery/m1.mp3"


@pytest.mark.parametrize("text, reason", [
    ("a.mp3,b.mp4\n", "line 1: expected audio_path,frames_dir,num_frames, got 2 fields"),
    ("a.mp3,b.mp4,10\na.mp3,b.mp4,many\n", "line 2: num_frames 'many' is not an integer"),
    ("\n\n", "no entries"),
])
def test_malformed_csv(tmp_path, text, reason):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(TribertError) as info:
        ix.read_sop_csv(path)
    assert str(path) in str(info.value) and reason in str(info.value)


def test_scan_folder_labels_and_unique_ids(tmp_path):
    root = tmp_path / "vids"
    touch(root / "violin" / "a1.mp4")
    touch(root / "cello violin" / "d1.webm")  # a duet folder
    touch(root / "misc" / "x.mkv")  # not a class name: unknown label
    touch(root / "misc" / "notes.txt")  # not a video
    touch(root / "s1" / "video.mp4")
    touch(root / "s2" / "video.mp4")  # same stem twice
    touch(root / "violin" / ".a1.mp4.tmp.mp4")  # hidden temporary file: skipped
    entries = {e.id: e for e in ix.scan_folder(root)}
    assert set(entries) == {"a1", "d1", "x", "s1__video", "s2__video"}
    assert entries["a1"].labels == ["violin"]
    assert entries["d1"].labels == ["cello", "violin"]
    assert entries["x"].labels == []
    with pytest.raises(TribertError, match="video folder not found"):
        ix.scan_folder(tmp_path / "nope")


def test_ids_keep_names_in_any_script_and_one_spelling_of_each():
    """Non-ASCII names became 'clip', 'clip-2', ... in scan order (and 'ä b ü' became 'b')."""
    assert ix.safe_id("日本") == "日本" and ix.safe_id("ä b ü") == "ä_b_ü" and ix.safe_id("Bläser") == "Bläser"
    assert ix.safe_id("Bla\u0308ser") == ix.safe_id("Bl\u00e4ser")  # macOS stores 'ä' decomposed
    assert ix.safe_id("a/b:c*?") == "a_b_c" and ix.safe_id("..hidden") == "hidden" and ix.safe_id("???") == "clip"


def test_label_notes_name_unlabelled_folders_and_labels_outside_music21(tmp_path):
    root = tmp_path / "vids"
    touch(root / "violin" / "a1.mp4")
    touch(root / "violn" / "a2.mp4")  # misspelt: prepared without a class
    touch(root / "violn" / "a3.mp4")
    touch(root / "misc" / "x.mkv")
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"videos": {"violin": ["a1"], "kazoo": ["k1"]}}))
    assert ix.label_notes(ix.load_inputs([root / "violin"])) == []
    unlabelled, outside = ix.label_notes(ix.load_inputs([root, index], video_root=root))
    assert unlabelled.startswith(f"3 video(s) without a class, in folders not named after a MUSIC-21 class ('{root / 'misc'}' "
                                 f"(1), '{root / 'violn'}' (2)): prepared unlabelled")
    assert "MUSIC-style JSON index" in unlabelled and "data.classes" in unlabelled
    assert outside.startswith("labels outside the 21 MUSIC-21 classes: 'kazoo' (1); ")


def test_resolve_and_load_inputs(tmp_path):
    root = tmp_path / "downloads"
    touch(root / "violin" / "aaa.mp4")  # <root>/<label>/<id>.mp4
    touch(root / "bbb.mkv")  # <root>/<id>.mkv
    touch(root / "deep" / "er" / "ccc.webm")  # anywhere below the root
    index = tmp_path / "index.json"
    index.write_text(json.dumps({"videos": {"violin": ["aaa", "bbb"], "cello": ["ccc", "zzz"]}}))

    entries = {e.id: e for e in ix.load_inputs([index], video_root=root)}
    assert entries["aaa"].path == root / "violin" / "aaa.mp4"
    assert entries["bbb"].path == root / "bbb.mkv"
    assert entries["ccc"].path == root / "deep" / "er" / "ccc.webm"
    assert entries["zzz"].path is None  # reported by prepare as "no video file found"

    # Files and folders mixed; the same file twice is one entry; a missing file is kept.
    mixed = ix.load_inputs([root / "violin" / "aaa.mp4", root / "violin", tmp_path / "gone.mp4"])
    assert [(e.id, e.labels) for e in mixed] == [("aaa", ["violin"]), ("gone", [])]
    with pytest.raises(TribertError, match="video root folder not found"):
        ix.load_inputs([index], video_root=tmp_path / "nope")
