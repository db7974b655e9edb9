#!/usr/bin/env python3
"""Synthesise a small speaker-verification corpus laid out exactly like VoxCeleb1.

Why: a user with no data should still get a real speaker-verification result from the recipe in
minutes on a 2-core CPU.  The corpus is made by a source-filter speech model, so speaker identity
lives where it lives in real speech (pitch, vocal-tract length, voice quality, accent), while
every recording session adds its own channel, noise and level -- the variability a verification
system has to see through.

Layout written (the VoxCeleb1 distribution's, so local/ preparation code serves both):

  <out>/dev/wav/id10001/<session>/00001.wav    16 kHz, 16-bit PCM, mono
  <out>/test/wav/id10270/<session>/00001.wav   test speakers are disjoint from dev speakers
  <out>/veri_test2.txt     trials: "1 id10270/x6uYqmx31kE/00001.wav id10270/8cfyJEV7hP8/00004.wav"
  <out>/vox1_meta.csv      speaker table, tab-separated, as in VoxCeleb1
  <out>/corpus_info.txt    the generation parameters; a rerun with the same ones is skipped

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

  usage: local/make_demo_corpus.py [options] <out-dir>
  e.g.:  local/make_demo_corpus.py --seed 777 corpora/demo
"""

import argparse
import multiprocessing
import os
import shutil
import string
import sys
import time
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000
# Bump whenever the synthesis changes, so that a corpus made by older code is not reused.
GENERATOR_VERSION = 2

# VoxCeleb1's test speakers are id10270..id10309 and its dev speakers are numbered around them.
DEV_ID_START = 10001
TEST_ID_START = 10270
SUBSETS = ("dev", "test")
# YouTube video ids, which VoxCeleb uses as session ids: 11 characters from this alphabet.
YOUTUBE_ALPHABET = string.ascii_letters + string.digits + "_-"

# Keys that separate the random streams (the second element of every generator's seed).
STREAM_VOICE, STREAM_SESSION, STREAM_UTTERANCE, STREAM_SESSION_ID, STREAM_TRIALS = range(1, 6)

# The parameters that determine the corpus (and are recorded in corpus_info.txt).  --nj is not
# one of them: it changes the speed, not the bytes.
CORPUS_PARAMS = ("generator_version", "seed", "num_dev_speakers", "num_test_speakers",
                 "sessions_per_speaker", "utts_per_session", "num_trials", "min_dur", "max_dur")

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


# ----------------------------------------------------------------------------------------------
# Corpus layout, trials, writing.

def speaker_ids(num_dev, num_test):
    """VoxCeleb1-style ids: test speakers from id10270 up, dev speakers from id10001 around them."""
    if max(DEV_ID_START + num_dev + num_test, TEST_ID_START + num_test) > 100000:
        raise ValueError("too many speakers for 5-digit VoxCeleb ids")
    test = [f"id{TEST_ID_START + j:05d}" for j in range(num_test)]
    taken = set(test)
    dev, number = [], DEV_ID_START
    while len(dev) < num_dev:
        if f"id{number:05d}" not in taken:
            dev.append(f"id{number:05d}")
        number += 1
    return dev, test


def session_ids(seed, subset, speaker, count):
    """Distinct 11-character YouTube-like ids for one speaker's sessions."""
    rng = rng_for(seed, STREAM_SESSION_ID, subset, speaker)
    ids = []
    while len(ids) < count:
        new = "".join(YOUTUBE_ALPHABET[i] for i in rng.integers(len(YOUTUBE_ALPHABET), size=11))
        if new not in ids:
            ids.append(new)
    return ids


@dataclass
class SessionJob:
    subset: int  # index into SUBSETS
    speaker: int  # index within the subset
    speaker_id: str
    session: int
    session_id: str
    num_utts: int

    def utt_paths(self):
        """Paths relative to <out>/<subset>/wav, as VoxCeleb1 and its trial lists write them."""
        return [f"{self.speaker_id}/{self.session_id}/{u + 1:05d}.wav"
                for u in range(self.num_utts)]


def corpus_jobs(config):
    dev_ids, test_ids = speaker_ids(config["num_dev_speakers"], config["num_test_speakers"])
    jobs = []
    for subset, ids in enumerate((dev_ids, test_ids)):
        for speaker, speaker_id in enumerate(ids):
            sessions = session_ids(config["seed"], subset, speaker, config["sessions_per_speaker"])
            for session, session_id in enumerate(sessions):
                jobs.append(SessionJob(subset, speaker, speaker_id, session, session_id,
                                       config["utts_per_session"]))
    return jobs


def generate_session(config, out_dir, job):
    """Write one session's utterances; returns (utterances, samples, peak, min RMS, max RMS)."""
    voice = draw_voice(config["seed"], job.subset, job.speaker)
    session = draw_session(config["seed"], job.subset, job.speaker, job.session)
    wav_dir = os.path.join(out_dir, SUBSETS[job.subset], "wav")
    os.makedirs(os.path.join(wav_dir, job.speaker_id, job.session_id), exist_ok=True)
    samples, peak, rms = 0, 0.0, []
    for utt, rel in enumerate(job.utt_paths()):
        audio = synthesize_utterance(config, job.subset, job.speaker, job.session, utt, voice,
                                     session)
        sf.write(os.path.join(wav_dir, rel), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        samples += len(audio)
        peak = max(peak, float(np.max(np.abs(audio))) / 32768.0)
        rms.append(float(np.sqrt(np.mean((audio / 32768.0) ** 2))))
    return job.num_utts, samples, peak, min(rms), max(rms)


def make_trials(config, jobs):
    """VoxCeleb1-format trials among test utterances: about half targets, preferably across
    sessions (the hard case), the rest different-speaker pairs; no self-pairs, no duplicates."""
    utts = [(job.speaker, job.session, path) for job in jobs if job.subset == 1
            for path in job.utt_paths()]
    rng = rng_for(config["seed"], STREAM_TRIALS)
    n = len(utts)
    num_target = config["num_trials"] // 2
    num_nontarget = config["num_trials"] - num_target
    i, j = np.triu_indices(n, k=1)
    spk = np.array([u[0] for u in utts])
    sess = np.array([u[1] for u in utts])
    same_spk = spk[i] == spk[j]
    cross = np.flatnonzero(same_spk & (sess[i] != sess[j]))
    within = np.flatnonzero(same_spk & (sess[i] == sess[j]))
    nontarget = np.flatnonzero(~same_spk)
    if num_target > len(cross) + len(within) or num_nontarget > len(nontarget):
        raise ValueError(
            f"--num-trials {config['num_trials']} is more than the test set can give "
            f"({len(cross) + len(within)} target and {len(nontarget)} nontarget pairs); "
            "lower it or add test speakers, sessions or utterances.")
    # Cross-session targets first; same-session pairs only if there are not enough of them.
    targets = rng.permutation(cross)[:num_target]
    if len(targets) < num_target:
        targets = np.concatenate([targets, rng.permutation(within)[:num_target - len(targets)]])
    pairs = np.concatenate([targets, rng.choice(nontarget, num_nontarget, replace=False)])
    labels = np.concatenate([np.ones(len(targets), int), np.zeros(num_nontarget, int)])
    swap = rng.random(len(pairs)) < 0.5  # which side is the enrolment is arbitrary
    order = rng.permutation(len(pairs))
    lines = []
    for k in order:
        a, b = utts[i[pairs[k]]][2], utts[j[pairs[k]]][2]
        if swap[k]:
            a, b = b, a
        lines.append(f"{labels[k]} {a} {b}\n")
    return lines


def write_meta(path, config):
    """vox1_meta.csv as VoxCeleb1 ships it (tab-separated), with made-up names."""
    dev_ids, test_ids = speaker_ids(config["num_dev_speakers"], config["num_test_speakers"])
    rows = ["VoxCeleb1 ID\tVGGFace1 ID\tGender\tNationality\tSet\n"]
    for subset, ids in enumerate((dev_ids, test_ids)):
        for speaker, speaker_id in enumerate(ids):
            gender = "f" if draw_voice(config["seed"], subset, speaker).female else "m"
            rows.append(f"{speaker_id}\tDemo_Speaker_{speaker_id[2:]}\t{gender}\tSynthetic\t"
                        f"{SUBSETS[subset]}\n")
    with open(path, "w") as f:
        f.writelines(rows)


def info_text(config):
    lines = ["# Demo corpus made by local/make_demo_corpus.py with these parameters;\n",
             "# a rerun with the same values leaves it as it is.\n"]
    return "".join(lines + [f"{key}={config[key]}\n" for key in CORPUS_PARAMS])


def read_info(path):
    values = {}
    with open(path) as f:
        for line in f:
            if line.strip() and not line.startswith("#") and "=" in line:
                key, value = line.rstrip("\n").split("=", 1)
                values[key] = value
    return values


def corpus_state(out_dir, config):
    """'absent', 'same' (finished with these parameters) or a sentence on what is there."""
    if not os.path.exists(out_dir):
        return "absent"
    if not os.path.isdir(out_dir):
        return f"{out_dir} exists and is not a directory"
    if not os.listdir(out_dir):
        return "absent"
    info = os.path.join(out_dir, "corpus_info.txt")
    if not os.path.isfile(info):
        return f"{out_dir} is not empty and has no corpus_info.txt"
    have = read_info(info)
    want = {key: str(config[key]) for key in CORPUS_PARAMS}
    if have == want and os.path.isfile(os.path.join(out_dir, "veri_test2.txt")):
        return "same"
    differ = [f"{key} {have.get(key, '(missing)')} there, {want[key]} asked"
              for key in CORPUS_PARAMS if have.get(key) != want[key]]
    return (f"{out_dir} holds a corpus made with other parameters "
            f"({'; '.join(differ) or 'incomplete: no veri_test2.txt'})")


def generate_corpus(out_dir, config, nj=2, overwrite=False, log=print):
    """Make the corpus in <out>.tmp and rename it into place.  Returns a summary dict."""
    out_dir = os.path.normpath(out_dir)
    state = corpus_state(out_dir, config)
    if state == "same":
        log(f"{out_dir} already holds this demo corpus (same parameters in corpus_info.txt); "
            "leaving it as it is.")
        return None
    if state != "absent" and not overwrite:
        raise FileExistsError(f"{state}; pass --overwrite to replace it, or choose another "
                              "output directory.")
    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise FileExistsError(f"{out_dir} exists and is not a directory; remove it first.")

    start = time.time()
    jobs = corpus_jobs(config)
    trial_lines = make_trials(config, jobs)  # first: refuse impossible sizes before any work
    tmp = out_dir + ".tmp"
    if os.path.exists(tmp):
        shutil.rmtree(tmp)  # left over from an interrupted run
    os.makedirs(tmp)

    args = [(config, tmp, job) for job in jobs]
    if nj > 1:
        with multiprocessing.get_context("fork").Pool(nj) as pool:
            results = pool.starmap(generate_session, args, chunksize=1)
    else:
        results = [generate_session(*a) for a in args]

    with open(os.path.join(tmp, "veri_test2.txt"), "w") as f:
        f.writelines(trial_lines)
    write_meta(os.path.join(tmp, "vox1_meta.csv"), config)
    with open(os.path.join(tmp, "corpus_info.txt"), "w") as f:
        f.write(info_text(config))

    if os.path.exists(out_dir):  # empty, or being overwritten
        old = out_dir + ".old"
        if os.path.exists(old):
            shutil.rmtree(old)
        os.rename(out_dir, old)
        os.rename(tmp, out_dir)
        shutil.rmtree(old)
    else:
        os.rename(tmp, out_dir)

    samples = sum(r[1] for r in results)
    summary = {
        "speakers": config["num_dev_speakers"] + config["num_test_speakers"],
        "utterances": sum(r[0] for r in results),
        "hours": samples / SAMPLE_RATE / 3600.0,
        "trials": len(trial_lines),
        "targets": sum(line.startswith("1") for line in trial_lines),
        "peak": max(r[2] for r in results),
        "rms_dbfs": (20 * np.log10(min(r[3] for r in results)),
                     20 * np.log10(max(r[4] for r in results))),
        "seconds": time.time() - start,
    }
    log(f"{os.path.basename(sys.argv[0]) or 'make_demo_corpus.py'}: wrote {out_dir}: "
        f"{summary['speakers']} speakers ({config['num_dev_speakers']} dev, "
        f"{config['num_test_speakers']} test), {summary['utterances']} utterances, "
        f"{summary['hours']:.2f} audio hours, {summary['trials']} trials "
        f"({summary['targets']} target), peak {summary['peak']:.2f}, RMS "
        f"{summary['rms_dbfs'][0]:.0f}..{summary['rms_dbfs'][1]:.0f} dBFS, "
        f"{summary['seconds']:.1f} s")
    return summary


# ----------------------------------------------------------------------------------------------
# A naive difficulty check (not needed to make the corpus).

def mean_log_spectrum(spectrogram, path):
    """Per-utterance mean of the recipe's log spectrogram (161 bins, conf/spectrogram.conf's
    defaults)."""
    audio, _ = sf.read(path, dtype="float32")
    return spectrogram(audio).mean(axis=0)


def proxy_eer(out_dir):
    """Cosine scoring of corpus-mean-normalised average log spectra.

    Returns (EER on veri_test2.txt, EER with same-session targets instead).  A naive system
    like this should be confused by the session channels; the speaker cues it misses are what
    the network has to learn.
    """
    # The recipe's own code, imported here: making the corpus needs neither torch nor them.
    from pytorch_modules.features import Spectrogram, SpectrogramOptions
    from pytorch_modules.metrics import compute_eer

    spectrogram = Spectrogram(SpectrogramOptions())
    test_wav = os.path.join(out_dir, "test", "wav")
    with open(os.path.join(out_dir, "veri_test2.txt")) as f:
        trials = [line.split() for line in f]
    utts = sorted({p for t in trials for p in t[1:]}
                  | {os.path.relpath(os.path.join(d, n), test_wav)
                     for d, _, names in os.walk(test_wav) for n in names})
    vectors = np.array([mean_log_spectrum(spectrogram, os.path.join(test_wav, u))
                        for u in utts])
    vectors -= vectors.mean(axis=0)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = {u: k for k, u in enumerate(utts)}

    def score(a, b):
        return float(vectors[index[a]] @ vectors[index[b]])

    scores = [score(a, b) for _, a, b in trials]
    labels = [int(t[0]) for t in trials]
    eer, _ = compute_eer(scores, labels)
    session = {u: u.rsplit("/", 1)[0] for u in utts}
    within = [(a, b) for x, a in enumerate(utts) for b in utts[x + 1:] if session[a] == session[b]]
    nontarget = [s for s, lab in zip(scores, labels) if lab == 0]
    within_eer, _ = compute_eer([score(a, b) for a, b in within] + nontarget,
                                [1] * len(within) + [0] * len(nontarget))
    return eer, within_eer


# ----------------------------------------------------------------------------------------------

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Synthesise a demo speaker-verification corpus laid out like VoxCeleb1 "
                    "(dev/wav, test/wav, veri_test2.txt).",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("out_dir", help="output directory (made atomically via <out_dir>.tmp)")
    parser.add_argument("--num-dev-speakers", type=int, default=40,
                        help="training speakers (dev/wav, ids from id10001)")
    parser.add_argument("--num-test-speakers", type=int, default=12,
                        help="evaluation speakers (test/wav, ids from id10270)")
    parser.add_argument("--sessions-per-speaker", type=int, default=4,
                        help="recording sessions (channel, noise, level) per speaker")
    parser.add_argument("--utts-per-session", type=int, default=5,
                        help="utterances per session")
    parser.add_argument("--num-trials", type=int, default=3000,
                        help="trials in veri_test2.txt, half of them targets")
    parser.add_argument("--min-dur", type=float, default=2.0, help="shortest utterance (s)")
    parser.add_argument("--max-dur", type=float, default=8.0, help="longest utterance (s)")
    parser.add_argument("--seed", type=int, default=777,
                        help="same seed and sizes give byte-identical files")
    parser.add_argument("--nj", type=int, default=2, help="parallel processes (output does "
                        "not depend on it)")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an output directory made with other parameters "
                             "(otherwise refused)")
    parser.add_argument("--proxy-eer", action="store_true",
                        help="afterwards, print the EER of a naive average-spectrum system "
                             "(a difficulty check)")
    args = parser.parse_args(argv)
    checks = [
        (args.num_dev_speakers >= 1, "--num-dev-speakers must be at least 1"),
        (args.num_test_speakers >= 2, "--num-test-speakers must be at least 2 (nontarget trials "
                                      "need two speakers)"),
        (args.sessions_per_speaker >= 1, "--sessions-per-speaker must be at least 1"),
        (args.utts_per_session >= 1, "--utts-per-session must be at least 1"),
        (args.sessions_per_speaker * args.utts_per_session >= 2,
         "each speaker needs at least 2 utterances (sessions x utterances) for target trials"),
        (args.num_trials >= 2, "--num-trials must be at least 2"),
        (0.5 <= args.min_dur <= args.max_dur, "need 0.5 <= --min-dur <= --max-dur"),
        (args.seed >= 0, "--seed must be a non-negative integer"),
        (args.nj >= 1, "--nj must be at least 1"),
    ]
    for ok, message in checks:
        if not ok:
            parser.error(message)
    return args


def config_from_args(args):
    config = {key: getattr(args, key) for key in CORPUS_PARAMS if key != "generator_version"}
    config["generator_version"] = GENERATOR_VERSION
    return config


def main(argv=None):
    args = parse_args(argv)
    config = config_from_args(args)
    try:
        generate_corpus(args.out_dir, config, nj=args.nj, overwrite=args.overwrite)
    except (FileExistsError, ValueError) as err:
        print(f"{sys.argv[0]}: {err}", file=sys.stderr)
        return 1
    if args.proxy_eer:
        eer, within = proxy_eer(args.out_dir)
        print(f"naive average-spectrum proxy: EER {100 * eer:.1f}% on veri_test2.txt "
              f"(cross-session targets), {100 * within:.1f}% with same-session targets")
    return 0


if __name__ == "__main__":
    sys.exit(main())
