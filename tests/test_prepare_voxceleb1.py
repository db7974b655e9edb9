"""local/prepare_voxceleb1.py on tiny VoxCeleb1 trees in both distribution layouts."""
import importlib.util
import os
import subprocess

import numpy as np
import pytest
import soundfile

from pytorch_modules.errors import run_entry_point

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The environment path.sh gives the scripts (tests/conftest.py puts it in os.environ).
RECIPE_ENV = dict(os.environ)
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
    assert sorted(os.listdir(data / "vox1_o")) == ["spk2utt", "trials", "trials.info", "utt2spk",
                                                   "wav.scp"]
    assert (data / "vox1_o" / "trials.info").read_text() == "list veri_test2.txt\n"
    assert sorted(os.listdir(data)) == ["vox1_o", "voxceleb1_dev"]


def exit_code(argv):
    """The exit status of the script run with argv: a RecipeError becomes a sentence on stderr
    and status 1 (errors.run_entry_point, as when the script runs)."""
    with pytest.raises(SystemExit) as exited:
        run_entry_point(lambda: prep.main(argv), "prepare_voxceleb1.py")
    return exited.value.code


def fails_with(capsys, argv, *fragments):
    """main(argv) exits 1 with one 'prepare_voxceleb1.py: ...' message holding all fragments."""
    assert exit_code(argv) == 1
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
                          capture_output=True, text=True, env=RECIPE_ENV)
    assert proc.returncode == 1
    assert proc.stderr.startswith("prepare_voxceleb1.py: ") and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- counts against the real corpus


@pytest.mark.parametrize("list_name, count", [
    ("veri_test2.txt", 37611), ("list_test_all2.txt", 579818), ("list_test_hard2.txt", 550894),
    ("veri_test.txt", 37720), ("list_test_all.txt", 581480), ("list_test_hard.txt", 552536)])
def test_published_trial_counts_pass_silently(list_name, count):
    assert prep.trial_count_warning("x", f"/corpora/vox1/meta/{list_name}", count) is None


def test_trial_count_warning():
    assert prep.trial_count_warning("vox1_e", "/corpora/vox1/list_test_all2.txt", 1234) == (
        "warning: vox1_e has 1,234 trials, but list_test_all2.txt of the real corpus has "
        "579,818; is the list complete?")
    assert "37,720" in prep.trial_count_warning("vox1_o_orig", "veri_test.txt", 37611)
    assert prep.trial_count_warning("mine", "/lists/my_trials.txt", 12) is None  # unknown list


def test_dev_count_warning():
    assert prep.dev_count_warning(1211, 148642) is None
    assert prep.dev_count_warning(1211, 148000) == (
        "warning: voxceleb1_dev has 1,211 speakers and 148,000 utterances, but the real "
        "VoxCeleb1 dev set has 1,211 and 148,642; are all the dev archives downloaded and "
        "unpacked?")
    assert prep.dev_count_warning(1151, 148642) is not None


def test_counts_are_checked_unless_switched_off(tmp_path, capsys):
    make_tree(tmp_path / "vox1", "split")
    assert prep.main([str(tmp_path / "vox1"), str(tmp_path / "data")]) == 0
    err = capsys.readouterr().err
    assert ("prepare_voxceleb1.py: warning: vox1_o has 3 trials, but veri_test2.txt of the "
            "real corpus has 37,611; is the list complete?") in err
    assert "prepare_voxceleb1.py: warning: voxceleb1_dev has 2 speakers and 5 utterances" in err
    assert prep.main(["--no-count-check", str(tmp_path / "vox1"), str(tmp_path / "data")]) == 0
    assert capsys.readouterr().err == ""


def test_optional_trials_only_where_present(tmp_path, capsys):
    paths = make_tree(tmp_path / "vox1", "split",
                      {"veri_test2.txt": VERI_TEST2, "meta/veri_test.txt": VERI_TEST2[:2]})
    data = tmp_path / "data"
    assert prep.main(["--optional-trials", "vox1_o_orig=veri_test.txt",
                      "--optional-trials", "vox1_e_orig=list_test_all.txt",
                      str(tmp_path / "vox1"), str(data)]) == 0
    assert sorted(os.listdir(data)) == ["vox1_o", "vox1_o_orig", "voxceleb1_dev"]
    check_set(data / "vox1_o_orig", ["id10270-5r0dWxy17C8-00002", "id10270-x6uYqmx31kE-00001",
                                     "id10273-8cfyJEV7hP8-00004"], paths,
              trials=VOX1_O_TRIALS[:2])
    out = capsys.readouterr().out
    root = tmp_path / "vox1"
    assert (f"prepare_voxceleb1.py: skipping vox1_e_orig: optional trial list list_test_all.txt "
            f"not found (looked for {root}/list_test_all.txt, {root}/meta/list_test_all.txt, "
            f"list_test_all.txt)") in out


# ---------------------------------------------------------------- --exclude-speakers

# vox1_meta.csv as VoxCeleb1 distributes it: tab-separated, with a header line.
META = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet",
        "id10001\tA.J._Buckley\tm\tIreland\tdev", "id10002\tA.R._Rahman\tm\tIndia\tdev",
        "id10270\tEartha_Kitt\tf\tUSA\ttest", "id10273\tEddie_Izzard\tm\tUK\ttest"]


def test_exclude_speakers_by_id_and_name(tmp_path, capsys):
    """Ids and vox1_meta.csv names both work; only the training set loses the speakers."""
    paths = make_tree(tmp_path / "vox1", "split",
                      {"veri_test2.txt": VERI_TEST2, "meta/list_test_all2.txt": LIST_ALL,
                       "vox1_meta.csv": META})
    overlap = tmp_path / "overlap.txt"
    write_lines(str(overlap), ["# speakers also in SITW", "A.J._Buckley", "",
                               "id10273  # a test speaker: not in the training set"])
    data = tmp_path / "data"
    assert prep.main(["--exclude-speakers", str(overlap), "--trials",
                      "vox1_e=list_test_all2.txt", str(tmp_path / "vox1"), str(data)]) == 0
    check_set(data / "voxceleb1_dev", [u for u in DEV_UTTS if u.startswith("id10002")], paths)
    assert read(data / "vox1_e" / "trials")[0] == (  # the excluded speaker stays here
        "id10001-1zcIwhmdeo4-00001 id10001--LbVbtBMx5Y-00001 target")
    out = capsys.readouterr()
    assert (f"removed 1 of the 2 speakers listed in {overlap} from voxceleb1_dev (3 "
            f"utterances); the other 1 are not among its speakers") in out.out
    # The count check is on the set before the exclusion.
    assert "voxceleb1_dev has 2 speakers and 5 utterances" in out.err


def test_exclude_speakers_merged_layout_by_id(tmp_path, capsys):
    paths = make_tree(tmp_path / "vox1", "merged")
    overlap = tmp_path / "overlap.txt"
    write_lines(str(overlap), ["id10002"])
    assert prep.main(["--exclude-speakers", str(overlap), str(tmp_path / "vox1"),
                      str(tmp_path / "data")]) == 0
    check_set(tmp_path / "data" / "voxceleb1_dev",
              [u for u in DEV_UTTS if u.startswith("id10001")], paths)
    assert (f"removed 1 of the 1 speakers listed in {overlap} from voxceleb1_dev (2 "
            f"utterances)\n") in capsys.readouterr().out


@pytest.mark.parametrize("lines, meta, fragments", [
    (["Aamir_Khan"], True, ["overlap.txt:1: 'Aamir_Khan' is neither a VoxCeleb1 id",
                            "vox1_meta.csv; correct or remove the line"]),
    (["id10001", "A.R._Rahman"], False, ["overlap.txt:2: 'A.R._Rahman' is a speaker name",
                                         "vox1_meta.csv", "or list ids (id10001)"]),
    (["id10001 id10002"], True, ["overlap.txt:1: 'id10001 id10002' holds 2 words"]),
    (["id10001", "id10002"], True, ["removes every speaker of voxceleb1_dev"]),
])
def test_bad_exclude_list(tmp_path, capsys, lines, meta, fragments):
    lists = {"veri_test2.txt": VERI_TEST2}
    if meta:
        lists["meta/vox1_meta.csv"] = META
    make_tree(tmp_path / "vox1", "split", lists)
    write_lines(str(tmp_path / "overlap.txt"), lines)
    fails_with(capsys, ["--exclude-speakers", str(tmp_path / "overlap.txt"),
                        str(tmp_path / "vox1"), str(tmp_path / "data")], *fragments)
    assert not (tmp_path / "data").exists()


def test_missing_exclude_list(tmp_path, capsys):
    make_tree(tmp_path / "vox1", "split")
    fails_with(capsys, ["--exclude-speakers", str(tmp_path / "nope.txt"),
                        str(tmp_path / "vox1"), str(tmp_path / "data")],
               f"--exclude-speakers {tmp_path}/nope.txt: no such file")

