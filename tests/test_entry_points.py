"""What the entry points a user calls do with input that used to pass silently or end in a
traceback: audio that cannot give an embedding is refused alike by the feature stage, embed and
verify, naming the file; ids that a Kaldi table cannot hold are refused (or made safe) where
they are made, never found by a later stage; short utterances are counted where they are padded;
and a script run without the environment says so in a sentence."""
import importlib.util
import os
import shutil
import subprocess

import kaldiio
import numpy as np
import pytest
import soundfile

import tiny_data
from tiny_model import ROOT, make_model_file, run_module, write_voice


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "final.pt"
    make_model_file(path)
    return path


def unusable_audio(folder):
    """name -> (path, the words every entry point says about it)."""
    folder.mkdir(parents=True, exist_ok=True)
    nan, silent, short = (folder / f"{name}.wav" for name in ("nan", "silent", "short"))
    soundfile.write(nan, np.full(8000, np.nan, np.float32), 16000, subtype="FLOAT")
    tiny_data.write_wav(silent, np.zeros(8000, np.float32))
    tiny_data.write_wav(short, tiny_data.tone(0.01))            # 160 samples: no 20-ms frame
    return {"nan": (nan, "holds NaN or infinite samples; check the program that wrote it"),
            "silent": (silent, "is silent (RMS level -inf dBFS, below --min-rms-dbfs=-80 in "),
            "short": (short, "is only 160 samples, shorter than one 20-ms frame")}


@pytest.mark.parametrize("kind", ["nan", "silent", "short"])
@pytest.mark.slow
def test_audio_that_cannot_give_an_embedding_is_refused_alike_everywhere(tmp_path, model, kind):
    """embed used to write an all-NaN vector for a NaN wav and say '2 embeddings'."""
    path, words = unusable_audio(tmp_path / "audio")[kind]
    good = write_voice(tmp_path / "good.wav")
    embed = run_module("pytorch_modules.bin.embed", "--model", model, "--out-dir",
                       tmp_path / "out", good, path)
    assert embed.returncode == 1 and "Traceback" not in embed.stderr
    assert embed.stderr.startswith(f"embed: audio file '{path}' {words}"), embed.stderr
    assert not (tmp_path / "out/xvector.scp").exists()
    verify = run_module("pytorch_modules.bin.verify", "--model", model, good, path)
    assert verify.returncode == 1
    assert verify.stderr.startswith(f"verify: audio file '{path}' {words}"), verify.stderr
    # the feature stage says the same of the same file
    (tmp_path / "wav.scp").write_text(f"u1 {path}\n")
    job = tiny_data.run_python("-m", "pytorch_modules.bin.compute_spectrogram", "--config",
                               "conf/spectrogram.conf", tmp_path / "wav.scp", tmp_path / "f")
    assert f"skipping: utterance u1: '{path}' {words}" in job.stderr, job.stderr


def test_embed_makes_ids_the_recipe_can_read_from_paths_with_spaces(tmp_path, model):
    """A path with a space used to become an id with a space: xvector.scp was then refused
    by score ('already appeared on line 1') after embed had exited 0."""
    a = write_voice(tmp_path / "my recording.wav", seed=0)
    b = write_voice(tmp_path / "other take.wav", seed=1)
    listing = tmp_path / "files.txt"
    listing.write_text(f"{b}\n")                          # a bare path with a space
    result = run_module("pytorch_modules.bin.embed", "--model", model, "--out-dir",
                        tmp_path / "out", "--list", listing, a)
    assert result.returncode == 0, result.stderr
    ids = ["_".join(str(b).split()), "_".join(str(a).split())]
    assert (f"embed: note: '{a}' has the id {ids[1]} (whitespace in ids becomes '_')"
            in result.stderr)
    scp = tmp_path / "out/xvector.scp"
    assert [line.split()[0] for line in scp.read_text().splitlines()] == ids
    (tmp_path / "trials").write_text(f"{ids[0]} {ids[1]} nontarget\n{ids[1]} {ids[1]} target\n")
    score = run_module("pytorch_modules.bin.score", "--trials", tmp_path / "trials",
                       "--enroll-scp", scp, "--test-scp", scp, "--scores-out",
                       tmp_path / "s", "--results-out", tmp_path / "r")
    assert score.returncode == 0, score.stderr
    # the writer itself refuses an id a table cannot hold
    from pytorch_modules.errors import RecipeError
    from pytorch_modules.fileio.embedding_io import write_vectors
    with pytest.raises(RecipeError, match=r"cannot write the embedding of 'a b' .* as an id, it "
                                          r"holds whitespace"):
        write_vectors(tmp_path / "x.ark", tmp_path / "x.scp", ["a b"], [np.ones(3)])
    assert not (tmp_path / "x.ark").exists()


def test_a_space_in_a_session_folder_is_named_by_data_preparation(tmp_path):
    """It used to become an utterance id with a space, and five validator errors later, none
    of which named the space."""
    root = tmp_path / "vox1"
    for spk, session in (("id10001", "a b"), ("id10002", "s1")):
        (root / "wav" / spk / session).mkdir(parents=True)
        for n in (1, 2):
            write_voice(root / "wav" / spk / session / f"0000{n}.wav")
    (root / "veri_test2.txt").write_text("1 id10002/s1/00001.wav id10002/s1/00002.wav\n")
    result = subprocess.run(["local/prepare_voxceleb1.py", "--no-count-check", str(root),
                             str(tmp_path / "data")], cwd=ROOT, capture_output=True, text=True,
                            env=tiny_data.env())
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        f"prepare_voxceleb1.py: {root}/wav/id10001/a b/00001.wav: its utterance id "
        f"'id10001-a b-00001' is made from its folder and file names, and it holds whitespace, "
        f"which ends an id in Kaldi tables; rename them (e.g. replace spaces with '_') and "
        f"rerun data preparation"]
    assert not (tmp_path / "data/voxceleb1_dev").exists()


def test_the_validator_names_the_first_cause_once(tmp_path):
    data = tmp_path / "data"
    tiny_data.write_audio_dir(data, {"s1-a": "/x/a.wav", "s1-b": "/x/b.wav"})
    (data / "utt2spk").write_text("s1-a s1\ns1-b x s1\n")    # an id with a space
    result = tiny_data.run_script(ROOT, "utils/validate_data_dir.sh", "--no-feats", data)
    assert result.returncode == 1
    problems = [line for line in result.stderr.splitlines() if str(data) in line]
    assert len(problems) == 1, result.stderr
    assert "utt2spk line 2: has 3 fields, expected 2 ('utt spk'): 's1-b x s1' (an id with a " \
           "space in it?)" in problems[0]


def test_extraction_counts_the_utterances_it_pads(tmp_path, model):
    """A 0.1-s evaluation utterance used to be padded to 32 frames and scored without a word."""
    recipe = tiny_data.scratch_recipe(tmp_path / "recipe")
    data = recipe / "data/eval"
    rng = np.random.default_rng(0)
    feats = {"s1-long": rng.standard_normal((80, 161)), "s1-short": rng.standard_normal((10, 161)),
             "s2-short": rng.standard_normal((40, 161))}
    tiny_data.write_feature_dir(data, 0, 0, special={k: v.astype(np.float32)
                                                     for k, v in feats.items()})
    shutil.copy(model, recipe / "final.pt")
    result = tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--nj", "1",
                                  "--min-frames", "50", "final.pt", "data/eval", "emb")
    assert result.returncode == 0, result.stderr
    assert ("steps/extract_embeddings.sh: 2 of the 3 utterances of data/eval are shorter than "
            "50 frames (0.50 s) and were repeated up to it before embedding") in result.stderr
    assert (recipe / "emb/padded").read_text() == "s1-short 10\ns2-short 40\n"
    # repeated up to 50 frames: the embedding of the features tiled to 50 frames
    from pytorch_modules.inference import embed, load_embedding_model
    network = load_embedding_model(model)
    got = dict(kaldiio.load_scp(str(recipe / "emb/xvector.scp")))
    tiled = np.concatenate([feats["s1-short"]] * 5).astype(np.float32)
    np.testing.assert_allclose(got["s1-short"], embed(network, tiled), atol=1e-5)
    bad = tiny_data.run_script(recipe, "steps/extract_embeddings.sh", "--min-frames", "8",
                               "final.pt", "data/eval", "emb")
    assert bad.returncode == 1 and "--min-frames takes a whole number of at least 32" in bad.stderr


def test_verify_says_when_a_recording_is_padded(tmp_path, model):
    short = tiny_data.write_wav(tmp_path / "short.wav", tiny_data.tone(0.25))   # 24 frames
    result = run_module("pytorch_modules.bin.verify", "--model", model, short, short)
    assert result.returncode == 0, result.stderr
    assert (f"verify: note: {short}: 24 frames (0.24 s at 10 ms), shorter than the 32-frame "
            f"minimum: repeated to 32 frames before embedding") in result.stderr


SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin:/bin")


def system_python_lacks_numpy():
    if SYSTEM_PYTHON is None:
        return True
    found = subprocess.run([SYSTEM_PYTHON, "-c", "import numpy"], capture_output=True)
    return found.returncode != 0


@pytest.mark.skipif(not system_python_lacks_numpy(),
                    reason="the system python3 has numpy: no missing module to report")
@pytest.mark.parametrize("command, prog", [
    (["local/prepare_voxceleb1.py", "--help"], "local/prepare_voxceleb1.py"),
    (["local/make_demo_corpus.py", "--help"], "local/make_demo_corpus.py"),
    (["utils/filter_scp.py", "--help"], "utils/filter_scp.py"),
    ([SYSTEM_PYTHON, "-m", "pytorch_modules.bin.verify", "--help"],
     "pytorch_modules.bin.verify"),
])
def test_an_entry_point_without_the_environment_says_what_to_do(command, prog):
    """Without `. ./path.sh` these used to end in a ModuleNotFoundError traceback."""
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "HOME": os.environ.get("HOME", "/")})
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"{prog}: cannot import "), result.stderr
    assert "the recipe's environment is not set up or not active in this shell; run ./run.sh " \
           "or tests/run.sh once (they make it), or utils/setup_env.sh, then `. ./path.sh`" \
           in result.stderr


def test_the_numerical_entry_points_need_only_what_requirements_install():
    """The list the entry points check is importable here (a typo in it would refuse every
    entry point)."""
    from pytorch_modules import environment
    assert all(importlib.util.find_spec(m) for m in environment.NUMERICAL)
    requirements = (ROOT / "requirements.txt").read_text().lower()
    names = {"yaml": "pyyaml"}
    assert all(names.get(m, m) in requirements for m in environment.NUMERICAL)
