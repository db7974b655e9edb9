"""The speech synthesiser behind the demo corpus (local/make_demo_corpus.py): a source-filter
model whose speaker identity lives where it lives in real speech (pitch, vocal-tract length,
voice quality, accent), while every recording session adds its own channel, noise and level.

Speech model, per level of the hierarchy:
  speaker    f0 range (low and high voices), formant scale (vocal-tract length 0.8-1.2), per-vowel
             formant offsets (accent), F4+ offsets, formant bandwidths, glottal open quotient and
             spectral tilt, breathiness, jitter, shimmer, a hypopharyngeal antiresonance, an
             individual long-term spectral colouring, speaking rate
  session    channel colouring (smooth EQ, resonances/notches, band-limiting, sometimes reverb),
             coloured background noise at 5-30 dB SNR (sometimes mains hum), level, and the
             speaker's state that day (pitch shift, vocal effort, rate); SESSION_SPREAD holds
             the ranges, i.e. the task's difficulty
  utterance  a random phone sequence (vowels, nasals, liquids, fricatives, stops, pauses) with
             smooth formant transitions, an intonation contour, its own rate and 2-8 s length

Every random draw comes from a generator seeded by (seed, what, subset, speaker, session,
utterance), never from a shared stream, so the files are byte-identical whatever --nj is.
The vocal-tract filter is evaluated per 8 ms frame in the STFT domain (each frame's cascade of
2nd-order resonators on the FFT bins), which keeps all of it vectorised numpy: about 200x real
time per core.
"""
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

SAMPLE_RATE = 16000

# Keys that separate the random streams (the second element of every generator's seed).
STREAM_VOICE, STREAM_SESSION, STREAM_UTTERANCE, STREAM_SESSION_ID, STREAM_TRIALS = range(1, 6)

# ----------------------------------------------------------------------------------------------
# Short-time Fourier transform used for the time-varying vocal-tract filter.
# 32 ms frames, 8 ms hop, sqrt-Hann analysis and synthesis windows: the product is a Hann window
# whose copies at a quarter-frame hop sum to exactly 2, so analysis + synthesis alone is perfect
# reconstruction and any filtering we do per frame changes smoothly from frame to frame.
N_FFT = 512
HOP = 128
LEAD = N_FFT - HOP  # zeros before the signal, so its first sample is covered by 4 frames too
WINDOW = np.sqrt(0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT))
BIN_HZ = np.fft.rfftfreq(N_FFT, 1.0 / SAMPLE_RATE)  # (257,)
Z1 = np.exp(-2j * np.pi * BIN_HZ / SAMPLE_RATE)  # z^-1 on the unit circle, per bin
Z2 = Z1 ** 2


def num_frames(n_samples):
    return (n_samples - 1 + LEAD) // HOP + 1


def frame_centres(n_samples):
    """Sample index of each STFT frame's centre (tracks are evaluated there)."""
    return np.arange(num_frames(n_samples)) * HOP - LEAD + N_FFT // 2


def stft(x):
    frames_n = num_frames(len(x))
    padded = np.zeros((frames_n - 1) * HOP + N_FFT)
    padded[LEAD:LEAD + len(x)] = x
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP]
    return np.fft.rfft(frames * WINDOW, axis=1)


def istft(spec, n_samples):
    frames = np.fft.irfft(spec, n=N_FFT, axis=1) * WINDOW
    n = len(frames)
    # Overlap-add without a Python loop over frames: frame f's quarter j lands on block f + j.
    quarters = frames.reshape(n, N_FFT // HOP, HOP)
    blocks = np.zeros((n + N_FFT // HOP - 1, HOP))
    for j in range(N_FFT // HOP):
        blocks[j:j + n] += quarters[:, j]
    return blocks.reshape(-1)[LEAD:LEAD + n_samples] / 2.0


# ----------------------------------------------------------------------------------------------
# Phone inventory.  Formant targets (F1, F2, F3 in Hz) are for an adult male vocal tract; each
# speaker scales them.  Vowels: Peterson & Barney (1952) averages.
VOWELS = {
    "iy": (270, 2290, 3010), "ih": (390, 1990, 2550), "eh": (530, 1840, 2480),
    "ae": (660, 1720, 2410), "ah": (520, 1190, 2390), "aa": (730, 1090, 2440),
    "ao": (570, 840, 2410), "uh": (440, 1020, 2240), "uw": (300, 870, 2240),
    "er": (490, 1350, 1690),
}
VOWEL_NAMES = tuple(VOWELS)
# Sonorant consonants: (F1, F2, F3), voicing amplitude, bandwidth multiplier for F1/F2 (nasal
# murmurs are damped), duration range in seconds.
SONORANTS = {
    "m": ((250, 1100, 2300), 0.8, 2.0, (0.05, 0.09)),
    "n": ((250, 1700, 2600), 0.8, 2.0, (0.04, 0.08)),
    "l": ((360, 1300, 2700), 0.8, 1.2, (0.04, 0.08)),
    "r": ((420, 1300, 1600), 0.8, 1.2, (0.04, 0.08)),
    "w": ((300, 700, 2200), 0.8, 1.0, (0.04, 0.07)),
    "y": ((260, 2200, 3000), 0.8, 1.0, (0.04, 0.07)),
}
# Fricatives: voicing, aspiration, frication amplitudes, constriction-noise centre and width
# (Hz), duration range.  Their formants come from the neighbouring vowels (coarticulation).
# Amplitudes set so that phone intensities relative to /aa/ are near Fletcher's (1953): /sh/
# -9..-13 dB, /s/ -16, /f/ -21, /th/ -26, nasals -12.
FRICATIVES = {
    "s": (0.0, 0.0, 1.0, 5500, 3000, (0.08, 0.14)),
    "sh": (0.0, 0.0, 2.0, 3000, 1800, (0.08, 0.13)),
    "f": (0.0, 0.0, 0.35, 5000, 7000, (0.07, 0.12)),
    "th": (0.0, 0.0, 0.15, 6000, 6000, (0.06, 0.10)),
    "h": (0.0, 0.3, 0.0, 3000, 3000, (0.05, 0.09)),
    "z": (0.2, 0.0, 0.6, 5500, 3000, (0.06, 0.11)),
    "v": (0.2, 0.0, 0.2, 5000, 7000, (0.05, 0.09)),
}
# Stops: voiced?, burst centre and width (Hz).
STOPS = {
    "p": (False, 1000, 2000), "t": (False, 4000, 3000), "k": (False, 2000, 1200),
    "b": (True, 1000, 2000), "d": (True, 4000, 3000), "g": (True, 2000, 1200),
}
CONSONANT_NAMES = tuple(SONORANTS) + tuple(FRICATIVES) + tuple(STOPS)
# Formants above F3 are not phone-dependent here: those of a uniform 17.5 cm tube, (2k-1) x 500 Hz,
# scaled per speaker.  The ones above the band are not modelled as resonators but corrected
# for (see higher_pole_correction), as in Klatt (1980); without them the spectrum above 4 kHz
# is 20 dB too weak.
NEUTRAL_F1 = 500.0
TOP_FORMANT_HZ = 7600.0  # resonators above this are replaced by the correction
# Bandwidths (Hz) of F1..F3 and of the higher formants, before the speaker's scaling.
BANDWIDTHS = np.array([80.0, 100.0, 140.0])
HIGH_BANDWIDTHS = np.array([250.0, 300.0, 400.0, 500.0, 600.0, 700.0, 800.0])

NAN = float("nan")


class Segment(NamedTuple):
    """A stretch of speech with constant targets; tracks are smoothed across boundaries."""
    dur: float
    f1: float = NAN  # NaN: interpolate from the neighbours
    f2: float = NAN
    f3: float = NAN
    av: float = 0.0  # glottal voicing amplitude
    ah: float = 0.0  # aspiration: noise through the vocal tract
    af: float = 0.0  # frication: noise through a constriction filter
    fc: float = 4000.0  # frication centre (Hz)
    fbw: float = 3000.0  # frication width (Hz)
    bw_mult: float = 1.0  # multiplies the F1/F2 bandwidths
    pitch: float = 0.0  # intonation target, semitones relative to the speaker's mean
    vowel: bool = False  # syllable nucleus: carries pitch accents and the final movement


# ----------------------------------------------------------------------------------------------
# Random draws: speakers, sessions.

def rng_for(seed, *keys):
    """An independent generator per (seed, stream, subset, speaker, ...) tuple."""
    return np.random.default_rng([seed, *keys])


def smooth_random_curve_db(rng, sigma_db, knots_hz=(60, 150, 300, 600, 1200, 2400, 4800, 8000)):
    """A random smooth spectral shape: Gaussian dB values at log-spaced knots, interpolated."""
    values = rng.normal(0.0, sigma_db, size=len(knots_hz))
    return np.interp(np.log(np.maximum(BIN_HZ, 30.0)), np.log(knots_hz), values)


# Spread of the speaker's individual spectral colouring (std of dB values at the knots).
VOICE_TIMBRE_DB = 5.0


@dataclass
class Voice:
    """What makes one speaker sound like themself."""
    female: bool
    f0_mean: float  # Hz
    f0_range: float  # scale of intonation movements (semitones)
    formant_scale: float  # vocal-tract length: shorter tract, higher formants
    vowel_offsets: np.ndarray  # (n_vowels, 3) multiplicative: the speaker's accent
    high_offsets: np.ndarray  # multiplicative offsets of F4 and up: the speaker's anatomy
    bandwidth_scale: float
    open_quotient: float  # glottal pulse shape: larger = softer, steeper spectral tilt
    tilt_db_oct: float  # extra spectral tilt of the glottal source
    breathiness: float  # aspiration noise mixed into voicing
    jitter: float  # period-to-period f0 perturbation (fraction)
    shimmer: float  # period-to-period amplitude perturbation (fraction)
    zero_hz: float  # hypopharyngeal antiresonance (a stable per-speaker notch)
    timbre_db: np.ndarray  # (257,) smooth individual colouring of the voice (nasal and
    #                        subglottal coupling, piriform fossae...): long-term spectra of
    #                        real voices differ by several dB beyond formants and tilt
    rate: float  # speaking rate factor


def draw_voice(seed, subset, speaker):
    rng = rng_for(seed, STREAM_VOICE, subset, speaker)
    female = bool(rng.random() < 0.5)
    # Low and high voices: male 85-150 Hz, female 165-260 Hz (log-uniform); the formant scale
    # follows sex on average but overlaps, so neither cue alone identifies the speaker.
    f0_lo, f0_hi = (165.0, 260.0) if female else (85.0, 150.0)
    vtl_lo, vtl_hi = (0.98, 1.2) if female else (0.8, 1.02)
    return Voice(
        female=female,
        f0_mean=float(np.exp(rng.uniform(np.log(f0_lo), np.log(f0_hi)))),
        f0_range=float(rng.uniform(1.0, 3.0)),
        formant_scale=float(rng.uniform(vtl_lo, vtl_hi)),
        vowel_offsets=np.exp(rng.normal(0.0, 0.06, size=(len(VOWELS), 3))),
        high_offsets=np.exp(rng.normal(0.0, 0.04, size=len(HIGH_BANDWIDTHS))),
        bandwidth_scale=float(rng.uniform(0.7, 1.5)),
        open_quotient=float(rng.uniform(0.4, 0.75)),
        tilt_db_oct=float(rng.uniform(-0.5, 3.5)),
        breathiness=float(rng.uniform(0.03, 0.25) if female else rng.uniform(0.01, 0.12)),
        jitter=float(rng.uniform(0.003, 0.015)),
        shimmer=float(rng.uniform(0.02, 0.08)),
        zero_hz=float(rng.uniform(3800.0, 5200.0)),
        timbre_db=smooth_random_curve_db(rng, VOICE_TIMBRE_DB),
        rate=float(rng.uniform(0.8, 1.25)),
    )


# How different one recording session is from another.  These set the task's difficulty: with
# them, comparing utterances' average log spectra (a naive system) gives about 30% EER on the
# cross-session trials, while the speaker's pitch, formants and voice quality stay intact.
# Version 2 halved the session spread of version 1 (whose naive proxy EER was 36% at seed 777):
# with the full spread the demo network learned too little in its CPU budget.
SESSION_SPREAD = {
    "eq_sigma_db": 1.0,  # smooth random EQ: std of the dB values at log-spaced knots
    "mic_tilt_db_oct": 0.5,  # microphone tilt, uniform within +-
    "max_peaks": 1,  # resonances or notches from the room/mic, 0..max
    "peak_db": (2.0, 4.0),  # their gain (either sign)
    "max_highpass_hz": 200.0,  # high-pass cut-off, log-uniform from 50 Hz
    "telephone_fraction": 0.06,  # sessions band-limited to 3.4-4 kHz (the rest 5-9 kHz)
    "noise_slope_db_oct": (-7.0, -3.0),  # background noise colour: pink (-3) to brown (-6)
    "noise_sigma_db": 2.0,  # bumps in the noise spectrum
    "snr_db": (10.0, 30.0),  # range; drawn leaning towards the clean end (median 25 dB)
    "hum_fraction": 0.15,  # sessions with 50/60 Hz mains hum
    "room_fraction": 0.1,  # sessions with reverberation (RT60 0.15-0.6 s)
    "level_dbfs": (-29.0, -23.0),  # recording level (RMS)
    "pitch_shift_st": 0.2,  # the speaker's state that day: std of a pitch shift (semitones),
    "effort_db_oct": 0.35,  # of a source-tilt change (vocal effort, dB/octave)
    "rate_sigma": 0.06,  # and of the log speaking rate
}


@dataclass
class Session:
    """One recording: a channel, a noise, a level, and the speaker's state that day."""
    channel_db: np.ndarray  # (257,) magnitude response of microphone + line, dB
    noise_db: np.ndarray  # (257,) background-noise colour before the channel, dB
    snr_db: float
    level_dbfs: float  # RMS level of the recording
    hum_hz: float  # mains hum fundamental, 0 for none
    hum_db: float  # hum level relative to the background noise
    rir: np.ndarray  # room impulse response (a single 1.0 when dry)
    pitch_shift: float  # semitones
    effort_tilt: float  # dB/octave, louder voice = flatter source spectrum
    rate: float


def draw_session(seed, subset, speaker, session):
    rng = rng_for(seed, STREAM_SESSION, subset, speaker, session)
    spread = SESSION_SPREAD
    log_hz = np.log(np.maximum(BIN_HZ, 30.0))
    octaves = np.log2(np.maximum(BIN_HZ, 30.0) / 1000.0)
    # Channel: smooth EQ and mic tilt, resonances/notches, a high-pass and a low-pass
    # (some sessions telephone-band), all in dB.
    channel = (smooth_random_curve_db(rng, spread["eq_sigma_db"])
               + rng.uniform(-1.0, 1.0) * spread["mic_tilt_db_oct"] * octaves)
    for _ in range(rng.integers(0, spread["max_peaks"] + 1)):
        centre = rng.uniform(np.log(300.0), np.log(5000.0))
        gain = rng.choice([-1.0, 1.0]) * rng.uniform(*spread["peak_db"])
        width_oct = 1.0 / rng.uniform(2.0, 8.0)
        channel += gain * np.exp(-0.5 * ((log_hz - centre) / np.log(2) / width_oct) ** 2)
    highpass = np.exp(rng.uniform(np.log(50.0), np.log(spread["max_highpass_hz"])))
    channel += -10 * np.log10(1 + (highpass / np.maximum(BIN_HZ, 1.0)) ** 4)
    if rng.random() < spread["telephone_fraction"]:
        lowpass = rng.uniform(3400.0, 4000.0)
    else:
        lowpass = rng.uniform(5000.0, 9000.0)
    channel += -10 * np.log10(1 + (BIN_HZ / lowpass) ** 8)
    channel = np.maximum(channel, -60.0)

    # Background noise: a slope around pink plus some bumps; sometimes mains hum.  SNRs lean
    # towards the clean end, as in interviews.
    # (The slope is flattened below 100 Hz: rumble does not rise without limit.)
    noise = (rng.uniform(*spread["noise_slope_db_oct"]) * np.maximum(octaves, np.log2(0.1))
             + smooth_random_curve_db(rng, spread["noise_sigma_db"]))
    snr_lo, snr_hi = spread["snr_db"]
    snr_db = snr_lo + (snr_hi - snr_lo) * rng.random() ** (1 / 3)
    hum_hz, hum_db = 0.0, 0.0
    if rng.random() < spread["hum_fraction"]:
        hum_hz, hum_db = float(rng.choice([50.0, 60.0])), float(rng.uniform(0.0, 10.0))

    # A room for some sessions: exponentially decaying noise after a direct path.
    rir = np.ones(1)
    if rng.random() < spread["room_fraction"]:
        rt60 = rng.uniform(0.15, 0.6)
        length = int(min(rt60, 0.5) * SAMPLE_RATE)
        tail = rng.standard_normal(length) * np.exp(-6.9 * np.arange(length) / (rt60 * SAMPLE_RATE))
        drr_db = rng.uniform(0.0, 10.0)
        tail *= np.sqrt(10 ** (-drr_db / 10) / np.sum(tail ** 2))
        rir = tail
        rir[0] = 1.0

    return Session(
        channel_db=channel, noise_db=noise, snr_db=float(snr_db),
        level_dbfs=float(rng.uniform(*spread["level_dbfs"])),
        hum_hz=hum_hz, hum_db=hum_db, rir=rir,
        pitch_shift=float(rng.normal(0.0, spread["pitch_shift_st"])),
        effort_tilt=float(rng.normal(0.0, spread["effort_db_oct"])),
        rate=float(np.exp(rng.normal(0.0, spread["rate_sigma"]))),
    )


# ----------------------------------------------------------------------------------------------
# Utterance plan: a phone sequence as segments with targets.

def vowel_segment(rng, voice, rate, stressed):
    v = int(rng.integers(len(VOWELS)))
    formants = np.array(VOWELS[VOWEL_NAMES[v]]) * voice.formant_scale * voice.vowel_offsets[v]
    dur = rng.uniform(0.06, 0.14) * (1.4 if stressed else 1.0) / rate
    return Segment(dur, *formants, av=1.25 if stressed else 1.0, vowel=True)


def consonant_segments(rng, voice, rate, name):
    scale = voice.formant_scale
    if name in SONORANTS:
        formants, av, bw_mult, (lo, hi) = SONORANTS[name]
        return [Segment(rng.uniform(lo, hi) / rate, *(np.array(formants) * scale), av=av,
                        bw_mult=bw_mult)]
    if name in FRICATIVES:
        av, ah, af, fc, fbw, (lo, hi) = FRICATIVES[name]
        return [Segment(rng.uniform(lo, hi) / rate, av=av, ah=ah, af=af, fc=fc * scale,
                        fbw=fbw * scale)]
    voiced, fc, fbw = STOPS[name]
    # Closure (a weak low voice bar if voiced), release burst, then aspiration if voiceless.
    segs = [Segment(rng.uniform(0.03, 0.06) / rate, f1=200.0 * scale, av=0.08 if voiced else 0.0),
            Segment(rng.uniform(0.008, 0.02), af=0.5 if voiced else 0.8, fc=fc * scale,
                    fbw=fbw * scale)]
    if not voiced:
        segs.append(Segment(rng.uniform(0.02, 0.05) / rate, ah=0.4))
    return segs


def syllable_segments(rng, voice, rate, stressed):
    onset = int(rng.choice(3, p=[0.2, 0.65, 0.15]))
    coda = int(rng.choice(3, p=[0.5, 0.45, 0.05]))
    segs = []
    def consonant():
        return consonant_segments(rng, voice, rate,
                                  CONSONANT_NAMES[rng.integers(len(CONSONANT_NAMES))])

    segs = []
    for _ in range(onset):
        segs += consonant()
    segs.append(vowel_segment(rng, voice, rate, stressed))
    for _ in range(coda):
        segs += consonant()
    return segs


def phrase_segments(rng, voice, rate, range_st):
    """Words with one stressed syllable each, under a declining pitch line with accents."""
    words = []
    for _ in range(rng.integers(3, 9)):
        n_syll = int(rng.integers(1, 4))
        stress = int(rng.integers(n_syll))
        word = []
        for s in range(n_syll):
            accent = (s == stress) * rng.uniform(0.5, 1.5) * range_st
            word += [seg._replace(pitch=accent) if seg.vowel else seg
                     for seg in syllable_segments(rng, voice, rate, s == stress)]
        if rng.random() < 0.1:
            word.append(Segment(rng.uniform(0.03, 0.1) / rate))
        words.append(word)
    segs = [seg for word in words for seg in word]
    # Declination from +range to -range over the phrase, and a final fall (or a question rise)
    # on the last vowel.
    durs = np.array([seg.dur for seg in segs])
    middles = np.cumsum(durs) - durs / 2
    declination = range_st * (1.0 - 2.0 * middles / durs.sum())
    segs = [seg._replace(pitch=seg.pitch + d) for seg, d in zip(segs, declination)]
    last_vowel = max(i for i, seg in enumerate(segs) if seg.vowel)
    final = rng.uniform(2.0, 4.0) if rng.random() < 0.2 else -rng.uniform(1.5, 3.5)
    segs[last_vowel] = segs[last_vowel]._replace(pitch=segs[last_vowel].pitch + final)
    return segs


def plan_utterance(rng, voice, session, duration):
    """Phrases separated by pauses until the planned speech outlasts the utterance."""
    rate = voice.rate * session.rate * float(np.exp(rng.normal(0.0, 0.06)))
    segs = [Segment(rng.uniform(0.02, 0.2))]
    elapsed = segs[0].dur
    while elapsed < duration + 0.1:
        phrase = phrase_segments(rng, voice, rate, 0.5 * voice.f0_range)
        phrase.append(Segment(rng.uniform(0.1, 0.35)))
        segs += phrase
        elapsed += sum(seg.dur for seg in phrase)
    return segs


# ----------------------------------------------------------------------------------------------
# Synthesis.

def smooth(track, width):
    """Moving Hann-weighted average along axis 0 (edges held), for coarticulation."""
    kernel = np.hanning(width + 2)[1:-1]
    kernel /= kernel.sum()
    pad = width // 2
    padded = np.concatenate([np.repeat(track[:1], pad, 0), track, np.repeat(track[-1:], pad, 0)])
    if track.ndim == 1:
        return np.convolve(padded, kernel, mode="valid")[:len(track)]
    return np.stack([np.convolve(padded[:, k], kernel, mode="valid")[:len(track)]
                     for k in range(track.shape[1])], axis=1)


def frame_tracks(segments, n_samples):
    """Per-STFT-frame targets: the segment under each frame centre, then smoothed."""
    table = np.array(segments, dtype=float)  # (n_segments, len(Segment._fields))
    col = {name: i for i, name in enumerate(Segment._fields)}
    ends = np.cumsum(table[:, col["dur"]]) * SAMPLE_RATE
    centres = frame_centres(n_samples)
    per_frame = table[np.minimum(np.searchsorted(ends, centres, side="right"), len(table) - 1)]
    # Consonants without formant targets borrow them from their neighbours.
    frames = np.arange(len(per_frame))
    formants = per_frame[:, [col["f1"], col["f2"], col["f3"]]]
    for k in range(3):
        known = ~np.isnan(formants[:, k])
        formants[:, k] = np.interp(frames, frames[known], formants[known, k])
    tracks = {
        # ~40 ms transitions for the articulators, ~24 ms for amplitudes, ~70 ms for pitch.
        "formants": np.exp(smooth(np.log(formants), 5)),
        "bw_mult": smooth(per_frame[:, col["bw_mult"]], 5),
        "pitch": smooth(per_frame[:, col["pitch"]], 9),
    }
    for name in ("av", "ah", "af", "fc", "fbw"):
        tracks[name] = smooth(per_frame[:, col[name]], 3)
    return centres, tracks


def glottal_source(rng, voice, f0):
    """Rosenberg glottal pulses at the sample-rate f0 track, with jitter and shimmer.

    Returns the flow derivative (the excitation, including lip radiation) normalised to unit
    RMS, and the flow itself (which gates the aspiration noise).
    """
    # Jitter: each glottal period gets its own small f0 perturbation.
    periods = np.cumsum(f0 / SAMPLE_RATE).astype(np.int64)
    f0 = f0 * (1.0 + voice.jitter * rng.standard_normal(periods[-1] + 2)[periods])
    phase = np.cumsum(f0 / SAMPLE_RATE)
    periods = phase.astype(np.int64)
    p = phase - periods
    # Opening takes longer than closing; the abrupt closure is what excites the formants.
    opening, closing = 0.72 * voice.open_quotient, 0.28 * voice.open_quotient
    flow = np.where(p < opening, 0.5 * (1.0 - np.cos(np.pi * p / opening)),
                    np.where(p < opening + closing,
                             np.cos(0.5 * np.pi * (p - opening) / closing), 0.0))
    excitation = np.diff(flow, prepend=0.0)
    excitation *= 1.0 + voice.shimmer * rng.standard_normal(periods[-1] + 2)[periods]
    excitation /= np.sqrt(np.mean(excitation ** 2)) + 1e-12
    return excitation, flow


def resonator_cascade(formants, bandwidths):
    """Cascade of 2nd-order resonators (Klatt 1980), unity gain at DC.

    formants, bandwidths: (..., n_formants) in Hz.  Returns (..., 257) complex: the IIR transfer
    function on the STFT bins.  Evaluating each frame's filter there and multiplying is the
    vectorised equivalent of running the time-varying recursion sample by sample.
    """
    t = 1.0 / SAMPLE_RATE
    c = -np.exp(-2 * np.pi * bandwidths * t)
    b = 2 * np.exp(-np.pi * bandwidths * t) * np.cos(2 * np.pi * formants * t)
    denominator = np.ones(formants.shape[:-1] + Z1.shape, dtype=complex)
    for k in range(formants.shape[-1]):  # one complex division in all, not one per formant
        denominator *= 1.0 - b[..., k, None] * Z1 - c[..., k, None] * Z2
    return np.prod(1.0 - b - c, axis=-1)[..., None] / denominator


def higher_formants(voice):
    """The speaker's F4, F5, ... below TOP_FORMANT_HZ, and their bandwidths."""
    k = np.arange(4, 4 + len(HIGH_BANDWIDTHS))
    freqs = (2 * k - 1) * NEUTRAL_F1 * voice.formant_scale * voice.high_offsets
    keep = freqs < TOP_FORMANT_HZ
    return freqs[keep], HIGH_BANDWIDTHS[keep] * voice.bandwidth_scale


def higher_pole_correction(voice, max_db=15.0):
    """Magnitude of the tube's poles above the modelled ones: prod 1 / (1 - (f / F_k)^2).

    That product is exact for a lossless uniform tube (1 / cos); capped because near a pole
    the lossless formula diverges.
    """
    k = np.arange(4, 60)
    freqs = (2 * k - 1) * NEUTRAL_F1 * voice.formant_scale
    freqs = freqs[freqs >= TOP_FORMANT_HZ]
    ratio = (BIN_HZ[:, None] / freqs[None, :]) ** 2
    gain_db = -20 * np.sum(np.log10(np.abs(1.0 - ratio)), axis=1)
    return 10 ** (np.minimum(gain_db, max_db) / 20.0)


def antiresonance(freq_hz, bw_hz):
    """A 2nd-order zero pair (the inverse of a resonator), unity gain at DC."""
    t = 1.0 / SAMPLE_RATE
    c = -np.exp(-2 * np.pi * bw_hz * t)
    b = 2 * np.exp(-np.pi * bw_hz * t) * np.cos(2 * np.pi * freq_hz * t)
    return (1.0 - b * Z1 - c * Z2) / (1.0 - b - c)


def synthesize_speech(rng, voice, session, n_samples):
    """Clean speech at the mouth: source through the time-varying vocal tract."""
    segments = plan_utterance(rng, voice, session, n_samples / SAMPLE_RATE)
    centres, tracks = frame_tracks(segments, n_samples)
    samples = np.arange(n_samples)

    def at_samples(track):
        return np.interp(samples, centres, track)

    f0_frames = voice.f0_mean * 2.0 ** ((tracks["pitch"] + session.pitch_shift) / 12.0)
    # Slow random wander of pitch (~3 Hz), a little per utterance.
    wander = smooth(rng.normal(0.0, 0.6, size=len(centres)), 41) * 4.0
    f0_frames = np.clip(f0_frames * 2.0 ** (wander / 12.0), 55.0, 450.0)
    excitation, flow = glottal_source(rng, voice, at_samples(f0_frames))

    av, ah, af = at_samples(tracks["av"]), at_samples(tracks["ah"]), at_samples(tracks["af"])
    aspiration = rng.standard_normal(n_samples) * (0.3 + flow)
    tract_input = av * excitation + (voice.breathiness * av + ah) * aspiration
    frication_input = af * rng.standard_normal(n_samples)

    bandwidths = np.tile(BANDWIDTHS * voice.bandwidth_scale, (len(centres), 1))
    bandwidths[:, :2] *= tracks["bw_mult"][:, None]
    # What does not change within the utterance is computed once: the higher formants, the
    # source tilt (speaker's voice quality + the session's vocal effort), the speaker's timbre
    # and antiresonance shape the voiced spectrum; frication is shaped by the constriction only.
    octaves = np.log2(np.maximum(BIN_HZ, 100.0) / 1000.0)
    tilt_db = (voice.tilt_db_oct + session.effort_tilt) * octaves
    static = 10 ** ((tilt_db + voice.timbre_db) / 20.0)
    static = (static * antiresonance(voice.zero_hz, 600.0) * higher_pole_correction(voice)
              * resonator_cascade(*higher_formants(voice)))
    tract = resonator_cascade(tracks["formants"], bandwidths) * static
    constriction = 0.7 * np.exp(-0.5 * ((BIN_HZ - tracks["fc"][:, None])
                                         / (0.5 * tracks["fbw"][:, None])) ** 2)
    spec = stft(tract_input) * tract + stft(frication_input) * constriction
    return istft(spec, n_samples)


def record(rng, session, speech):
    """What the session's microphone, room and line make of the speech, at its level."""
    n = len(speech)
    n_fft = 1 << int(np.ceil(np.log2(n + len(session.rir) + N_FFT)))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / SAMPLE_RATE)
    channel = 10 ** (np.interp(freqs, BIN_HZ, session.channel_db) / 20.0)
    # Linear convolution with the room, then the zero-phase channel response (its impulse
    # response is shorter than the zero padding, so nothing wraps around into the signal).
    wet = np.fft.irfft(np.fft.rfft(speech, n_fft) * np.fft.rfft(session.rir, n_fft) * channel,
                       n_fft)[:n]
    # Background noise is coloured, then goes through the same microphone and line.
    noise_shape = 10 ** ((np.interp(freqs, BIN_HZ, session.noise_db)) / 20.0) * channel
    noise = np.fft.irfft(np.fft.rfft(rng.standard_normal(n_fft)) * noise_shape, n_fft)[:n]
    if session.hum_hz:
        t = np.arange(n) / SAMPLE_RATE
        hum = sum(np.sin(2 * np.pi * k * session.hum_hz * t + k) / k for k in (1, 2, 3))
        hum_gain = np.sqrt(np.mean(noise ** 2) / np.mean(hum ** 2) * 10 ** (session.hum_db / 10))
        noise += hum_gain * hum
    snr_db = session.snr_db + rng.normal(0.0, 1.5)
    speech_power = np.mean(wet ** 2)
    noise *= np.sqrt(speech_power / (np.mean(noise ** 2) * 10 ** (snr_db / 10)))
    mix = wet + noise
    level_dbfs = session.level_dbfs + rng.normal(0.0, 1.0)
    mix *= 10 ** (level_dbfs / 20.0) / np.sqrt(np.mean(mix ** 2))
    # Never clip, whatever the draws: turn the whole utterance down if a peak would exceed 0.9.
    peak = np.max(np.abs(mix))
    if peak > 0.9:
        mix *= 0.9 / peak
    # 10 ms fades, so no utterance starts or ends with a click.
    fade = np.linspace(0.0, 1.0, SAMPLE_RATE // 100)
    mix[:len(fade)] *= fade
    mix[-len(fade):] *= fade[::-1]
    return mix


def synthesize_utterance(config, subset, speaker, session_index, utt_index, voice, session):
    """One utterance as int16 samples; deterministic in its coordinates."""
    rng = rng_for(config["seed"], STREAM_UTTERANCE, subset, speaker, session_index, utt_index)
    duration = rng.uniform(config["min_dur"], config["max_dur"])
    # Rounded to whole samples without leaving [min_dur, max_dur].
    n_samples = int(np.clip(round(duration * SAMPLE_RATE),
                            np.ceil(config["min_dur"] * SAMPLE_RATE),
                            np.floor(config["max_dur"] * SAMPLE_RATE)))
    speech = synthesize_speech(rng, voice, session, n_samples)
    audio = record(rng, session, speech)
    if not np.all(np.isfinite(audio)):
        raise RuntimeError(f"synthesis produced non-finite samples for {subset} speaker "
                           f"{speaker} session {session_index} utterance {utt_index}")
    return np.round(audio * 32767.0).astype(np.int16)
