"""local/prepare_voxceleb2.py on tiny VoxCeleb2 trees of real m4a (AAC) files, the ffmpeg pipes
it writes read back through pytorch_modules.fileio.audio and the feature entry point, and the
wav-header repair that makes pipe output readable."""
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys

import kaldiio
import numpy as np
import pytest
import soundfile

from pytorch_modules.errors import run_entry_point
from pytorch_modules.features.spectrogram import parse_options_file
from pytorch_modules.fileio.audio import AudioError, fix_streamed_wav_sizes, load_audio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The environment path.sh gives the scripts (tests/conftest.py puts it in os.environ).
RECIPE_ENV = dict(os.environ)
SCRIPT = os.path.join(REPO, "local", "prepare_voxceleb2.py")
INSTALL_FFMPEG = os.path.join(REPO, "local", "install_ffmpeg.sh")
FEATURE_CONFIG = os.path.join(REPO, "conf", "spectrogram.conf")
_spec = importlib.util.spec_from_file_location("prepare_voxceleb2", SCRIPT)
prep = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(prep)

RATE = 16000
# Relative paths below dev/aac; session ids exercise C order ('-' < digits < upper < '_' < lower)
# and the leading '-' that YouTube ids may have.  Each file holds its own sine frequency.
M4AS = {"id00012/21Uxsk56VDQ/00001.m4a": 300.0, "id00012/21Uxsk56VDQ/00002.m4a": 350.0,
        "id00012/-0AbCdEfGhI/00001.m4a": 400.0, "id00015/Zz_9-abcDEF/00003.m4a": 450.0}
UTTS = ["id00012--0AbCdEfGhI-00001", "id00012-21Uxsk56VDQ-00001", "id00012-21Uxsk56VDQ-00002",
        "id00015-Zz_9-abcDEF-00003"]
SPK2UTT = ["id00012 id00012--0AbCdEfGhI-00001 id00012-21Uxsk56VDQ-00001 "
           "id00012-21Uxsk56VDQ-00002",
           "id00015 id00015-Zz_9-abcDEF-00003"]
FREQ_OF_UTT = {rel[:-len(".m4a")].replace("/", "-"): freq for rel, freq in M4AS.items()}
SECONDS = 0.6


@pytest.fixture(scope="module")
def ffmpeg():
    """These tests prove the m4a path end to end, so a missing ffmpeg is installed with the
    recipe's own script, and a failed install fails them: they must never be skipped silently."""
    if shutil.which("ffmpeg") is None:
        # One package install at a time among the parallel test files: tests/cluster/packages.sh
        proc = subprocess.run(["flock", "-o", "/tmp/recipe-tests-apt.lock", "bash", INSTALL_FFMPEG],
                              capture_output=True, text=True)
        if proc.returncode != 0 or shutil.which("ffmpeg") is None:
            pytest.fail("ffmpeg is missing and local/install_ffmpeg.sh could not install it:\n"
                        + proc.stdout + proc.stderr)
    return shutil.which("ffmpeg")


def sine(freq, seconds=SECONDS):
    return 0.5 * np.sin(2 * np.pi * freq * np.arange(int(seconds * RATE)) / RATE)


def write_m4a(path, freq):
    """An AAC m4a made by ffmpeg from a 16 kHz wav written with soundfile, as VoxCeleb2 ships."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    wav = path[:-len(".m4a")] + ".src.wav"
    soundfile.write(wav, sine(freq), RATE, subtype="PCM_16")
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-i", wav,
                    "-c:a", "aac", "-b:a", "64k", path], check=True)
    os.remove(wav)


def make_m4a_tree(audio_dir):
    """{utterance id: absolute m4a path} of M4AS written below audio_dir."""
    paths = {}
    for rel, freq in M4AS.items():
        path = os.path.join(str(audio_dir), rel)
        write_m4a(path, freq)
        paths[rel[:-len(".m4a")].replace("/", "-")] = path
    return paths


@pytest.fixture(scope="module")
def vox2(tmp_path_factory, ffmpeg):
    """A VoxCeleb2 tree as unpacked: VOX2_ROOT/dev/aac/idNNNNN/<session>/NNNNN.m4a."""
    root = tmp_path_factory.mktemp("vox2") / "voxceleb2"
    return root, make_m4a_tree(root / "dev" / "aac")


@pytest.fixture(scope="module")
def prepared(vox2, tmp_path_factory):
    """DATA_DIR after a successful run on the vox2 tree, with what the run printed."""
    root, _ = vox2
    data = tmp_path_factory.mktemp("data")
    proc = subprocess.run([sys.executable, SCRIPT, str(root), str(data)],
                          capture_output=True, text=True, env=RECIPE_ENV)
    assert proc.returncode == 0, proc.stderr
    return data, proc


def read(path):
    with open(path) as f:
        return f.read().splitlines()


def pipe(path):
    return (f"ffmpeg -nostdin -loglevel error -i {shlex.quote(path)} -ac 1 -ar 16000 "
            f"-c:a pcm_s16le -f wav - |")


def test_m4a_becomes_ffmpeg_pipes(vox2, prepared):
    _, paths = vox2
    data, proc = prepared
    set_dir = data / "voxceleb2_dev"
    assert sorted(os.listdir(data)) == ["voxceleb2_dev"]  # no temporary folder left behind
    assert sorted(os.listdir(set_dir)) == ["spk2utt", "utt2spk", "wav.scp"]
    assert read(set_dir / "wav.scp") == [f"{u} {pipe(paths[u])}" for u in UTTS]
    assert read(set_dir / "utt2spk") == [f"{u} {u[:7]}" for u in UTTS]
    assert read(set_dir / "spk2utt") == SPK2UTT
    assert UTTS == sorted(UTTS, key=lambda u: u.encode())
    assert ("prepare_voxceleb2.py: wrote " + str(set_dir) + ": 2 speakers, 4 utterances "
            "(m4a decoded by ffmpeg pipes)") in proc.stdout
    assert ("warning: voxceleb2_dev has 2 speakers and 4 utterances, but the real VoxCeleb2 "
            "dev set has 5,994 and 1,092,009") in proc.stderr


def correlation(a, b):
    n = min(len(a), len(b))
    return np.corrcoef(a[:n], b[:n])[0, 1]


def test_pipe_entries_decode_to_the_source_signal(vox2, prepared):
    """Each wav.scp pipe gives 16 kHz mono samples matching the sine the m4a was made from."""
    data, _ = prepared
    for line in read(data / "voxceleb2_dev" / "wav.scp"):
        utt, source = line.split(" ", 1)
        samples = load_audio(utt, source, RATE)  # checks 16 kHz and mono itself
        expected = sine(FREQ_OF_UTT[utt])
        assert samples.dtype == np.float32 and samples.ndim == 1
        assert abs(len(samples) - len(expected)) <= 0.05 * RATE  # AAC frame padding only
        assert correlation(samples, expected) > 0.9, utt


def test_feature_entry_point_reads_the_pipes(prepared, tmp_path):
    """The real feature job turns the pipe entries into a kaldiio-readable ark."""
    data, _ = prepared
    wav_scp = data / "voxceleb2_dev" / "wav.scp"
    out = tmp_path / "raw_spec_voxceleb2_dev.1"
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-m", "pytorch_modules.bin.compute_spectrogram",
                           "--config", FEATURE_CONFIG, str(wav_scp), str(out)],
                          capture_output=True, text=True, cwd=REPO, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "4 of 4 utterances" in proc.stdout
    options = parse_options_file(FEATURE_CONFIG)
    feats = dict(kaldiio.load_scp(f"{out}.scp"))
    assert sorted(feats) == UTTS
    num_frames = dict(line.split() for line in read(f"{out}.utt2num_frames"))
    for utt, source in (line.split(" ", 1) for line in read(wav_scp)):
        matrix = feats[utt]
        expected_frames = options.num_frames(len(load_audio(utt, source, RATE)))
        assert matrix.shape == (expected_frames, 161)
        assert abs(expected_frames - options.num_frames(int(SECONDS * RATE))) <= 5
        assert int(num_frames[utt]) == expected_frames
        assert np.isfinite(matrix).all()


def test_converted_wav_copy_is_used_when_present(vox2, tmp_path, capsys):
    """dev/wav next to dev/aac: plain wav paths, no ffmpeg needed at feature time."""
    root = tmp_path / "vox2"
    shutil.copytree(vox2[0], root)
    wavs = {}
    for rel, freq in M4AS.items():
        path = root / "dev" / "wav" / rel.replace(".m4a", ".wav")
        path.parent.mkdir(parents=True, exist_ok=True)
        soundfile.write(str(path), sine(freq), RATE, subtype="PCM_16")
        wavs[rel[:-len(".m4a")].replace("/", "-")] = str(path)
    assert prep.main(["--no-count-check", str(root), str(tmp_path / "data")]) == 0
    set_dir = tmp_path / "data" / "voxceleb2_dev"
    assert read(set_dir / "wav.scp") == [f"{u} {wavs[u]}" for u in UTTS]
    assert read(set_dir / "spk2utt") == SPK2UTT
    out = capsys.readouterr()
    assert "4 utterances (wav files)" in out.out and "warning" not in out.err


def test_root_may_be_the_dev_folder(vox2, tmp_path):
    """VOX2_ROOT=.../dev (holding aac/ directly) gives the same set."""
    root, paths = vox2
    assert prep.main([str(root / "dev"), str(tmp_path / "data")]) == 0
    assert read(tmp_path / "data" / "voxceleb2_dev" / "wav.scp") == [
        f"{u} {pipe(paths[u])}" for u in UTTS]


def test_path_with_spaces_is_quoted_in_the_pipe(tmp_path, ffmpeg):
    root = tmp_path / "my corpora" / "vox2's copy"
    path = root / "dev" / "aac" / "id00020" / "AbCdEfGhIjK" / "00001.m4a"
    write_m4a(str(path), 500.0)
    assert prep.main([str(root), str(tmp_path / "data")]) == 0
    [line] = read(tmp_path / "data" / "voxceleb2_dev" / "wav.scp")
    utt, source = line.split(" ", 1)
    assert utt == "id00020-AbCdEfGhIjK-00001" and source == pipe(str(path))
    assert shlex.quote(str(path)) in source and shlex.quote(str(path)) != str(path)
    assert correlation(load_audio(utt, source, RATE), sine(500.0)) > 0.9


def test_missing_ffmpeg_fails_before_writing(vox2, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no ffmpeg on PATH
    assert exit_code([str(vox2[0]), str(tmp_path / "data")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_voxceleb2.py: ") and "ffmpeg is not on PATH" in err
    assert "local/install_ffmpeg.sh" in err and "dev/wav/" in err
    assert not (tmp_path / "data").exists()


def exit_code(argv):
    """The exit status of the script run with argv: a RecipeError becomes a sentence on stderr
    and status 1 (errors.run_entry_point, as when the script runs)."""
    with pytest.raises(SystemExit) as exited:
        run_entry_point(lambda: prep.main(argv), "prepare_voxceleb2.py")
    return exited.value.code


def fails_with(capsys, argv, *fragments):
    assert exit_code(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("prepare_voxceleb2.py: ")
    for fragment in fragments:
        assert fragment in err, err


def test_missing_root(tmp_path, capsys):
    root = str(tmp_path / "nowhere")
    fails_with(capsys, [root, str(tmp_path / "data")], f"VoxCeleb2 root {root} does not exist",
               f"{root}/dev/aac/idNNNNN/<session>/NNNNN.m4a",
               "https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox2.html")


def test_root_without_dev_audio(tmp_path, capsys):
    root = tmp_path / "vox2"
    (root / "test" / "aac").mkdir(parents=True)  # only the test part: not a training set
    fails_with(capsys, [str(root), str(tmp_path / "data")], "no VoxCeleb2 dev audio found",
               f"{root}/dev/aac")
    assert not (tmp_path / "data").exists()


def test_audio_folder_without_files(tmp_path, capsys):
    root = tmp_path / "vox2"
    (root / "dev" / "wav" / "id00012" / "21Uxsk56VDQ").mkdir(parents=True)
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/wav holds no .wav files", "fully unpacked")


def test_stray_folder_among_speakers(tmp_path, capsys):
    root = tmp_path / "vox2"
    (root / "dev" / "wav" / "id00012-old" / "21Uxsk56VDQ").mkdir(parents=True)
    fails_with(capsys, [str(root), str(tmp_path / "data")],
               f"{root}/dev/wav/id00012-old is not a VoxCeleb2 speaker folder", "move it out")


def test_count_warning():
    assert prep.count_warning(5994, 1092009) is None
    assert prep.count_warning(5993, 1092009) == (
        "warning: voxceleb2_dev has 5,993 speakers and 1,092,009 utterances, but the real "
        "VoxCeleb2 dev set has 5,994 and 1,092,009; is the dev archive completely downloaded "
        "and unpacked?")
    assert prep.count_warning(5994, 1000000) is not None


def test_command_line_reports_without_traceback(tmp_path):
    proc = subprocess.run([SCRIPT, str(tmp_path / "nowhere"), str(tmp_path / "data")],
                          capture_output=True, text=True, env=RECIPE_ENV)
    assert proc.returncode == 1
    assert proc.stderr.startswith("prepare_voxceleb2.py: ") and "Traceback" not in proc.stderr


# ---------------------------------------------------------------- ffmpeg and audio.py


def test_broken_m4a_names_the_utterance(tmp_path, ffmpeg):
    path = tmp_path / "00001.m4a"
    path.write_bytes(b"not an m4a file")
    with pytest.raises(AudioError, match=r"utterance id00012-x-00001: command 'ffmpeg .*' "
                                         r"failed with code"):
        load_audio("id00012-x-00001", pipe(str(path)), RATE)


def streamed_wav(tmp_path, samples, size):
    """A 16-bit wav file whose RIFF and data sizes are `size`, as a writer to a pipe leaves them."""
    path = tmp_path / f"streamed_{size:x}.wav"
    soundfile.write(str(path), samples, RATE, subtype="PCM_16")
    data = bytearray(path.read_bytes())
    data[4:8] = size.to_bytes(4, "little")
    data[40:44] = size.to_bytes(4, "little")  # soundfile's header: 'data' chunk at byte 36
    assert data[36:40] == b"data"
    path.write_bytes(bytes(data))
    return path


@pytest.mark.parametrize("size", [0, 0xFFFFFFFF])
def test_pipe_wav_with_placeholder_sizes_is_read_whole(tmp_path, size):
    """Placeholder sizes (0 from some writers, 0xFFFFFFFF from ffmpeg) mean 'to the end'."""
    samples = sine(300.0, 0.3)
    path = streamed_wav(tmp_path, samples, size)
    read_back = load_audio("u", f"cat {shlex.quote(str(path))} |", RATE)
    assert len(read_back) == len(samples)
    np.testing.assert_allclose(read_back, samples, atol=1 / 32768)


def test_header_repair_leaves_correct_and_non_wav_data_alone(tmp_path):
    path = tmp_path / "ok.wav"
    soundfile.write(str(path), sine(300.0, 0.1), RATE, subtype="PCM_16")
    assert fix_streamed_wav_sizes(path.read_bytes()) == path.read_bytes()
    flac = tmp_path / "ok.flac"
    soundfile.write(str(flac), sine(300.0, 0.1), RATE)
    assert fix_streamed_wav_sizes(flac.read_bytes()) == flac.read_bytes()
    assert fix_streamed_wav_sizes(b"") == b""


def test_ffmpeg_pipe_header_is_repaired(vox2, ffmpeg):
    """What ffmpeg really writes to a pipe: placeholder sizes, and a LIST chunk before 'data'."""
    _, paths = vox2
    command = pipe(paths[UTTS[0]])[:-1]
    raw = subprocess.run(["bash", "-c", command], capture_output=True, check=True).stdout
    assert raw[4:8] == b"\xff\xff\xff\xff"
    fixed = fix_streamed_wav_sizes(raw)
    assert int.from_bytes(fixed[4:8], "little") == len(raw) - 8
    data_at = fixed.index(b"data")
    assert int.from_bytes(fixed[data_at + 4:data_at + 8], "little") == len(raw) - data_at - 8


def test_install_ffmpeg_is_a_no_op_when_present(ffmpeg):
    proc = subprocess.run(["bash", INSTALL_FFMPEG], capture_output=True, text=True)
    assert proc.returncode == 0 and "already installed" in proc.stdout


def test_install_ffmpeg_explains_without_apt(tmp_path):
    """No ffmpeg and no apt-get on PATH: a sentence saying how to install it, exit status 1."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "basename"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    proc = subprocess.run([shutil.which("bash"), INSTALL_FFMPEG], capture_output=True, text=True,
                          env={"PATH": str(bin_dir)})
    assert proc.returncode == 1
    assert proc.stderr.startswith("install_ffmpeg.sh: ffmpeg is not installed")
    assert "install ffmpeg" in proc.stderr
