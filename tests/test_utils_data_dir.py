"""The data-dir tools (pytorch_modules/fileio/data_dir.py, utils/data_dir.py) and their
Kaldi-named wrappers: validate, fix, split, convert, filter."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pytorch_modules.fileio import data_dir_split

UTILS = Path(__file__).resolve().parents[1] / "utils"

# Speaker -> number of utterances; ids are speaker-prefixed as in the recipe.
SPEAKERS = {"spk1": 3, "spk2": 1, "spk3": 4, "spk4": 2, "spk5": 2}


def utterances(speakers=SPEAKERS):
    return [(f"{spk}-u{i}", spk) for spk, n in speakers.items() for i in range(1, n + 1)]


def write(path, lines):
    Path(path).write_text("".join(line + "\n" for line in lines))


def read(path):
    return Path(path).read_text().splitlines()


def make_data_dir(path, speakers=SPEAKERS):
    """A valid data directory with wav.scp (some pipes), feats.scp and utt2num_frames."""
    path.mkdir(parents=True, exist_ok=True)
    utts = utterances(speakers)
    write(path / "utt2spk", [f"{u} {s}" for u, s in utts])
    write(path / "spk2utt", [f"{s} {' '.join(u for u, s2 in utts if s2 == s)}" for s in speakers])
    write(path / "wav.scp", [f"{u} sox /w/{u}.flac -t wav - |" if i % 2 else f"{u} /w/{u}.wav"
                             for i, (u, _) in enumerate(utts)])
    write(path / "feats.scp", [f"{u} /f/feats.ark:{100 * i}" for i, (u, _) in enumerate(utts)])
    write(path / "utt2num_frames", [f"{u} {300 + i}" for i, (u, _) in enumerate(utts)])
    write(path / "trials", ["spk3-u1 spk1-u2 nontarget", "spk1-u1 spk1-u2 target"])
    return path


def tool(name, *args, stdin=None):
    return subprocess.run([str(UTILS / name), *map(str, args)], input=stdin,
                          capture_output=True, text=True, env={**os.environ, "LC_ALL": "C"})


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path / "data" / "train")


# ---- validate ------------------------------------------------------------------------------

def test_validate_accepts_a_good_directory(data):
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"validate_data_dir.sh: successfully validated data-directory {data}\n"


def test_validate_needs_feats_unless_no_feats(data):
    (data / "feats.scp").unlink()
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert f"{data}/feats.scp is missing" in result.stderr
    assert tool("validate_data_dir.sh", "--no-feats", data).returncode == 0


def test_validate_reports_unsorted_lines(data):
    lines = read(data / "wav.scp")
    lines[1], lines[2] = lines[2], lines[1]
    write(data / "wav.scp", lines)
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert (f"{data}/wav.scp line 3: 'spk1-u2' comes after 'spk1-u3' but must come before it"
            in result.stderr)
    assert f"utils/fix_data_dir.sh {data}" in result.stderr


def test_validate_reports_duplicates(data):
    lines = read(data / "utt2num_frames")
    write(data / "utt2num_frames", lines[:1] + lines)
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert f"{data}/utt2num_frames line 2: duplicate id 'spk1-u1' (also on line 1)" in result.stderr


def test_validate_reports_inconsistent_speaker_files(data):
    spk2utt = read(data / "spk2utt")
    spk2utt[0] = "spk1 spk1-u1 spk1-u2"  # spk1-u3 left out
    write(data / "spk2utt", spk2utt)
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert (f"1 utterance-speaker pair of {data}/utt2spk missing from {data}/spk2utt "
            f"(first: 'spk1-u3 spk1')" in result.stderr)
    assert "utils/utt2spk_to_spk2utt.py" in result.stderr


def test_validate_reports_utterances_missing_from_a_file(data):
    write(data / "feats.scp", [l for l in read(data / "feats.scp") if not l.startswith("spk3")])
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert (f"4 utterances of {data}/utt2spk missing from {data}/feats.scp "
            f"(first: 'spk3-u1', 'spk3-u2', 'spk3-u3', 'spk3-u4')" in result.stderr)
    assert f"utils/fix_data_dir.sh {data}" in result.stderr


@pytest.mark.parametrize("name, line, message", [
    ("utt2num_frames", "spk1-u1 0", "value '0' for 'spk1-u1' is not a positive whole number"),
    ("utt2num_frames", "spk1-u1 12.5", "value '12.5' for 'spk1-u1' is not a positive whole"),
    ("utt2spk", "spk1-u1", "has 1 fields, expected 2 ('utt spk')"),
    ("utt2spk", "spk1-u1 spk1 extra", "has 3 fields, expected 2"),
    ("feats.scp", "", "is empty"),
])
def test_validate_reports_bad_lines(data, name, line, message):
    lines = read(data / name)
    lines[0] = line
    write(data / name, lines)
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert f"{data}/{name} line 1: {message}" in result.stderr


def test_validate_checks_trials_format_only(data):
    # Unsorted trials whose enrollment side is a model id are fine ...
    write(data / "trials", ["zmodel spk2-u1 target", "amodel spk1-u1 nontarget"])
    assert tool("validate_data_dir.sh", data).returncode == 0
    # ... a wrong label or field count is not.
    write(data / "trials", ["a b target", "a b maybe", "a b"])
    result = tool("validate_data_dir.sh", data)
    assert result.returncode == 1
    assert ("trials line 2: the third field is 'maybe', expected target or nontarget"
            in result.stderr)
    assert "trials line 3: has 2 fields, expected 3" in result.stderr


def test_validate_rejects_a_missing_directory(tmp_path):
    result = tool("validate_data_dir.sh", tmp_path / "nope")
    assert result.returncode == 1
    assert "is not a directory" in result.stderr


# ---- fix -----------------------------------------------------------------------------------

def test_fix_keeps_utterances_in_every_file(data):
    originals = {n: (data / n).read_text() for n in ("utt2spk", "wav.scp", "feats.scp")}
    feats = read(data / "feats.scp")
    write(data / "feats.scp", [l for l in feats if not l.startswith(("spk1-u1 ", "spk3-"))])
    wav = read(data / "wav.scp")
    wav = [l for l in wav if not l.startswith(("spk4-u1 ", "spk1-u1 "))]
    write(data / "wav.scp", wav[::-1] + wav[:1])  # reversed, with one duplicate id
    result = tool("fix_data_dir.sh", data)
    assert result.returncode == 0, result.stderr
    # spk1-u1 is in neither: it counts once, under the first file lacking it (wav.scp).
    assert ("fix_data_dir.sh: kept 6 of 12 utterances "
            "(6 dropped: 4 not in feats.scp, 2 not in wav.scp)") in result.stdout
    assert (f"dropped 1 line with a repeated id (kept the first line of each id) "
            f"from {data}/wav.scp") in result.stdout
    kept = [u for u, _ in utterances() if u not in
            {"spk1-u1", "spk4-u1", "spk3-u1", "spk3-u2", "spk3-u3", "spk3-u4"}]
    for name in ("utt2spk", "wav.scp", "feats.scp", "utt2num_frames"):
        assert [line.split()[0] for line in read(data / name)] == kept
    assert read(data / "spk2utt") == ["spk1 spk1-u2 spk1-u3", "spk2 spk2-u1",
                                      "spk4 spk4-u2", "spk5 spk5-u1 spk5-u2"]
    assert "sox /w/spk1-u2.flac -t wav - |" in (data / "wav.scp").read_text()
    assert tool("validate_data_dir.sh", data).returncode == 0
    assert (data / ".backup" / "utt2spk").read_text() == originals["utt2spk"]
    assert read(data / "trials") == ["spk3-u1 spk1-u2 nontarget", "spk1-u1 spk1-u2 target"]


def test_fix_is_idempotent(data):
    before = {n: (data / n).read_text() for n in os.listdir(data)}
    result = tool("fix_data_dir.sh", data)
    assert result.stdout == "fix_data_dir.sh: kept 12 of 12 utterances\n"
    assert {n: (data / n).read_text() for n in before} == before


def test_fix_refuses_to_empty_a_directory(data):
    write(data / "feats.scp", ["other-u1 /f/x.ark:1"])
    result = tool("fix_data_dir.sh", data)
    assert result.returncode == 1
    assert "nothing would be left" in result.stderr
    assert len(read(data / "utt2spk")) == 12  # untouched


# ---- split ---------------------------------------------------------------------------------

def split_parts(split_dir, n):
    return [split_dir / str(i) for i in range(1, n + 1)]


def test_split_by_speaker_keeps_speakers_whole(data):
    assert tool("split_data.sh", data, 3).returncode == 0
    parts = split_parts(data / "split3", 3)
    seen_utts, seen_spks = [], []
    for part in parts:
        utt2spk = [line.split() for line in read(part / "utt2spk")]
        seen_utts += [u for u, _ in utt2spk]
        speakers = sorted({s for _, s in utt2spk})
        seen_spks += speakers
        for speaker in speakers:  # every utterance of a speaker in this part
            assert sum(s == speaker for _, s in utt2spk) == SPEAKERS[speaker]
        for name in ("wav.scp", "feats.scp", "utt2num_frames"):
            assert [line.split()[0] for line in read(part / name)] == [u for u, _ in utt2spk]
        assert tool("validate_data_dir.sh", part).returncode == 0
    assert sorted(seen_utts) == sorted(u for u, _ in utterances())  # each exactly once
    assert len(seen_spks) == len(set(seen_spks)) == len(SPEAKERS)
    # Speakers of 3, 1, 4, 2, 2 utterances cut into contiguous runs of equal size.
    assert [len(read(p / "utt2spk")) for p in parts] == [4, 4, 4]
    assert read(parts[0] / "spk2utt") == ["spk1 spk1-u1 spk1-u2 spk1-u3", "spk2 spk2-u1"]


def test_split_per_utt(data):
    assert tool("split_data.sh", "--per-utt", data, 5).returncode == 0
    parts = split_parts(data / "split5utt", 5)
    sizes = [len(read(p / "utt2spk")) for p in parts]
    assert sizes == [2, 3, 2, 3, 2] or sorted(sizes) == [2, 2, 2, 3, 3]
    assert sorted(l for p in parts for l in read(p / "wav.scp")) == sorted(read(data / "wav.scp"))


def test_split_needs_enough_speakers(data):
    result = tool("split_data.sh", data, 6)
    assert result.returncode == 1
    assert f"cannot split {data} into 6 parts: it has only 5 speakers" in result.stderr
    assert tool("split_data.sh", "--per-utt", data, 12).returncode == 0
    result = tool("split_data.sh", "--per-utt", data, 13)
    assert result.returncode == 1 and "it has only 12 utterances" in result.stderr


def test_split_refuses_inconsistent_directories(data):
    write(data / "feats.scp", read(data / "feats.scp")[1:])
    result = tool("split_data.sh", data, 2)
    assert result.returncode == 1
    assert f"run utils/fix_data_dir.sh {data} first" in result.stderr


def test_split_is_redone_only_when_a_source_is_newer(data):
    assert tool("split_data.sh", data, 2).returncode == 0
    part_wav = data / "split2" / "1" / "wav.scp"
    first_mtime = part_wav.stat().st_mtime_ns
    assert tool("split_data.sh", data, 2).returncode == 0
    assert part_wav.stat().st_mtime_ns == first_mtime  # up to date: not rewritten

    write(data / "wav.scp", [line.replace("/w/", "/new/") for line in read(data / "wav.scp")])
    newer = first_mtime + 10**9
    os.utime(data / "wav.scp", ns=(newer, newer))
    assert tool("split_data.sh", data, 2).returncode == 0
    assert "/new/" in part_wav.read_text()

    (data / "feats.scp").unlink()  # a file gone from the source goes from the parts
    (data / "utt2num_frames").unlink()
    assert tool("split_data.sh", data, 2).returncode == 0
    assert not (data / "split2" / "1" / "feats.scp").exists()


def test_contiguous_parts_balance_and_cover():
    assert data_dir_split.contiguous_parts([1] * 10, 3) == [(0, 3), (3, 7), (7, 10)]
    assert data_dir_split.contiguous_parts([5, 1, 1, 1, 1, 1], 2) == [(0, 1), (1, 6)]
    assert data_dir_split.contiguous_parts([9, 1, 1], 3) == [(0, 1), (1, 2), (2, 3)]  # none empty


# ---- conversions and filtering -------------------------------------------------------------

def test_utt2spk_spk2utt_round_trip(tmp_path):
    utt2spk = ["b-2 b", "a-1 a", "B-1 B", "b-1 b", "a-2 a"]
    result = tool("utt2spk_to_spk2utt.py", stdin="".join(l + "\n" for l in utt2spk))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["B B-1", "a a-1 a-2", "b b-1 b-2"]  # C order
    write(tmp_path / "spk2utt", result.stdout.splitlines())
    back = tool("spk2utt_to_utt2spk.py", tmp_path / "spk2utt")
    assert back.stdout.splitlines() == sorted(utt2spk, key=lambda l: l.encode())


def test_conversions_report_bad_lines():
    result = tool("utt2spk_to_spk2utt.py", stdin="a-1 a\na-1 b\n")
    assert result.returncode == 1
    assert "stdin line 2: utterance 'a-1' is also on line 1" in result.stderr
    result = tool("spk2utt_to_utt2spk.py", stdin="a\n")
    assert result.returncode == 1 and "stdin line 1: expected 'spk utt1 utt2 ...'" in result.stderr
    result = tool("utt2spk_to_spk2utt.py", "/nonexistent/utt2spk")
    assert result.returncode == 1
    assert "utt2spk_to_spk2utt.py: cannot use /nonexistent/utt2spk" in result.stderr


def test_filter_scp(data, tmp_path):
    write(tmp_path / "ids", ["spk3-u2 whatever", "spk1-u1", "nobody"])
    kept = tool("filter_scp.py", tmp_path / "ids", data / "wav.scp").stdout.splitlines()
    assert kept == ["spk1-u1 /w/spk1-u1.wav", "spk3-u2 sox /w/spk3-u2.flac -t wav - |"]
    rest = tool("filter_scp.py", "--exclude", tmp_path / "ids", data / "wav.scp")
    assert len(rest.stdout.splitlines()) == 10
    trials = tool("filter_scp.py", "-f", "2", tmp_path / "ids", stdin="x spk1-u1 target\ny z t\n")
    assert trials.stdout == "x spk1-u1 target\n"


def test_subset_per_speaker_keeps_the_first_n_utterances_of_each(data, tmp_path):
    dest = tmp_path / "cohort"
    dest.mkdir()
    (dest / "stale").write_text("from an earlier subset\n")
    (dest / ".lock").write_text("")
    result = tool("subset_data_dir.sh", "--per-spk", data, 2, dest)
    assert result.returncode == 0, result.stderr
    kept = ["spk1-u1", "spk1-u2", "spk2-u1", "spk3-u1", "spk3-u2", "spk4-u1", "spk4-u2",
            "spk5-u1", "spk5-u2"]
    assert [line.split()[0] for line in read(dest / "utt2spk")] == kept
    for name in ("wav.scp", "feats.scp", "utt2num_frames"):
        assert read(dest / name) == [line for line in read(data / name)
                                     if line.split()[0] in kept]
    assert read(dest / "spk2utt")[0] == "spk1 spk1-u1 spk1-u2"
    assert not (dest / "stale").exists() and (dest / ".lock").exists()
    bad = tool("subset_data_dir.sh", "--per-spk", data, 0, dest)
    assert bad.returncode == 1 and "<n> must be a positive number, not '0'" in bad.stderr


def test_combine_is_the_sorted_union_with_files_all_sources_have(tmp_path):
    a = make_data_dir(tmp_path / "a", {"spk1": 2, "spk3": 1})
    b = make_data_dir(tmp_path / "b", {"spk1": 1, "spk2": 2})  # spk1-u1 is in both, same lines
    (b / "feats.scp").unlink()
    result = tool("combine_data.sh", tmp_path / "all", a, b)
    assert result.returncode == 0, result.stderr
    assert "5 utterances from 2 data dir(s)" in result.stderr  # 3 + 3, one shared
    assert read(tmp_path / "all/utt2spk") == ["spk1-u1 spk1", "spk1-u2 spk1", "spk2-u1 spk2",
                                              "spk2-u2 spk2", "spk3-u1 spk3"]
    assert read(tmp_path / "all/spk2utt") == ["spk1 spk1-u1 spk1-u2", "spk2 spk2-u1 spk2-u2",
                                              "spk3 spk3-u1"]
    assert not (tmp_path / "all/feats.scp").exists()  # b has none: it would be incomplete
    assert len(read(tmp_path / "all/wav.scp")) == 5
    assert tool("validate_data_dir.sh", "--no-feats", tmp_path / "all").returncode == 0


def test_combine_refuses_sources_that_disagree(tmp_path):
    a = make_data_dir(tmp_path / "a", {"spk1": 1})
    b = make_data_dir(tmp_path / "b", {"spk1": 1})
    write(b / "wav.scp", ["spk1-u1 /elsewhere/spk1-u1.wav"])
    result = tool("combine_data.sh", tmp_path / "all", a, b)
    assert result.returncode == 1
    assert "wav.scp:1: spk1-u1 differs from its line in another source" in result.stderr


def test_the_tools_run_with_the_system_python_and_no_environment(tmp_path):
    """Like Kaldi's utils/, the data-dir tools need neither the virtual environment nor path.sh:
    the shell wrappers put the recipe's (standard-library) format module on PYTHONPATH
    themselves; a bare .py tool without it says what to run instead of a traceback."""
    data = make_data_dir(tmp_path / "d")
    # The interpreter the environment was made from, without the environment.
    cfg = dict(line.split(" = ", 1) for line in
               (Path(sys.prefix) / "pyvenv.cfg").read_text().splitlines() if " = " in line)
    bare = {"PATH": f"{cfg['home']}:/usr/bin:/bin", "LC_ALL": "C"}
    result = subprocess.run([str(UTILS / "validate_data_dir.sh"), "--no-wav", str(data)],
                            env=bare, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    write(data / "utt2spk", read(data / "utt2spk")[::-1])
    result = subprocess.run([str(UTILS / "validate_data_dir.sh"), "--no-wav", str(data)],
                            env=bare, capture_output=True, text=True)
    assert result.returncode == 1 and "C order" in result.stderr
    result = subprocess.run([str(UTILS / "filter_scp.py"), str(data / "utt2spk")], env=bare,
                            input="", capture_output=True, text=True)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "then `. ./path.sh` in the recipe folder" in result.stderr
