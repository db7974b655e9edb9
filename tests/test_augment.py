"""Augmentation of training crops (config augment:, pytorch_modules/data/augment.py): SNRs and noise
colours against their definitions, babble made of other speakers only, and every draw a
function of (seed, epoch, step, place in the global batch)."""
import re

import numpy as np
import pytest
import soundfile
import torch

from pytorch_modules.config import AugmentConfig, ConfigError, config_from_dict
from pytorch_modules.data.augment import (
    augment,
    coloured_noise,
    reverberate,
    scale_to_snr,
    spec_mask,
)
from pytorch_modules.data.augment_sources import AugmentSources
from pytorch_modules.data.batch_plan import EpochBatches
from pytorch_modules.data.training_set import CropDataset, read_training_set
from pytorch_modules.errors import RecipeError

import tiny_data

SPECTROGRAM = str(tiny_data.ROOT / "conf/spectrogram.conf")


def power(x):
    return float(np.mean(np.square(x, dtype=np.float64)))


def snr_db(signal, noise):
    return 10 * np.log10(power(signal) / power(noise))


def numpy_spectrogram(samples):
    """conf/spectrogram.conf's features written out with numpy: 20-ms Hamming windows
    (0.54 - 0.46 cos) every 10 ms, whole windows only, a 320-point FFT, the natural log of the
    power floored at 1e-10."""
    x = np.asarray(samples, dtype=np.float64)
    count = 1 + (len(x) - 320) // 160
    frames = np.stack([x[i * 160:i * 160 + 320] for i in range(count)]) * np.hamming(320)
    return np.log(np.maximum(np.abs(np.fft.rfft(frames, 320)) ** 2, 1e-10))


def numpy_reverb(samples, rir):
    """The README's reverberation written out: the convolution with the response scaled to
    unit energy, from its direct path (its largest sample) on, the input's length."""
    rir = np.asarray(rir, dtype=np.float64)
    peak = int(np.argmax(np.abs(rir)))
    wet = np.convolve(np.asarray(samples, dtype=np.float64), rir / np.linalg.norm(rir))
    return wet[peak:peak + len(samples)]


def schroeder_rt60(rir, rate=16000):
    """RT60 measured on the impulse response itself: Schroeder's backward-integrated energy
    decay curve, a straight line fitted to it from -5 to -25 dB (T20), extrapolated to -60."""
    energy = np.cumsum(np.square(rir[::-1], dtype=np.float64))[::-1]
    decay = 10 * np.log10(energy / energy[0])
    fit = (decay <= -5) & (decay >= -25)
    slope = np.polyfit(np.flatnonzero(fit) / rate, decay[fit], 1)[0]
    return -60 / slope


def test_noise_is_scaled_to_the_asked_snr():
    rng = np.random.default_rng(0)
    signal = rng.standard_normal(8000).astype(np.float32) * 0.1
    noise = rng.standard_normal(8000).astype(np.float32) * 3.0
    for snr in (0.0, 5.0, 17.5):
        scaled = scale_to_snr(signal, noise, snr)
        assert 10 * np.log10(power(signal) / power(scaled)) == pytest.approx(snr, abs=1e-4)


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.0])
def test_coloured_noise_has_the_asked_spectral_slope(beta):
    noise = coloured_noise(2**16, beta, np.random.default_rng(1)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(noise)) ** 2
    # slope of log power against log frequency over octave bands from 100 to 25,000 bins
    edges = np.geomspace(100, 25_000, 9).astype(int)
    centres = np.sqrt(edges[:-1] * edges[1:])
    band_power = [spectrum[lo:hi].mean() for lo, hi in zip(edges[:-1], edges[1:])]
    slope = np.polyfit(np.log(centres), np.log(band_power), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.1)


def test_reverberation_is_the_convolution_aligned_on_the_direct_path_at_unit_energy():
    rng = np.random.default_rng(6)
    samples = rng.standard_normal(500).astype(np.float32)
    rir = np.zeros(40, np.float32)
    rir[5], rir[12], rir[30] = 2.0, -1.0, 0.5           # direct path at 5, two reflections
    wet = reverberate(samples, rir)
    unit = rir / np.sqrt(5.25)
    expected = np.convolve(samples, unit)[5:505]        # from the direct sound on
    assert wet.shape == samples.shape
    np.testing.assert_allclose(wet, expected, atol=1e-5)
    # a pure delay of the direct path only gives the input back, at its level
    delay = np.zeros(40, np.float32)
    delay[7] = 0.3
    np.testing.assert_allclose(reverberate(samples, delay), samples, atol=1e-5)


class GeneratedNoiseOnly:
    """augment()'s sources without any file list: the noise is generated."""

    def noise(self, length, rng):
        return None


def test_augment_adds_noise_at_an_snr_in_the_range_and_nothing_when_off():
    rng = np.random.default_rng(2)
    samples = (0.1 * rng.standard_normal(16000)).astype(np.float32)
    options = AugmentConfig(noise_prob=1.0, noise_snr=[7.0, 7.0])
    out = augment(samples, np.random.default_rng(3), options, GeneratedNoiseOnly())
    assert 10 * np.log10(power(samples) / power(out - samples)) == pytest.approx(7.0, abs=1e-3)
    off = AugmentConfig(noise_prob=0.0, babble_prob=0.0)
    assert np.array_equal(augment(samples, np.random.default_rng(3), off, None), samples)


class FixedSources:
    """augment()'s sources with fixed material, so that what augment() added can be taken
    apart again: a room, a noise and a music vector, and babble whose talkers sum to one
    fixed vector whatever their number (which is recorded)."""

    def __init__(self, n, rir=None):
        rng = np.random.default_rng(11)
        self.rir = rir
        self.noise_vector, self.music_vector, self.babble_sum = (
            rng.standard_normal((3, n)).astype(np.float32))
        self.talkers = []

    def room_response(self, rng):
        return self.rir

    def noise(self, length, rng):
        return self.noise_vector

    def music(self, length, rng):
        return self.music_vector

    def babble(self, count, length, rng):
        self.talkers.append(count)
        return np.tile(self.babble_sum / count, (count, 1))

    def parts(self, residual):
        """Least-squares weights of noise, music and babble in `residual`, and what is left."""
        basis = np.stack([self.noise_vector, self.music_vector, self.babble_sum], axis=1)
        weights = np.linalg.lstsq(basis.astype(np.float64), residual, rcond=None)[0]
        return weights, residual - basis @ weights


def speech_like(n, seed=2):
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.1 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
            + 0.02 * rng.standard_normal(n)).astype(np.float32)


@pytest.mark.parametrize("kind, low, high", [("noise", 0, 15), ("music", 5, 15),
                                             ("babble", 13, 20)])
def test_each_kind_is_added_at_an_snr_drawn_over_the_readmes_range(kind, low, high):
    """README "Augmentation": noise 0-15 dB, music 5-15 dB, babble of 3-7 talkers 13-20 dB
    (the defaults).  The SNR of each crop is measured from the output; over 300 crops it
    stays in the range and reaches within 5% of each end (a draw outside, a fixed SNR or a
    narrower range fails)."""
    samples = speech_like(4000)
    sources = FixedSources(4000)
    options = AugmentConfig(**{f"{kind}_prob": 1.0})
    snrs = []
    for seed in range(300):
        out = augment(samples, np.random.default_rng(seed), options, sources)
        weights, rest = sources.parts(out.astype(np.float64) - samples)
        assert np.abs(rest).max() < 1e-5
        assert (np.abs(weights) > 1e-9).tolist() == [kind == k for k in ("noise", "music",
                                                                       "babble")]
        snrs.append(snr_db(samples, out.astype(np.float64) - samples))
    snrs = np.array(snrs)
    assert snrs.min() >= low - 1e-3 and snrs.max() <= high + 1e-3, (snrs.min(), snrs.max())
    assert snrs.min() < low + 0.05 * (high - low) and snrs.max() > high - 0.05 * (high - low)
    if kind == "babble":
        assert sorted(set(sources.talkers)) == [3, 4, 5, 6, 7]


def test_reverberation_comes_first_and_the_noises_are_added_dry():
    """Reverberation before noise (README): the output less the reverberated speech
    (numpy_reverb) is exactly a sum of the unreverberated noise, music and babble, each at
    its SNR against the reverberated speech."""
    rng = np.random.default_rng(5)
    rir = np.zeros(1200)
    rir[25] = 1.0
    rir[26:] = 0.4 * rng.standard_normal(1174) * np.exp(-np.arange(1174) / 250)
    samples = speech_like(4000)
    sources = FixedSources(4000, rir.astype(np.float32))
    options = AugmentConfig(reverb_prob=1.0, noise_prob=1.0, music_prob=1.0, babble_prob=1.0,
                            rir_list="rooms.list", music_list="music.list")
    wet = numpy_reverb(samples, rir)
    for seed in range(20):
        out = augment(samples, np.random.default_rng(seed), options, sources).astype(np.float64)
        weights, rest = sources.parts(out - wet)
        assert np.abs(rest).max() < 1e-5, "the noises are not added after the reverberation"
        vectors = (sources.noise_vector, sources.music_vector, sources.babble_sum)
        snrs = [snr_db(wet, w * v.astype(np.float64)) for w, v in zip(weights, vectors)]
        assert 0 - 1e-3 <= snrs[0] <= 15 + 1e-3 and 5 - 1e-3 <= snrs[1] <= 15 + 1e-3
        assert 13 - 1e-3 <= snrs[2] <= 20 + 1e-3


def test_generated_noise_runs_from_white_to_brown():
    """Without a noise list the noise is coloured, its spectral slope drawn over 0 (white) to
    -2 (brown): measured on 60 crops' added noise, every slope within that range (0.25 of
    estimation slack) and both ends reached."""
    samples = speech_like(2**14)
    options = AugmentConfig(noise_prob=1.0)
    edges = np.geomspace(40, 6000, 8).astype(int)
    centres = np.sqrt(edges[:-1] * edges[1:])
    slopes = []
    for seed in range(60):
        noise = augment(samples, np.random.default_rng(seed), options,
                        GeneratedNoiseOnly()).astype(np.float64) - samples
        spectrum = np.abs(np.fft.rfft(noise)) ** 2
        bands = [spectrum[lo:hi].mean() for lo, hi in zip(edges[:-1], edges[1:])]
        slopes.append(np.polyfit(np.log(centres), np.log(bands), 1)[0])
    assert -2.25 < min(slopes) < -1.7 and -0.3 < max(slopes) < 0.25, (min(slopes), max(slopes))


def test_the_aug_configs_mix_is_40_percent_noise_and_30_percent_babble_independently():
    """conf/small_dam_aug.yaml (README): noise on 40% of the crops and babble on 30%,
    independently (12% both, 42% clean): counted over 3,000 crops by taking each output
    apart (3.4 standard deviations of slack)."""
    from pytorch_modules.config import load_config

    options = load_config(tiny_data.ROOT / "conf/small_dam_aug.yaml").augment
    samples = speech_like(1600)
    sources = FixedSources(1600)
    seen = []
    for seed in range(3000):
        out = augment(samples, np.random.default_rng(seed), options, sources)
        weights, _ = sources.parts(out.astype(np.float64) - samples)
        seen.append((abs(weights[0]) > 1e-9, abs(weights[2]) > 1e-9))
    noise, babble = np.array(seen).T
    assert abs(noise.mean() - 0.4) < 0.03 and abs(babble.mean() - 0.3) < 0.03
    assert abs((noise & babble).mean() - 0.12) < 0.02
    assert abs((~noise & ~babble).mean() - 0.42) < 0.03


def test_speed_comes_before_the_noise(tmp_path):
    """Speed perturbation before everything (README): a 1,000-Hz tone at speed 1.1 with a
    3,000-Hz tone as its noise list's file shows at 1,100 Hz (bin 22) and 3,000 Hz (bin 60);
    noise added before the speed change would show at 3,300 Hz (bin 66)."""
    t = np.arange(2 * 16000) / 16000
    speech = tiny_data.write_wav(tmp_path / "audio/u1.wav",
                                 (0.3 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32))
    noise = tiny_data.write_wav(tmp_path / "noise.wav",
                                (0.3 * np.sin(2 * np.pi * 3000 * t[:16000])).astype(np.float32))
    (tmp_path / "noise.list").write_text(f"{noise}\n")
    data = tmp_path / "data"
    tiny_data.write_audio_dir(data, {"spk1-001": str(speech)})
    (data / "utt2num_frames").write_text(f"spk1-001 {1 + (len(t) - 320) // 160}\n")
    options = AugmentConfig(speed_prob=1.0, speed_factors=[1.1], noise_prob=1.0,
                            noise_snr=[0.0, 0.0], noise_list=str(tmp_path / "noise.list"))
    sets = read_training_set(str(data), "on_the_fly", SPECTROGRAM, options)
    spectrum = sets.crop(0, 20, 100, np.random.default_rng(0)).mean(axis=0)
    peaks = [b for b in range(1, 160) if spectrum[b] >= spectrum[b - 1] and
             spectrum[b] >= spectrum[b + 1]]
    assert sorted(sorted(peaks, key=lambda b: -spectrum[b])[:2]) == [22, 60]


@pytest.fixture(scope="module")
def audio_set(tmp_path_factory):
    """On-the-fly training set of 2 speakers x 3 utterances, with stage-2 utt2num_frames."""
    def write_audio(n, utt, folder):
        path = folder / f"{utt}.wav"
        soundfile.write(path, tiny_data.tone(0.8 + 0.2 * n, seed=n), tiny_data.RATE,
                        subtype="FLOAT")
        return str(path)

    recipe, sources = tiny_data.recipe_with_audio(tmp_path_factory.mktemp("augment"), 2, 3,
                                                  write_audio)
    return str(recipe / "data/x"), sources


def contains(haystack, row):
    return (np.lib.stride_tricks.sliding_window_view(haystack, len(row)) == row).all(1).any()


def test_babble_is_made_of_stretches_of_other_speakers_only(audio_set):
    data_dir, sources = audio_set
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                             AugmentConfig(babble_prob=1.0))
    audio = {utt: soundfile.read(path, dtype="float32")[0] for utt, path in sources.items()}
    rows = AugmentSources(data, 0).babble(20, 4000, np.random.default_rng(4))
    for row in rows:
        found = [utt for utt, samples in audio.items() if contains(samples, row)]
        assert found and all(data.speakers[data.labels[data.utts.index(u)]] == "spk2"
                             for u in found), found


def test_noise_music_and_babble_come_from_their_file_lists(audio_set, tmp_path):
    data_dir, _ = audio_set
    files = {}
    for kind, seconds in (("noise", 0.2), ("music", 3.0), ("speech", 1.0)):
        path = tmp_path / f"{kind}.wav"
        soundfile.write(path, tiny_data.tone(seconds, seed=len(kind)), 16000, subtype="FLOAT")
        (tmp_path / f"{kind}.list").write_text(f"{path}\n")
        files[kind] = soundfile.read(path, dtype="float32")[0]
    options = AugmentConfig(noise_prob=1.0, music_prob=1.0, babble_prob=1.0,
                            noise_list=str(tmp_path / "noise.list"),
                            music_list=str(tmp_path / "music.list"),
                            babble_list=str(tmp_path / "speech.list"))
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    sources = AugmentSources(data, 0)
    rng = np.random.default_rng(8)
    noise = sources.noise(8000, rng)                  # the 0.2-s file, repeated
    assert np.array_equal(noise, np.resize(files["noise"], 8000))
    assert contains(files["music"], sources.music(8000, rng))
    assert all(contains(files["speech"], row) for row in sources.babble(3, 8000, rng))
    (tmp_path / "music.list").write_text(str(tmp_path / "gone.wav") + "\n")
    with pytest.raises(RecipeError, match=f"{tmp_path}/music.list line 1: music file "
                                          f"{tmp_path}/gone.wav does not exist"):
        read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)


def test_augmented_crops_depend_only_on_seed_epoch_step_and_place(audio_set):
    data_dir, _ = audio_set
    options = AugmentConfig(noise_prob=0.5, babble_prob=0.5, babble_speakers=[1, 2])
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    clean = read_training_set(data_dir, "on_the_fly", SPECTROGRAM)
    batches = EpochBatches(data.num_frames, 2, 40, seed=9)   # 3 steps of 2 crops
    whole = CropDataset(data, batches, epoch=2, first_step=0)
    resumed = CropDataset(data, batches, epoch=2, first_step=1)   # a run resumed at step 1
    assert torch.equal(whole[1][0], resumed[0][0])
    # two processes, each half of the global batch: together the one-process batch
    halves = [CropDataset(data, batches, 2, 0, rank=r, world_size=2)[1][0] for r in (0, 1)]
    merged = torch.stack([halves[k % 2][k // 2] for k in range(2)])
    assert torch.equal(merged, whole[1][0])
    assert not torch.equal(whole[1][0], CropDataset(clean, batches, 2, 0)[1][0])
    assert not torch.equal(whole[0][0], CropDataset(data, batches, 3, 0)[0][0])   # next epoch


@pytest.mark.slow
def test_simulated_rooms_decay_as_their_rt60_and_place_their_direct_sound(tmp_path):
    """The rooms checked on the impulse responses themselves, not on what the generator wrote
    of its targets: the reverberation time by Schroeder integration, the direct sound's
    delay from the source and microphone positions of rooms.tsv.  Over the first 40 rooms of
    seed 5, T20 / target was 0.81-1.58 (an image-source shoebox does not decay as Sabine's
    diffuse field predicts, least in long rooms) and the rank correlation of the 6 here is
    0.94; a generator that ignores the target (fixed absorption) or scales it wrongly leaves
    these bounds.  The onset was within 0.9 samples of distance / c + the 40-sample delay of
    pyroomacoustics' 81-tap fractional-delay filter."""
    import pyroomacoustics

    rooms = tmp_path / "rooms"
    result = tiny_data.run_python(tiny_data.ROOT / "local/make_simulated_rirs.py",
                                  "--num-rooms", "6", "--seed", "5", rooms)
    assert result.returncode == 0, result.stderr
    paths = (rooms / "rir.list").read_text().splitlines()
    assert len(paths) == 6 and all(p.endswith(f"room_{n:04d}.wav") for n, p in enumerate(paths))
    rows = [line.split("\t") for line in (rooms / "rooms.tsv").read_text().splitlines()]
    targets, measured = [], []
    for path, row in zip(paths, rows):
        rir, rate = soundfile.read(path, dtype="float64")
        assert rate == 16000 and row[0] == path.rsplit("/", 1)[1][:-4]
        target = float(row[4])
        assert 0.2 <= target <= 0.8
        targets.append(target)
        measured.append(schroeder_rt60(rir))
        assert 0.75 * target <= measured[-1] <= 1.7 * target, (row, measured[-1])
        source, mic = np.array(row[5:8], float), np.array(row[8:11], float)
        delay = (np.linalg.norm(source - mic) / 343.0 * 16000
                 + pyroomacoustics.constants.get("frac_delay_length") // 2)
        onset = int(np.argmax(np.abs(rir) >= 0.5 * np.abs(rir).max()))
        assert abs(onset - delay) <= 1.5, (row, onset, delay)
    rank = lambda v: np.argsort(np.argsort(v))
    assert np.corrcoef(rank(targets), rank(measured))[0, 1] >= 0.8, (targets, measured)
    # The same seed gives the same rooms, whatever --num-rooms.
    again = tmp_path / "again"
    tiny_data.run_python(tiny_data.ROOT / "local/make_simulated_rirs.py", "--num-rooms", "3",
                         "--seed", "5", again)
    assert np.array_equal(soundfile.read(again / "wav/room_0002.wav")[0],
                          soundfile.read(rooms / "wav/room_0002.wav")[0])


def test_reverb_through_the_training_set_is_the_crop_convolved_with_the_room(audio_set,
                                                                             tmp_path):
    """A reverberated crop equals the numpy spectrogram of the crop's samples convolved with
    the room (numpy_reverb), and a room list naming a missing file is refused."""
    data_dir, sources = audio_set
    rir = np.zeros(4000, np.float32)
    rir[30] = 1.0                                         # direct sound, then a decaying tail
    rir[31:] = 0.5 * np.random.default_rng(3).standard_normal(3969) * np.exp(
        -np.arange(3969) / 800.0)
    tiny_data.write_wav(tmp_path / "room.wav", rir / 2)   # 16-bit, as RIRS_NOISES' files
    room = soundfile.read(tmp_path / "room.wav", dtype="float64")[0]
    (tmp_path / "rir.list").write_text(f"{tmp_path}/room.wav\n")
    options = AugmentConfig(reverb_prob=1.0, rir_list=str(tmp_path / "rir.list"))
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    index = int(np.argmax(data.num_frames))
    wet = data.crop(index, 10, 40, np.random.default_rng(1))
    samples = soundfile.read(sources[data.utts[index]], dtype="float64")[0]
    count = 320 + 39 * 160                                # the samples of frames 10..49
    expected = numpy_spectrogram(numpy_reverb(samples[1600:1600 + count], room))
    np.testing.assert_allclose(wet, expected, rtol=0, atol=2e-3)
    (tmp_path / "rir.list").write_text(f"{tmp_path}/room.wav\n{tmp_path}/gone.wav\n")
    with pytest.raises(RecipeError, match=f"{tmp_path}/rir.list line 2: room impulse response "
                                          f"file {tmp_path}/gone.wav does not exist"):
        read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)


def test_augmentation_needs_on_the_fly_features_and_ranges():
    with pytest.raises(ConfigError, match="augment: noise, music, babble, reverb and speed need "
                                          r"the crops computed from the audio \(data.features: "
                                          r"on_the_fly or shards\)"):
        config_from_dict({"augment": {"noise_prob": 0.6}}, "x.yaml")
    # Masks need no audio: precomputed arks take them.
    assert config_from_dict({"augment": {"spec_mask_prob": 0.5}}).augment.enabled
    with pytest.raises(ConfigError, match=r"augment.freq_mask_bins is 0, but it must be > 0"):
        config_from_dict({"augment": {"spec_mask_prob": 0.5, "freq_mask_bins": 0}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"x.yaml: augment.babble_prob is 1.5, but it must be "
                                          r"in \[0, 1\]"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"babble_prob": 1.5}}, "x.yaml")
    with pytest.raises(ConfigError, match=r"augment.noise_snr is \[15(\.0)?, 0(\.0)?\], but it "
                                          r"must be \[low, high\] with low <= high"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"noise_snr": [15, 0]}}, "x.yaml")
    with pytest.raises(ConfigError, match="augment.reverb_prob needs augment.rir_list"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"reverb_prob": 0.5}}, "x.yaml")


def test_spec_masks_set_bands_and_spans_to_their_bins_mean():
    """Each mask replaces 1..max bins (frames) by the crop's per-bin mean; the rest is kept."""
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(50, 30)).astype(np.float32) + np.arange(30, dtype=np.float32)
    options = AugmentConfig(spec_mask_prob=1.0, freq_masks=1, freq_mask_bins=5, time_masks=1,
                            time_mask_frames=8)
    mean = feats.mean(axis=0)
    for seed in range(20):
        out = spec_mask(feats, np.random.default_rng(seed), options)
        changed = out != feats
        bands = np.flatnonzero(changed.all(axis=0))    # masked bins: every frame changed
        spans = np.flatnonzero(changed.all(axis=1))    # masked frames: every bin changed
        assert 1 <= len(bands) <= 5 and np.all(np.diff(bands) == 1)
        assert 1 <= len(spans) <= 8 and np.all(np.diff(spans) == 1)
        assert np.allclose(out[:, bands], mean[bands]) and np.allclose(out[spans], mean)
        kept = np.ones_like(changed)
        kept[:, bands] = kept[spans] = False
        assert np.array_equal(out[kept], feats[kept])
    none = AugmentConfig(spec_mask_prob=1.0, freq_masks=0, time_masks=0)
    assert np.array_equal(spec_mask(feats, np.random.default_rng(1), none), feats)


def test_spec_masks_on_ark_crops_are_drawn_from_seed_epoch_step_and_place(audio_set):
    """On precomputed features: a masked crop is the ark crop with masks, and a resumed run,
    or two processes, draw the same masks."""
    data_dir, _ = audio_set
    options = AugmentConfig(spec_mask_prob=1.0, time_mask_frames=5)
    data = read_training_set(data_dir, "precomputed", SPECTROGRAM, options)
    clean = read_training_set(data_dir, "precomputed", SPECTROGRAM)
    batches = EpochBatches(data.num_frames, 2, 40, seed=9)   # 3 steps of 2 crops
    whole = CropDataset(data, batches, epoch=2, first_step=0)
    masked, plain = whole[1][0], CropDataset(clean, batches, 2, 0)[1][0]
    assert torch.equal(CropDataset(data, batches, 2, first_step=1)[0][0], masked)
    halves = [CropDataset(data, batches, 2, 0, rank=r, world_size=2)[1][0] for r in (0, 1)]
    assert torch.equal(torch.stack([halves[k % 2][k // 2] for k in range(2)]), masked)
    for crop, ark in zip(masked.numpy(), plain.numpy()):   # each (bins, frames)
        changed = crop != ark
        assert changed.any() and not changed.all()
        bins = np.flatnonzero(changed.all(axis=1))
        assert len(bins) >= 1
        assert np.allclose(crop[bins], ark[bins].mean(axis=1, keepdims=True))


@pytest.mark.parametrize("speed, peak_hz", [(1.0, 1000), (1.1, 1100), (0.9, 900)])
def test_speed_perturbation_moves_a_tone_by_its_factor(tmp_path, speed, peak_hz):
    from pytorch_modules.data.audio_crops import audio_crop
    from pytorch_modules.features.spectrogram import parse_options_file

    options = parse_options_file(SPECTROGRAM)
    t = np.arange(3 * 16000) / 16000
    path = tmp_path / "tone.wav"
    soundfile.write(path, (0.5 * np.sin(2 * np.pi * 1000 * t)).astype(np.float32), 16000,
                    subtype="FLOAT")
    feats = audio_crop("u", str(path), 100, 50, 299, options, speed=speed)
    assert feats.shape == (50, 161)
    peak_bins = feats.argmax(axis=1)             # 50 Hz per bin
    assert (peak_bins == peak_hz // 50).all()


def test_speed_perturbation_through_the_training_set(audio_set):
    """A crop at speed 1.1 is the spectrogram of 1.1 times its samples, read from 1.1 times
    its start, resampled to its length: here by scipy's polyphase resampler (the recipe uses
    torchaudio's sinc), compared below 6 kHz, where the two filters agree: measured, a mean
    absolute difference of 0.005 in log power (at most 0.26, in a few spectral dips), against
    1.3-1.5 for the crop at speed 1, 0.9 or 1.05, or one frame later."""
    from scipy.signal import resample_poly

    data_dir, sources = audio_set
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                             AugmentConfig(speed_prob=1.0, speed_factors=[1.1]))
    index = int(np.argmax(data.num_frames))
    fast = data.crop(index, 10, 40, np.random.default_rng(0))
    samples = soundfile.read(sources[data.utts[index]], dtype="float64")[0]
    count = 320 + 39 * 160
    read = samples[1760:1760 + int(np.ceil(1.1 * count))]   # from 1.1 x 10 frames x 160
    expected = numpy_spectrogram(resample_poly(read, 10, 11)[:count])
    assert fast.shape == (40, 161)
    difference = np.abs(fast[1:-1, :120] - expected[1:-1, :120])
    assert difference.mean() < 0.02 and difference.max() < 0.5, (difference.mean(),
                                                                 difference.max())
    with pytest.raises(ConfigError, match=r"augment.speed_factors is \[0.3\], but it must be "
                                          r"all in \[0.5, 2\]"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"speed_prob": 0.5, "speed_factors": [0.3]}}, "x.yaml")


def test_speed_perturbed_crops_can_be_speakers_of_their_own(audio_set):
    data_dir, _ = audio_set
    options = AugmentConfig(speed_prob=0.5, speed_factors=[0.9, 1.1], speed_new_speakers=True)
    data = read_training_set(data_dir, "on_the_fly", SPECTROGRAM, options)
    same_label = read_training_set(data_dir, "on_the_fly", SPECTROGRAM,
                                   AugmentConfig(speed_prob=0.5, speed_factors=[0.9, 1.1]))
    speakers = len(data.speakers)
    assert data.num_classes == 3 * speakers and same_label.num_classes == speakers
    index = int(np.argmax(data.num_frames))
    clean = same_label.crop(index, 10, 40)
    seen = set()
    for seed in range(40):
        feats, label = data.labelled_crop(index, 10, 40, np.random.default_rng(seed))
        kept, kept_label = same_label.labelled_crop(index, 10, 40, np.random.default_rng(seed))
        np.testing.assert_array_equal(feats, kept)    # the same draws, only the label differs
        assert kept_label == data.labels[index]
        offset, speaker = divmod(label, speakers)
        assert speaker == data.labels[index]
        # offset 0: the speed left alone; 1: factor 0.9; 2: factor 1.1.
        assert np.allclose(feats, clean) == (offset == 0)
        seen.add(offset)
    assert seen == {0, 1, 2}
    with pytest.raises(ConfigError, match="augment.speed_new_speakers needs augment.speed_prob"):
        config_from_dict({"data": {"features": "on_the_fly"},
                          "augment": {"speed_new_speakers": True}}, "x.yaml")


def test_musan_and_rirs_noises_are_listed_for_the_augment_section(tmp_path):
    layout = ["musan/noise/free-sound/noise-free-sound-0000.wav",
              "musan/music/fma/music-fma-0000.wav", "musan/music/jamendo/music-jamendo-0001.wav",
              "musan/speech/us-gov/speech-us-gov-0000.wav",
              "RIRS_NOISES/simulated_rirs/smallroom/Room001/Room001-00001.wav",
              "RIRS_NOISES/real_rirs_isotropic_noises/RVB2014_type1_rir_largeroom1_near_angla.wav"]
    for rel in layout:
        tiny_data.write_wav(tmp_path / rel, tiny_data.tone(0.1))
    result = tiny_data.run_python(tiny_data.ROOT / "local/prepare_augment_lists.py",
                                  "--musan-root", tmp_path / "musan",
                                  "--rirs-root", tmp_path / "RIRS_NOISES", tmp_path / "data")
    assert result.returncode == 0, result.stderr
    listed = {name: (tmp_path / "data" / name).read_text().splitlines()
              for name in ("musan/noise.list", "musan/music.list", "musan/speech.list",
                           "rirs/rir.list")}
    assert listed["musan/music.list"] == [str(tmp_path / layout[1]), str(tmp_path / layout[2])]
    assert listed["rirs/rir.list"] == [str(tmp_path / layout[4])]   # simulated rooms only
    config = config_from_dict({"data": {"features": "on_the_fly"}, "augment": {
        "music_prob": 0.5, "music_list": str(tmp_path / "data/musan/music.list")}})
    assert config.augment.enabled
    result = tiny_data.run_python(tiny_data.ROOT / "local/prepare_augment_lists.py",
                                  "--musan-root", tmp_path / "nowhere", tmp_path / "data")
    assert result.returncode == 1 and result.stderr.startswith(
        f"prepare_augment_lists.py: {tmp_path}/nowhere/noise holds no wav files; --musan-root "
        f"must be the unpacked MUSAN folder")


@pytest.mark.slow
def test_killed_augmented_training_resumes_to_the_same_model(tmp_path):
    """kill -9 mid-epoch with every crop computed from the audio, noised, babbled, sped up (as
    speakers of their own) and masked: the rerun ends bit for bit where the uninterrupted run
    does."""
    from test_resume import KILL_AFTER, differing_tensors, start_and_kill_mid_epoch, train_command

    def write_audio(n, utt, folder):
        path = folder / f"{utt}.wav"
        soundfile.write(path, tiny_data.tone(0.9 + 0.05 * n, seed=n), tiny_data.RATE,
                        subtype="PCM_16")
        return str(path)

    # 4 speakers x 8 utterances: 8 steps of 4 crops an epoch, a checkpoint every 2 steps
    recipe, _ = tiny_data.recipe_with_audio(tmp_path, 4, 8, write_audio)
    config = tiny_data.write_train_config(tmp_path / "tiny.yaml")
    config.write_text(config.read_text().replace(
        "num_workers: 0}", f"num_workers: 0, features: on_the_fly, spectrogram_config: "
                           f"{SPECTROGRAM}}}\naugment: {{noise_prob: 0.5, babble_prob: 0.5, "
                           f"babble_speakers: [1, 2], speed_prob: 0.7, "
                           f"speed_new_speakers: true, spec_mask_prob: 0.5}}"))
    data = recipe / "data/x"
    straight, resumed = tmp_path / "exp_straight", tmp_path / "exp_resumed"
    result = tiny_data.train(config, data, straight)
    assert result.returncode == 0, result.stderr
    start_and_kill_mid_epoch(train_command(config, data, resumed), resumed)
    assert not (resumed / "final.pt").exists()
    result = tiny_data.train(config, data, resumed)
    assert result.returncode == 0, result.stderr
    # The kill landed inside epoch 1: the rerun starts from a mid-epoch checkpoint of it (not
    # from epoch_001.pt, which sorts before it, nor from epoch 2) and trains the rest of it.
    resumed_at = re.search(rf"resuming from {resumed}/checkpoints/{KILL_AFTER}(\d+)\.pt "
                           rf"\(epoch 1, step (\d+) of 8\)", result.stdout)
    assert resumed_at, f"not killed mid-epoch:\n{result.stdout}"
    assert int(resumed_at.group(1)) == int(resumed_at.group(2)) < 8
    assert "epoch 1/2 step 8/8" in result.stdout
    assert differing_tensors(straight / "final.pt", resumed / "final.pt") == []
    assert differing_tensors(straight / "checkpoints/epoch_002.pt",
                             resumed / "checkpoints/epoch_002.pt") == []
