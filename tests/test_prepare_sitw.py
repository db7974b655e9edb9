"""local/prepare_sitw.py on a tiny SITW tree laid out like the distributed database: dev/ and
eval/, each with audio/*.flac, lists/enroll-core.lst, lists/test-core.lst, keys/core-core.lst."""
import importlib.util
import os
import subprocess

import numpy as np
import pytest
import soundfile

from pytorch_modules.errors import run_entry_point
from pytorch_modules.fileio.audio import load_audio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The environment path.sh gives the scripts (tests/conftest.py puts it in os.environ).
RECIPE_ENV = dict(os.environ)
SCRIPT = os.path.join(REPO, "local", "prepare_sitw.py")
_spec = importlib.util.spec_from_file_location("prepare_sitw", SCRIPT)
prep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prep)

# Per part: list files as SITW writes them (paths relative to the part's folder, lists in no
# particular order) and the files expected from them.
TREE = {
    "dev": {
        "lists/enroll-core.lst": ["12013 audio/unotx.flac", "10001 audio/aahtm.flac",
                                  "10002 audio/bkwzq.flac"],
        "lists/test-core.lst": ["audio/xolmb.flac", "audio/cefrt.flac", "audio/dtmqa.flac"],
        "keys/core-core.lst": ["10001 audio/xolmb.flac tgt", "10001 audio/cefrt.flac imp",
                               "12013 audio/dtmqa.flac imp", "10002 audio/cefrt.flac tgt",
                               "12013 audio/xolmb.flac imp"],
    },
    "eval": {
        "lists/enroll-core.lst": ["20077 audio/qqwer.flac", "20005 audio/ppasd.flac"],
        "lists/test-core.lst": ["audio/mmzxc.flac", "audio/aabbc.flac extra-column"],
        "keys/core-core.lst": ["20077 audio/aabbc.flac tgt", "20005 audio/aabbc.flac imp",
                               "20005 audio/mmzxc.flac tgt"],
    },
}
EXPECTED = {
    "sitw_dev_enroll": {
        "utts": ["10001_aahtm", "10002_bkwzq", "12013_unotx"],
        "files": ["aahtm", "bkwzq", "unotx"],
        "utt2spk": ["10001_aahtm 10001", "10002_bkwzq 10002", "12013_unotx 12013"],
        "spk2utt": ["10001 10001_aahtm", "10002 10002_bkwzq", "12013 12013_unotx"],
    },
    "sitw_dev_test": {
        "utts": ["cefrt", "dtmqa", "xolmb"],
        "files": ["cefrt", "dtmqa", "xolmb"],
        "utt2spk": ["cefrt cefrt", "dtmqa dtmqa", "xolmb xolmb"],
        "spk2utt": ["cefrt cefrt", "dtmqa dtmqa", "xolmb xolmb"],
        "trials": ["10001 xolmb target", "10001 cefrt nontarget", "12013 dtmqa nontarget",
                   "10002 cefrt target", "12013 xolmb nontarget"],
    },
    "sitw_eval_enroll": {
        "utts": ["20005_ppasd", "20077_qqwer"],
        "files": ["ppasd", "qqwer"],
        "utt2spk": ["20005_ppasd 20005", "20077_qqwer 20077"],
        "spk2utt": ["20005 20005_ppasd", "20077 20077_qqwer"],
    },
    "sitw_eval_test": {
        "utts": ["aabbc", "mmzxc"],
        "files": ["aabbc", "mmzxc"],
        "utt2spk": ["aabbc aabbc", "mmzxc mmzxc"],
        "spk2utt": ["aabbc aabbc", "mmzxc mmzxc"],
        "trials": ["20077 aabbc target", "20005 aabbc nontarget", "20005 mmzxc target"],
    },
}


def write_flac(path, seed):
    """0.2 s of noise as 16-bit 16 kHz mono FLAC, as SITW's audio."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    noise = np.random.default_rng(seed).normal(scale=0.05, size=3200)
    soundfile.write(path, noise, 16000, format="FLAC", subtype="PCM_16")


def write_lines(path, lines):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)


def make_tree(root, tree=TREE):
    """The lists of `tree` and a flac for every audio path they name."""
    for part, lists in tree.items():
        audio = set()
        for name, lines in lists.items():
            write_lines(os.path.join(str(root), part, name), lines)
            audio |= {field for line in lines for field in line.split() if field.endswith(".flac")}
        for seed, rel in enumerate(sorted(audio)):
            write_flac(os.path.join(str(root), part, rel), seed)


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def test_prepares_enroll_and_test_sets_of_both_parts(tmp_path, capsys):
    root = tmp_path / "sitw_database.v4"
    make_tree(root)
    data = tmp_path / "data"
    assert prep.main([str(root), str(data)]) == 0
    assert sorted(os.listdir(data)) == sorted(EXPECTED)  # and no temporary folder left
    for name, want in EXPECTED.items():
        set_dir = data / name
        part = name.split("_")[1]
        audio = root / part / "audio"
        assert read(set_dir / "wav.scp") == [
            f"{utt} {audio / f}.flac" for utt, f in zip(want["utts"], want["files"])]
        assert read(set_dir / "utt2spk") == want["utt2spk"]
        assert read(set_dir / "spk2utt") == want["spk2utt"]
        assert os.path.exists(set_dir / "trials") == ("trials" in want)
        if "trials" in want:
            assert read(set_dir / "trials") == want["trials"]  # the key's order
    out = capsys.readouterr().out
    assert f"wrote {data}/sitw_dev_enroll: 3 models, 3 utterances" in out
    assert (f"wrote {data}/sitw_dev_test: 3 speakers, 3 utterances, 5 trials (2 target, "
            f"3 nontarget)") in out


def test_flac_is_read_by_path(tmp_path):
    root = tmp_path / "sitw"
    make_tree(root)
    assert prep.main([str(root), str(tmp_path / "data")]) == 0
    for line in read(tmp_path / "data" / "sitw_eval_test" / "wav.scp"):
        utt, source = line.split(" ", 1)
        assert source.endswith(".flac") and os.path.isabs(source)
        samples = load_audio(utt, source, 16000)
        np.testing.assert_allclose(samples, soundfile.read(source, dtype="float32")[0])
        assert len(samples) == 3200


def test_validates_as_kaldi_data_dirs(tmp_path):
    root = tmp_path / "sitw"
    make_tree(root)
    assert prep.main([str(root), str(tmp_path / "data")]) == 0
    for name in EXPECTED:
        proc = subprocess.run([os.path.join(REPO, "utils", "validate_data_dir.sh"), "--no-feats",
                               str(tmp_path / "data" / name)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rerun_replaces_the_old_sets(tmp_path):
    root = tmp_path / "sitw"
    make_tree(root)
    data = tmp_path / "data"
    assert prep.main([str(root), str(data)]) == 0
    (data / "sitw_dev_test" / "feats.scp").write_text("stale\n")
    assert prep.main([str(root), str(data)]) == 0
    assert sorted(os.listdir(data / "sitw_dev_test")) == ["spk2utt", "trials", "utt2spk",
                                                          "wav.scp"]
    assert sorted(os.listdir(data)) == sorted(EXPECTED)


def exit_code(argv):
    """The exit status of the script run with argv: a RecipeError becomes a sentence on stderr
    and status 1 (errors.run_entry_point, as when the script runs)."""
    with pytest.raises(SystemExit) as exited:
        run_entry_point(lambda: prep.main(argv), "prepare_sitw.py")
    return exited.value.code


def fails_with(capsys, argv, *fragments):
    """main(argv) exits 1 with one 'prepare_sitw.py: ...' message holding all fragments."""
    assert exit_code(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_sitw.py: ")
    for fragment in fragments:
        assert fragment in err, err
    return err


def test_missing_root(tmp_path, capsys):
    root = str(tmp_path / "nowhere")
    fails_with(capsys, [root, str(tmp_path / "data")], f"SITW root {root} does not exist",
               f"Expected {root}/dev and {root}/eval", "lists/enroll-core.lst",
               "SRI International", "http://www.speech.sri.com/projects/sitw/")


def test_missing_part(tmp_path, capsys):
    root = tmp_path / "sitw"
    make_tree(root, {"dev": TREE["dev"]})
    fails_with(capsys, [str(root), str(tmp_path / "data")], f"{root} has no eval/ folder")
    assert not (tmp_path / "data").exists()  # dev was fine, but nothing is written


@pytest.mark.parametrize("name", ["lists/enroll-core.lst", "lists/test-core.lst",
                                  "keys/core-core.lst"])
def test_missing_list(tmp_path, capsys, name):
    root = tmp_path / "sitw"
    make_tree(root)
    os.remove(root / "eval" / name)
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/eval/{name} not found", "SRI International")
    assert not (tmp_path / "data").exists()


def test_missing_audio(tmp_path, capsys):
    root = tmp_path / "sitw"
    make_tree(root)
    os.remove(root / "dev" / "audio" / "dtmqa.flac")
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/lists/test-core.lst: 1 listed audio file(s) do not exist",
               f"line 3: {root}/dev/audio/dtmqa.flac", "fully unpacked")


@pytest.mark.parametrize("name, line, fragment", [
    ("keys/core-core.lst", "10001 audio/xolmb.flac target", "label 'target' is neither tgt"),
    ("keys/core-core.lst", "10001 audio/xolmb.flac", "malformed line"),
    ("lists/enroll-core.lst", "10001", "malformed line"),
    ("lists/test-core.lst", "audio/xolmb.wav", "malformed line"),
])
def test_malformed_line(tmp_path, capsys, name, line, fragment):
    tree = {"dev": dict(TREE["dev"]), "eval": TREE["eval"]}
    tree["dev"][name] = tree["dev"][name] + [line]
    root = tmp_path / "sitw"
    make_tree(root, tree)
    number = len(tree["dev"][name])
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/{name}:{number}: {fragment}")


def test_key_naming_an_unknown_model_or_test_file(tmp_path, capsys):
    root = tmp_path / "sitw"
    tree = {"dev": dict(TREE["dev"]), "eval": TREE["eval"]}
    tree["dev"]["keys/core-core.lst"] = TREE["dev"]["keys/core-core.lst"] + [
        "19999 audio/xolmb.flac imp"]
    make_tree(root, tree)
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/keys/core-core.lst:6: model 19999 is not enrolled")
    write_lines(str(root / "dev" / "keys" / "core-core.lst"),
                TREE["dev"]["keys/core-core.lst"] + ["10001 audio/unotx.flac imp"])
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/keys/core-core.lst:6: test file audio/unotx.flac is not in "
               f"{root}/dev/lists/test-core.lst")


def test_repeated_enrollment_line(tmp_path, capsys):
    root = tmp_path / "sitw"
    tree = {"dev": dict(TREE["dev"]), "eval": TREE["eval"]}
    tree["dev"]["lists/enroll-core.lst"] = TREE["dev"]["lists/enroll-core.lst"] + [
        "10001 audio/aahtm.flac"]
    make_tree(root, tree)
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/lists/enroll-core.lst:4: utterance 10001_aahtm is already given "
               f"on line 2")


def test_command_line_reports_without_traceback(tmp_path):
    proc = subprocess.run([SCRIPT, str(tmp_path / "nowhere"), str(tmp_path / "data")],
                          capture_output=True, text=True, env=RECIPE_ENV)
    assert proc.returncode == 1
    assert proc.stderr.startswith("prepare_sitw.py: ") and "Traceback" not in proc.stderr
