"""local/prepare_voxceleb1.py on tiny VoxCeleb1 trees in both distribution layouts."""
import importlib.util
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(REPO, "local", "prepare_voxceleb1.py")
_spec = importlib.util.spec_from_file_location("prepare_voxceleb1", SCRIPT)
prep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prep)

# Training speakers id10001/id10002, test speakers id10270/id10273.  Session ids are chosen to
# exercise C ordering: '-' < digits < upper case < '_' < lower case.
DEV_WAVS = ["id10001/1zcIwhmdeo4/00001.wav", "id10001/1zcIwhmdeo4/00002.wav",
            "id10001/-LbVbtBMx5Y/00001.wav", "id10002/Zj2mB_YQDzE/00001.wav",
            "id10002/abcDEF12345/00003.wav"]
TEST_WAVS = ["id10270/x6uYqmx31kE/00001.wav", "id10270/5r0dWxy17C8/00002.wav",
             "id10273/8cfyJEV7hP8/00004.wav", "id10273/8cfyJEV7hP8/00005.wav"]
VERI_TEST2 = ["1 id10270/x6uYqmx31kE/00001.wav id10270/5r0dWxy17C8/00002.wav",
              "0 id10270/x6uYqmx31kE/00001.wav id10273/8cfyJEV7hP8/00004.wav",
              "0 id10273/8cfyJEV7hP8/00004.wav id10270/5r0dWxy17C8/00002.wav"]
# A Vox1-E-like list: it draws on training speakers' audio as well as test audio.
LIST_ALL = ["1 id10001/1zcIwhmdeo4/00001.wav id10001/-LbVbtBMx5Y/00001.wav",
            "0 id10002/Zj2mB_YQDzE/00001.wav id10273/8cfyJEV7hP8/00005.wav"]

DEV_UTTS = ["id10001--LbVbtBMx5Y-00001", "id10001-1zcIwhmdeo4-00001",
            "id10001-1zcIwhmdeo4-00002", "id10002-Zj2mB_YQDzE-00001",
            "id10002-abcDEF12345-00003"]
DEV_SPK2UTT = ["id10001 id10001--LbVbtBMx5Y-00001 id10001-1zcIwhmdeo4-00001 "
               "id10001-1zcIwhmdeo4-00002",
               "id10002 id10002-Zj2mB_YQDzE-00001 id10002-abcDEF12345-00003"]
VOX1_O_UTTS = ["id10270-5r0dWxy17C8-00002", "id10270-x6uYqmx31kE-00001",
               "id10273-8cfyJEV7hP8-00004"]
VOX1_O_TRIALS = ["id10270-x6uYqmx31kE-00001 id10270-5r0dWxy17C8-00002 target",
                 "id10270-x6uYqmx31kE-00001 id10273-8cfyJEV7hP8-00004 nontarget",
                 "id10273-8cfyJEV7hP8-00004 id10270-5r0dWxy17C8-00002 nontarget"]


def write_wav(path):
    """0.1 s of quiet noise, 16 kHz 16-bit PCM, as in VoxCeleb1."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    noise = np.random.default_rng(0).normal(scale=0.01, size=1600)
    soundfile.write(path, noise, 16000, subtype="PCM_16")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def make_tree(root, layout, lists=None):
    """A VoxCeleb1 tree; returns {relative wav path: absolute path}.  lists: {file: lines}."""
    wav_dirs = ({"dev/wav": DEV_WAVS, "test/wav": TEST_WAVS} if layout == "split"
                else {"wav": DEV_WAVS + TEST_WAVS})
    paths = {}
    for wav_dir, rels in wav_dirs.items():
        for rel in rels:
            paths[rel] = os.path.join(str(root), wav_dir, rel)
            write_wav(paths[rel])
    if lists is None:
        lists = {"veri_test2.txt": VERI_TEST2}
    for name, lines in lists.items():
        write_lines(os.path.join(str(root), name), lines)
    return paths


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def check_set(set_dir, utts, paths, spk2utt=None, trials=None):
    """Every file of a prepared set, line by line."""
    rel_of = {rel[:-4].replace("/", "-"): rel for rel in paths}
    assert read(os.path.join(set_dir, "wav.scp")) == [f"{u} {paths[rel_of[u]]}" for u in utts]
    assert read(os.path.join(set_dir, "utt2spk")) == [f"{u} {u[:7]}" for u in utts]
    if spk2utt is not None:
        assert read(os.path.join(set_dir, "spk2utt")) == spk2utt
    # spk2utt is utt2spk inverted, both in C order (Python's order on ASCII).
    inverted = {}
    for u in utts:
        inverted.setdefault(u[:7], []).append(u)
    assert read(os.path.join(set_dir, "spk2utt")) == [
        f"{s} {' '.join(us)}" for s, us in sorted(inverted.items())]
    assert utts == sorted(utts, key=lambda u: u.encode())
    assert os.path.exists(os.path.join(set_dir, "trials")) == (trials is not None)
    if trials is not None:
        assert read(os.path.join(set_dir, "trials")) == trials


@pytest.mark.parametrize("layout", ["split", "merged"])
def test_prepares_train_and_eval_sets(tmp_path, layout, capsys):
    paths = make_tree(tmp_path / "vox1", layout)
    data = tmp_path / "data"
    assert prep.main([str(tmp_path / "vox1"), str(data)]) == 0
    assert sorted(os.listdir(data)) == ["vox1_o", "voxceleb1_dev"]  # no temporary folder left
    check_set(data / "voxceleb1_dev", DEV_UTTS, paths, spk2utt=DEV_SPK2UTT)
    check_set(data / "vox1_o", VOX1_O_UTTS, paths, trials=VOX1_O_TRIALS)
    assert all(os.path.isabs(line.split()[1]) for line in read(data / "vox1_o" / "wav.scp"))
    out = capsys.readouterr().out
    assert "voxceleb1_dev: 2 speakers, 5 utterances" in out
    assert "vox1_o: 2 speakers, 3 utterances, 3 trials (1 target, 2 nontarget)" in out


def test_eval_lists_draw_on_dev_and_test_audio(tmp_path):
    """A Vox1-E-like list (in meta/) finds audio under dev/wav and test/wav alike."""
    paths = make_tree(tmp_path / "vox1", "split",
                      {"veri_test2.txt": VERI_TEST2, "meta/list_test_all2.txt": LIST_ALL})
    data = tmp_path / "data"
    assert prep.main(["--trials", "vox1_o=veri_test2.txt", "--trials", "vox1_e=list_test_all2.txt",
                      str(tmp_path / "vox1"), str(data)]) == 0
    check_set(data / "vox1_o", VOX1_O_UTTS, paths, trials=VOX1_O_TRIALS)
    check_set(data / "vox1_e",
              ["id10001--LbVbtBMx5Y-00001", "id10001-1zcIwhmdeo4-00001",
               "id10002-Zj2mB_YQDzE-00001", "id10273-8cfyJEV7hP8-00005"], paths,
              trials=["id10001-1zcIwhmdeo4-00001 id10001--LbVbtBMx5Y-00001 target",
                      "id10002-Zj2mB_YQDzE-00001 id10273-8cfyJEV7hP8-00005 nontarget"])


def test_merged_layout_holds_out_the_vox1_o_speakers_only(tmp_path):
    """An extra speaker that no list names is a training speaker."""
    paths = make_tree(tmp_path / "vox1", "merged")
    extra = "id10999/AAAAAAAAAAA/00001.wav"
    paths[extra] = str(tmp_path / "vox1" / "wav" / extra)
    write_wav(paths[extra])
    assert prep.main([str(tmp_path / "vox1"), str(tmp_path / "data")]) == 0
    check_set(tmp_path / "data" / "voxceleb1_dev", DEV_UTTS + ["id10999-AAAAAAAAAAA-00001"], paths)


def test_rerun_replaces_the_old_sets(tmp_path):
    make_tree(tmp_path / "vox1", "split")
    data = tmp_path / "data"
    assert prep.main([str(tmp_path / "vox1"), str(data)]) == 0
    (data / "vox1_o" / "feats.scp").write_text("stale\n")  # derived from the old lists
    assert prep.main([str(tmp_path / "vox1"), str(data)]) == 0
    assert sorted(os.listdir(data / "vox1_o")) == ["spk2utt", "trials", "utt2spk", "wav.scp"]
    assert sorted(os.listdir(data)) == ["vox1_o", "voxceleb1_dev"]


def fails_with(capsys, argv, *fragments):
    """main(argv) exits 1 with one 'prepare_voxceleb1.py: ...' message holding all fragments."""
    assert prep.main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_voxceleb1.py: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_root(tmp_path, capsys):
    root = str(tmp_path / "nowhere")
    fails_with(capsys, [root, str(tmp_path / "data")], f"{root} does not exist",
               f"Expected {root}/dev/wav and {root}/test/wav, or {root}/wav",
               "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html", "registration")


def test_root_without_audio_layout(tmp_path, capsys):
    root = tmp_path / "vox1"
    (root / "dev" / "wav").mkdir(parents=True)  # test/wav missing: neither layout
    fails_with(capsys, [str(root), str(tmp_path / "data")], "no VoxCeleb1 audio found",
               f"{root}/test/wav", f"{root}/wav")
    assert not (tmp_path / "data").exists()


def test_missing_trial_list(tmp_path, capsys):
    root = tmp_path / "vox1"
    make_tree(root, "split", lists={})
    fails_with(capsys, [str(root), str(tmp_path / "data")], "trial list veri_test2.txt not found",
               f"{root}/veri_test2.txt", f"{root}/meta/veri_test2.txt")
    assert not (tmp_path / "data").exists()


def test_trial_naming_missing_wavs(tmp_path, capsys):
    root = tmp_path / "vox1"
    lines = VERI_TEST2 + ["1 id10270/x6uYqmx31kE/00009.wav id10270/nosuchsess/00001.wav"]
    make_tree(root, "split", {"veri_test2.txt": lines})
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/veri_test2.txt: 2 trial wav reference(s) have no file",
               "line 4: id10270/x6uYqmx31kE/00009.wav", "line 4: id10270/nosuchsess/00001.wav")


@pytest.mark.parametrize("bad_line", [
    "1 id10270/x6uYqmx31kE/00001.wav",                                  # one path
    "target id10270/x6uYqmx31kE/00001.wav id10270/5r0dWxy17C8/00002.wav",  # label word
    "1 id10270-x6uYqmx31kE-00001 id10270-5r0dWxy17C8-00002",            # ids, not paths
])
def test_malformed_trial_line(tmp_path, capsys, bad_line):
    root = tmp_path / "vox1"
    make_tree(root, "split", {"veri_test2.txt": VERI_TEST2[:1] + [bad_line]})
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/veri_test2.txt:2: malformed trial", "LABEL ENROLL TEST")


def test_bad_trials_option(tmp_path, capsys):
    make_tree(tmp_path / "vox1", "split")
    fails_with(capsys, ["--trials", "veri_test2.txt", str(tmp_path / "vox1"), str(tmp_path / "d")],
               "expected NAME=FILE")


def test_command_line_reports_without_traceback(tmp_path):
    proc = subprocess.run([SCRIPT, str(tmp_path / "nowhere"), str(tmp_path / "data")],
                          capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.startswith("prepare_voxceleb1.py: ") and "Traceback" not in proc.stderr
