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

The speech model (speaker, session and utterance levels) is pytorch_modules/data/demo_speech.py.

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

import recipe_env  # says what to do when the environment is not active

recipe_env.require("numpy", "soundfile")

import numpy as np
import soundfile as sf

from pytorch_modules.data.demo_speech import (
    SAMPLE_RATE,
    STREAM_SESSION_ID,
    STREAM_TRIALS,
    draw_session,
    draw_voice,
    rng_for,
    synthesize_utterance,
)

# Bump whenever the synthesis (pytorch_modules/data/demo_speech.py) changes, so that a corpus made
# by older code is not reused.
GENERATOR_VERSION = 2

# VoxCeleb1's test speakers are id10270..id10309 and its dev speakers are numbered around them.
DEV_ID_START = 10001
TEST_ID_START = 10270
SUBSETS = ("dev", "test")
# YouTube video ids, which VoxCeleb uses as session ids: 11 characters from this alphabet.
YOUTUBE_ALPHABET = string.ascii_letters + string.digits + "_-"

# The parameters that determine the corpus (and are recorded in corpus_info.txt).  --nj is not
# one of them: it changes the speed, not the bytes.
CORPUS_PARAMS = ("generator_version", "seed", "num_dev_speakers", "num_test_speakers",
                 "sessions_per_speaker", "utts_per_session", "num_trials", "min_dur", "max_dur")

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
    from pytorch_modules.features.spectrogram import Spectrogram, SpectrogramOptions
    from pytorch_modules.scoring.metrics import compute_eer

    # The recipe's features: the arks hold the spectrum without mean normalisation (the
    # dataclass default normalises, which would leave every utterance's mean at ~0).
    spectrogram = Spectrogram(SpectrogramOptions(normalize_mean=False))
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
