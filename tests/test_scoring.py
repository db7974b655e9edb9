"""Cosine scoring over real kaldiio arks, the trials reader, and the score/results entry points."""
import os
import subprocess
import sys

import kaldiio
import numpy as np
import pytest

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.embedding_io import load_embeddings
from pytorch_modules.fileio.kaldi_data import read_trials
from pytorch_modules.scoring import cosine
from pytorch_modules.scoring.cosine import cosine_score
from pytorch_modules.scoring.metrics import compute_eer, compute_eer_kaldi, compute_min_dcf

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def write_embeddings(directory, vectors):
    """Write {utt: vector} as directory/xvector.ark + .scp with kaldiio; return the scp path."""
    ark, scp = os.path.join(directory, "xvector.ark"), os.path.join(directory, "xvector.scp")
    with kaldiio.WriteHelper(f"ark,scp:{ark},{scp}") as writer:
        for utt, vec in vectors.items():
            writer(utt, vec)
    return scp


def random_vectors(rng, n, dim=16):
    return {f"spk{i % 3}-utt{i:03d}": rng.normal(size=dim).astype(np.float32) for i in range(n)}


def write_text(path, lines):
    with open(path, "w") as f:
        f.writelines(line + "\n" for line in lines)
    return str(path)


def test_load_embeddings_keeps_scp_order(tmp_path):
    vectors = random_vectors(np.random.default_rng(0), 7)
    ids, emb = load_embeddings(write_embeddings(tmp_path, vectors))
    assert ids == list(vectors)
    assert emb.dtype == np.float32 and emb.shape == (7, 16)
    np.testing.assert_array_equal(emb, np.stack(list(vectors.values())))


def test_cosine_scores_equal_numpy_cosine(tmp_path):
    rng = np.random.default_rng(1)
    vectors = random_vectors(rng, 20)
    ids, emb = load_embeddings(write_embeddings(tmp_path, vectors))
    enroll = [ids[i] for i in rng.integers(0, 20, size=50)]
    test = [ids[i] for i in rng.integers(0, 20, size=50)]
    scores = cosine_score(enroll, test, {utt: row for row, utt in enumerate(ids)}, emb)
    expected = [np.dot(vectors[e], vectors[t])
                / (np.linalg.norm(vectors[e]) * np.linalg.norm(vectors[t]))
                for e, t in zip(enroll, test)]
    np.testing.assert_allclose(scores, expected, atol=1e-6)


def test_unreadable_vector_names_scp_and_utterance(tmp_path):
    scp = write_embeddings(tmp_path, random_vectors(np.random.default_rng(2), 3))
    with open(scp) as f:
        lines = f.read().splitlines()
    broken = lines[1].split()[0] + " " + str(tmp_path / "gone.ark") + ":12"
    write_text(scp, [lines[0], broken, lines[2]])
    with pytest.raises(RecipeError,
                       match=r"xvector.scp:2: cannot read the embedding of spk1-utt001"):
        load_embeddings(scp)


def test_missing_id_names_the_first_trial_line_with_one_and_both_sides(tmp_path):
    """The line is read again from the trials file (blank lines and repeats counted); where
    there is no such file, or it holds other trials, the message counts trials instead."""
    emb = np.eye(2, dtype=np.float32)
    advice = ("Check that the trial list names utterances of this set (the embeddings' "
              "xvector.scp lists every embedded utterance) or, if the set changed, rerun "
              "embedding extraction (stage 4).")
    with pytest.raises(RecipeError) as err:
        cosine_score(["a", "a"], ["b", "ghost"], {"a": 0, "b": 1}, emb,
                     trials_path="data/vox1_o/trials")
    assert str(err.value) == (f"data/vox1_o/trials, trial 2: test id 'ghost' has no embedding; "
                              f"1 test id(s) (ghost) of data/vox1_o/trials have no embedding. "
                              f"{advice}")
    path = write_text(tmp_path / "trials", ["a b target", "", "a b target", "g1 g2 nontarget",
                                            "a g2 target"])
    enroll, test, _ = read_trials(path, warn=lambda message: None)
    with pytest.raises(RecipeError) as err:
        cosine_score(enroll, test, {"a": 0, "b": 1}, emb, trials_path=path)
    assert str(err.value) == (f"{path}:4: enrollment id 'g1' and test id 'g2' have no "
                              f"embedding; 1 enrollment id(s) (g1) and 1 test id(s) (g2) of "
                              f"{path} have no embedding. {advice}")
    with pytest.raises(RecipeError, match=rf"^{path}, trial 2: test id 'g2' has no embedding"):
        cosine_score(["a", "a"], ["b", "g2"], {"a": 0, "b": 1}, emb, trials_path=path)


def test_read_trials(tmp_path):
    path = write_text(tmp_path / "trials", ["a b target", "a c nontarget", "c b nontarget"])
    enroll, test, labels = read_trials(path)
    assert enroll == ["a", "a", "c"] and test == ["b", "c", "b"]
    assert labels.dtype == np.int8 and labels.tolist() == [1, 0, 0]


def test_read_unlabelled_trials(tmp_path):
    assert read_trials(write_text(tmp_path / "trials", ["a b", "a c"]))[2] is None


@pytest.mark.parametrize("bad_line", ["a c 1", "a c", "a c target extra", "a"])
def test_malformed_trial_names_file_and_line(tmp_path, bad_line):
    path = write_text(tmp_path / "trials", ["a b target", bad_line])
    with pytest.raises(RecipeError,
                       match=r"trials:2: malformed trial .*ENROLL TEST target\|nontarget"):
        read_trials(path)


def test_a_trial_list_that_is_not_utf8_names_its_line(tmp_path):
    """It used to end in a UnicodeDecodeError traceback."""
    path = tmp_path / "trials"
    path.write_bytes(b"a b target\na c nontarget\n\xff\xfe d nontarget\n")
    with pytest.raises(RecipeError, match=r"trials:3: byte 25 is not UTF-8 text \(invalid "
                                          r"start byte\); a trial list is text"):
        read_trials(path)


def run_module(module, *args):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                          capture_output=True, text=True)


@pytest.fixture
def scored(tmp_path):
    """Run pytorch_modules.bin.score on 60 random trials; return what it was given and wrote."""
    rng = np.random.default_rng(3)
    vectors = random_vectors(rng, 12)
    scp = write_embeddings(tmp_path, vectors)
    ids = list(vectors)
    every_pair = [(a, b) for a in ids for b in ids if a != b]
    pairs = [every_pair[k] for k in rng.choice(len(every_pair), size=60, replace=False)]
    labels = [int(e[:4] == t[:4]) for e, t in pairs]  # same 'spkN' prefix = target
    trials = write_text(tmp_path / "trials",
                        [f"{e} {t} {'target' if l else 'nontarget'}"
                         for (e, t), l in zip(pairs, labels)])
    out = tmp_path / "scores"
    proc = run_module("pytorch_modules.bin.score", "--trials", trials, "--enroll-scp", scp,
                      "--test-scp", scp, "--scores-out", str(out / "vox1_o.scores"),
                      "--results-out", str(out / "vox1_o.results"), "--name", "vox1_o")
    return dict(proc=proc, vectors=vectors, pairs=pairs, labels=np.array(labels), out=out)


def test_score_entry_point_writes_scores_in_trial_order(scored):
    assert scored["proc"].returncode == 0, scored["proc"].stderr
    lines = (scored["out"] / "vox1_o.scores").read_text().splitlines()
    assert len(lines) == len(scored["pairs"])
    for line, (enroll, test) in zip(lines, scored["pairs"]):
        e, t, score = line.split()
        assert (e, t) == (enroll, test)
        assert len(score.split(".")[1]) == 6  # six decimals
        a, b = scored["vectors"][e], scored["vectors"][t]
        assert float(score) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b),
                                             abs=1e-6)


def test_score_entry_point_writes_results(scored):
    lines = (scored["out"] / "vox1_o.results").read_text().splitlines()
    results = dict(line.split() for line in lines)
    assert [line.split()[0] for line in lines] == [
        "name", "trials", "eer_percent", "min_dcf_p0.01", "min_dcf_p0.001", "eer_threshold",
        "eer_kaldi_percent", "eer_percent_ci_low", "eer_percent_ci_high", "min_dcf_p0.01_ci_low",
        "min_dcf_p0.01_ci_high", "min_dcf_p0.001_ci_low", "min_dcf_p0.001_ci_high",
        "bootstrap_unit", "bootstrap_clusters", "bootstrap_replicates", "bootstrap_seed"]
    scores = np.array([float(line.split()[2])
                       for line in (scored["out"] / "vox1_o.scores").read_text().splitlines()])
    eer, _ = compute_eer(scores, scored["labels"])
    assert results["name"] == "vox1_o" and results["trials"] == "60"
    assert float(results["eer_kaldi_percent"]) == pytest.approx(
        100 * compute_eer_kaldi(scores, scored["labels"])[0], abs=1e-3)
    assert float(results["eer_percent"]) == pytest.approx(100 * eer, abs=1e-3)
    assert float(results["min_dcf_p0.01"]) == pytest.approx(
        compute_min_dcf(scores, scored["labels"], 0.01)[0], abs=1e-3)
    # No utt2spk beside the trials: the enrollment ids are what the bootstrap resamples.
    assert (results["bootstrap_unit"], results["bootstrap_replicates"]) == (
        "enrollment_model", "1000")
    assert results["bootstrap_clusters"] == str(len({e for e, _ in scored["pairs"]}))
    assert float(results["eer_percent_ci_low"]) <= 100 * eer <= float(
        results["eer_percent_ci_high"])
    stdout = scored["proc"].stdout.strip()
    assert stdout.startswith(f"vox1_o: EER {100 * eer:.2f}% "
                             f"[{float(results['eer_percent_ci_low']):.2f}, "
                             f"{float(results['eer_percent_ci_high']):.2f}]  minDCF(0.01) ")
    assert stdout.endswith("(60 trials)")


def test_results_table(scored, tmp_path):
    results = str(scored["out"] / "vox1_o.results")
    proc = run_module("pytorch_modules.bin.results_table", results, results)
    assert proc.returncode == 0, proc.stderr
    header, rule, *rows = proc.stdout.splitlines()
    assert header == ("| results | set | list | trials | EER (%) [95% CI] | EER Kaldi (%) | "
                      "minDCF(0.01) [95% CI] | minDCF(0.001) |")
    assert rule.startswith("|---|")
    r = dict(line.split() for line in open(results))
    assert len(rows) == 2 and rows[0] == (
        f"| {results} | vox1_o | - | 60 | {float(r['eer_percent']):.2f} "
        f"[{float(r['eer_percent_ci_low']):.2f}, {float(r['eer_percent_ci_high']):.2f}] | "
        f"{float(r['eer_kaldi_percent']):.2f} | "
        f"{r['min_dcf_p0.01']} [{r['min_dcf_p0.01_ci_low']}, {r['min_dcf_p0.01_ci_high']}] | "
        f"{r['min_dcf_p0.001']} |")


def test_rows_name_their_list_and_mark_sets_whose_speakers_training_saw(scored, tmp_path):
    # What data preparation records beside the trials reaches the results and the table.
    trials = scored["out"].parent / "trials"
    scp = str(tmp_path / "xvector.scp")
    rows = {}
    for name, info in (("vox1_o", "list veri_test2.txt\nspeakers_in_training 0\n"),
                       ("vox1_e", "list list_test_all2.txt\nspeakers_in_training 3\n")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "trials").write_text(trials.read_text())
        (tmp_path / name / "trials.info").write_text(info)
        out = tmp_path / name / f"{name}.results"
        proc = run_module("pytorch_modules.bin.score", "--trials", tmp_path / name / "trials",
                          "--enroll-scp", scp, "--test-scp", scp, "--scores-out",
                          tmp_path / name / "s", "--results-out", out)
        assert proc.returncode == 0, proc.stderr
        rows[name] = str(out)
    results = dict(line.split() for line in open(rows["vox1_e"]))
    assert (results["trial_list"], results["speakers_in_training"]) == ("list_test_all2.txt", "3")
    proc = run_module("pytorch_modules.bin.results_table", rows["vox1_o"], rows["vox1_e"])
    assert proc.returncode == 0, proc.stderr
    table = proc.stdout.splitlines()
    assert table[2].startswith(f"| {rows['vox1_o']} | vox1_o | veri_test2.txt | 60 | ")
    assert table[3].startswith(f"| {rows['vox1_e']} | vox1_e **trained-on-test** (3 speakers "
                               f"in training) | list_test_all2.txt | 60 | ")
    (tmp_path / "vox1_o/trials.info").write_text("lsit veri_test2.txt\n")
    proc = run_module("pytorch_modules.bin.score", "--trials", tmp_path / "vox1_o/trials",
                      "--enroll-scp", scp, "--test-scp", scp, "--scores-out",
                      tmp_path / "s", "--results-out", tmp_path / "r")
    assert proc.returncode == 1 and proc.stderr == (
        f"score: {tmp_path}/vox1_o/trials.info: unknown key 'lsit' (expected list or "
        f"speakers_in_training); rerun data preparation (stage 1).\n")


def test_score_entry_point_reports_missing_id_without_traceback(tmp_path):
    scp = write_embeddings(tmp_path, random_vectors(np.random.default_rng(4), 3))
    trials = write_text(tmp_path / "trials", ["spk0-utt000 nobody target",
                                              "ghost spk0-utt000 nontarget",
                                              "ghost nobody2 nontarget"])
    proc = run_module("pytorch_modules.bin.score", "--trials", trials, "--enroll-scp", scp,
                      "--test-scp", scp, "--scores-out", str(tmp_path / "s"),
                      "--results-out", str(tmp_path / "r"))
    assert proc.returncode == 1
    # both sides' missing ids, in one sentence
    assert proc.stderr.startswith(f"score: {trials}:1: test id 'nobody' has no embedding; "
                                  f"1 enrollment id(s) (ghost) and 2 test id(s) "
                                  f"(nobody, nobody2) of {trials} have no embedding.")
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_separate_enroll_and_test_scps(tmp_path):
    """Enrollment models in one scp, test utterances in another (the SITW shape)."""
    rng = np.random.default_rng(5)
    (tmp_path / "enroll").mkdir()
    (tmp_path / "test").mkdir()
    models = {"model1": rng.normal(size=8).astype(np.float32)}
    utts = {"spk0-utt1": rng.normal(size=8).astype(np.float32)}
    enroll_scp = write_embeddings(tmp_path / "enroll", models)
    test_scp = write_embeddings(tmp_path / "test", utts)
    trials = write_text(tmp_path / "trials", ["model1 spk0-utt1"])  # unlabelled
    proc = run_module("pytorch_modules.bin.score", "--trials", trials, "--enroll-scp", enroll_scp,
                      "--test-scp", test_scp, "--scores-out", str(tmp_path / "s"),
                      "--results-out", str(tmp_path / "r"), "--name", "sitw")
    assert proc.returncode == 0, proc.stderr
    a, b = models["model1"], utts["spk0-utt1"]
    e, t, score = (tmp_path / "s").read_text().split()
    assert float(score) == pytest.approx(a @ b / np.linalg.norm(a) / np.linalg.norm(b), abs=1e-6)
    assert (tmp_path / "r").read_text() == "name sitw\ntrials 1\n"
    assert "unlabelled" in proc.stdout


@pytest.mark.parametrize("trials", [5, 3 * cosine.SCORE_CHUNK + 17])  # one thread; several
def test_pair_scores_are_the_row_dot_products_in_trial_order(trials):
    rng = np.random.default_rng(trials)
    table = rng.normal(size=(50, 24)).astype(np.float32)
    enroll, test = rng.integers(0, 50, size=trials), rng.integers(0, 50, size=trials)
    expected = np.array([np.dot(table[e].astype(np.float64), table[t]) for e, t in
                         zip(enroll, test)])
    got = cosine.pair_scores(table, enroll, test)
    assert got.dtype == np.float64 and got.shape == (trials,)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def score_with_utt2spk(tmp_path, utt2spk_lines, **extra):
    rng = np.random.default_rng(8)
    vectors = random_vectors(rng, 12)
    scp = write_embeddings(tmp_path, vectors)
    ids = sorted(vectors)
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1:]]
    (tmp_path / "set").mkdir()
    trials = write_text(tmp_path / "set" / "trials",
                        [f"{a} {b} {'target' if a[:4] == b[:4] else 'nontarget'}"
                         for a, b in pairs])
    write_text(tmp_path / "set" / "utt2spk", utt2spk_lines(ids))
    args = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
    return run_module("pytorch_modules.bin.score", "--trials", trials, "--enroll-scp", scp,
                      "--test-scp", scp, "--scores-out", str(tmp_path / "s"),
                      "--results-out", str(tmp_path / "r"), *args)


def test_the_utt2spk_beside_the_trials_makes_it_a_speaker_bootstrap(tmp_path):
    proc = score_with_utt2spk(tmp_path, lambda ids: [f"{u} {u[:4]}" for u in ids],
                              bootstrap_replicates=50, bootstrap_seed=3)
    assert proc.returncode == 0, proc.stderr
    results = dict(line.split() for line in (tmp_path / "r").read_text().splitlines())
    assert (results["bootstrap_unit"], results["bootstrap_clusters"],
            results["bootstrap_replicates"], results["bootstrap_seed"]) == (
        "speaker", "3", "50", "3")


def test_a_utt2spk_that_contradicts_the_labels_stops_before_any_output(tmp_path):
    proc = score_with_utt2spk(tmp_path, lambda ids: [f"{u} {u[:4] if i else 'spk9'}"
                                                     for i, u in enumerate(ids)])
    assert proc.returncode == 1
    assert "is a target trial of two speakers according to" in proc.stderr
    assert "utt2spk and the trials disagree" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "s").exists() and not (tmp_path / "r").exists()


def test_no_bootstrap_when_asked_for_none(tmp_path):
    proc = score_with_utt2spk(tmp_path, lambda ids: [f"{u} {u[:4]}" for u in ids],
                              bootstrap_replicates=0)
    assert proc.returncode == 0, proc.stderr
    assert "ci_low" not in (tmp_path / "r").read_text()


def test_the_results_are_those_of_the_scores_as_written(tmp_path):
    """Embeddings that differ by 1e-5 have cosines that all round to 1.000000: the file holds
    one tie, so its EER is 50%, and the results file must say the same (computed on the
    unrounded cosines it would be anything)."""
    rng = np.random.default_rng(4)
    base = rng.standard_normal(16)
    vectors = {f"spk{i % 3}-u{i}": (base + 1e-5 * rng.standard_normal(16)).astype(np.float32)
               for i in range(12)}
    scp = write_embeddings(tmp_path, vectors)
    ids = sorted(vectors)
    trials = write_text(tmp_path / "trials",
                        [f"{a} {b} {'target' if a[:4] == b[:4] else 'nontarget'}"
                         for i, a in enumerate(ids) for b in ids[i + 1:]])
    proc = run_module("pytorch_modules.bin.score", "--trials", trials, "--enroll-scp", scp,
                      "--test-scp", scp, "--scores-out", str(tmp_path / "s"),
                      "--results-out", str(tmp_path / "r"), "--bootstrap-replicates", "0")
    assert proc.returncode == 0, proc.stderr
    written = {line.split()[2] for line in (tmp_path / "s").read_text().splitlines()}
    assert written == {"1.000000"}
    results = dict(line.split() for line in (tmp_path / "r").read_text().splitlines())
    assert results["eer_percent"] == "50.0000"


def test_trials_skip_blank_lines_and_count_a_repeated_trial_once(tmp_path):
    path = write_text(tmp_path / "trials", ["a b target", "", "a c nontarget", "  ",
                                            "a b target", "a c nontarget", ""])
    warnings = []
    enroll, test, labels, lines = read_trials(path, warn=warnings.append, with_lines=True)
    assert (enroll, test, labels.tolist()) == (["a", "a"], ["b", "c"], [1, 0])
    assert lines.tolist() == [1, 3]
    assert warnings == [f"warning: {path} lists 2 trial(s) again (first: line 5, the trial "
                        f"of line 1); each trial is scored and counted once."]


def test_a_trial_listed_with_both_labels_is_an_error_naming_both_lines(tmp_path):
    path = write_text(tmp_path / "trials", ["a b target", "a c nontarget", "a b nontarget"])
    with pytest.raises(RecipeError, match=rf"{path}:3: trial 'a b' is nontarget here but "
                                          rf"target on line 1"):
        read_trials(path)


def reference_read_trials(path):
    """The trials reader's rules, line by line (the reader before it was vectorised):
    (enroll, test, labels, line numbers, warnings) or the error's message."""
    enroll, test, labels, lines, warnings = [], [], [], [], []
    n_fields, first_line, repeats = None, {}, []
    with open(path, encoding="utf-8") as f:
        for line_no, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if n_fields is None:
                n_fields = len(fields)
            if len(fields) != n_fields or n_fields not in (2, 3) or (
                    n_fields == 3 and fields[2] not in ("target", "nontarget")):
                return (f"{path}:{line_no}: malformed trial {line.rstrip()!r}; expected "
                        f"'ENROLL TEST target|nontarget' (or 'ENROLL TEST' on every line for "
                        f"unlabelled trials).")
            pair, label = (fields[0], fields[1]), fields[2:]
            if pair in first_line:
                first_no, first_label = first_line[pair]
                if first_label != label:
                    return (f"{path}:{line_no}: trial '{pair[0]} {pair[1]}' is {label[0]} here "
                            f"but {first_label[0]} on line {first_no}; a trial has one label, "
                            f"correct the list.")
                repeats.append((line_no, first_no))
                continue
            first_line[pair] = (line_no, label)
            enroll.append(fields[0])
            test.append(fields[1])
            lines.append(line_no)
            if n_fields == 3:
                labels.append(int(fields[2] == "target"))
    if not enroll:
        return f"{path} holds no trials."
    if repeats:
        warnings.append(f"warning: {path} lists {len(repeats)} trial(s) again (first: line "
                        f"{repeats[0][0]}, the trial of line {repeats[0][1]}); each trial is "
                        f"scored and counted once.")
    return enroll, test, (labels if n_fields == 3 else None), lines, warnings


def read_trials_outcome(path):
    warnings = []
    try:
        enroll, test, labels, lines = read_trials(path, warn=warnings.append, with_lines=True)
    except RecipeError as err:
        return str(err)
    assert labels is None or labels.dtype == np.int8
    return (enroll, test, None if labels is None else labels.tolist(), lines.tolist(),
            warnings)


# Separators and line ends that text files and str.split() know, and ids with wide characters.
SEPARATORS = [" ", " ", " ", "\t", "\x0b", "\x0c", "\x1c", "\x1f", "\x85", "\xa0", "\u2003",
              "\u3000", "\u2028"]
LINE_ENDS = ["\n", "\n", "\n", "\r\n", "\r"]
WORDS = ["a", "b", "é", "x\u00e9y", "ä中", "target", "nontarget", "Target", "targets", "1"]


def random_trial_file(rng, path):
    n_fields = rng.choice([2, 3, 3])
    text = ""
    for _ in range(rng.integers(0, 12)):
        if rng.random() < 0.1:
            line = rng.choice(["", " ", "\t", "\xa0"])
        else:
            count = n_fields if rng.random() < 0.9 else rng.integers(1, 5)
            fields = list(rng.choice(WORDS[:5], size=min(count, 2)))
            if count >= 3:
                fields.append(rng.choice(WORDS[5:] if rng.random() < 0.1 else WORDS[5:7]))
            fields += ["extra"] * (count - 3)
            separators = rng.choice(SEPARATORS, size=len(fields) + 1)
            line = "".join(s + f for s, f in zip(separators, fields)) + (
                rng.choice(SEPARATORS) if rng.random() < 0.2 else "")
            line = line[1:] if rng.random() < 0.7 else line
        text += line + rng.choice(LINE_ENDS)
    path.write_bytes(text.encode("utf-8")[:-1] if rng.random() < 0.2 else text.encode("utf-8"))
    return str(path)


def test_the_trials_reader_follows_the_line_by_line_rules_on_any_list(tmp_path):
    """Random lists (blank lines, repeats, both labels, malformed lines, \\r\\n and \\r line
    ends, every whitespace str.split() knows): the same trials, lines, warning or error."""
    rng = np.random.default_rng(7)
    for _ in range(400):
        path = random_trial_file(rng, tmp_path / "trials")
        assert read_trials_outcome(path) == reference_read_trials(path), open(path, "rb").read()


def test_the_trials_reader_knows_the_whitespace_of_str_split():
    from pytorch_modules.fileio import kaldi_data
    wide = {c for c in map(chr, range(128, 0x110000)) if c.isspace()}
    assert set(kaldi_data._ASCII_SPACE) == {c for c in range(128) if chr(c).isspace()}
    assert {s.decode("utf-8") for s in kaldi_data._WIDE_SPACE} == wide


@pytest.mark.parametrize("lines, outcome", [
    # the first problem in file order is the one reported
    (["a b target", "a b nontarget", "x"], "{path}:2: trial 'a b' is nontarget here"),
    (["a b target", "x", "a b nontarget"], "{path}:2: malformed trial 'x'"),
    (["", "a b c d"], "{path}:2: malformed trial 'a b c d'"),
    (["", "  "], "{path} holds no trials."),
    ([], "{path} holds no trials."),
])
def test_the_trials_reader_reports_the_first_problem(tmp_path, lines, outcome):
    path = write_text(tmp_path / "trials", lines)
    with pytest.raises(RecipeError) as err:
        read_trials(path)
    assert str(err.value).startswith(outcome.format(path=path))


def test_repeated_trials_are_found_when_the_ids_hashes_collide(tmp_path, monkeypatch):
    """Ids of one length hash alike here: trials are still told apart by their ids."""
    from pytorch_modules.fileio import kaldi_data
    monkeypatch.setattr(kaldi_data, "_id_hash", len)
    path = write_text(tmp_path / "trials", ["ab cd target", "ba dc nontarget", "ab dc target",
                                            "ab cd target", "ba dc nontarget"])
    assert read_trials_outcome(path) == reference_read_trials(path)
    assert read_trials_outcome(path)[3] == [1, 2, 3]
    path = write_text(tmp_path / "trials", ["ab cd target", "ba dc nontarget", "ba dc target"])
    assert read_trials_outcome(path).startswith(f"{path}:3: trial 'ba dc' is target here but "
                                                f"nontarget on line 2")


def test_unlabelled_repeats_are_kept_once(tmp_path):
    path = write_text(tmp_path / "trials", ["a b", "a c", "a b"])
    warnings = []
    assert read_trials(path, warn=warnings.append) == (["a", "a"], ["b", "c"], None)
    assert warnings == [f"warning: {path} lists 1 trial(s) again (first: line 3, the trial of "
                        f"line 1); each trial is scored and counted once."]


def test_fused_scores_are_the_mean_of_the_systems_and_evaluated_alike(scored, tmp_path):
    """Two systems: the scored one and a shifted, noisier copy; the fusion's scores are their
    mean per trial and its results those of bin/score's evaluation of that mean."""
    first = scored["out"] / "vox1_o.scores"
    lines = first.read_text().splitlines()
    noise = np.random.default_rng(4).normal(0, 0.3, len(lines))
    second = write_text(tmp_path / "second.scores",
                        [f"{line.rsplit(' ', 1)[0]} {float(line.split()[2]) + 0.1 + n:.6f}"
                         for line, n in zip(lines, noise)])
    out = tmp_path / "fused"
    proc = run_module("pytorch_modules.bin.fuse_scores", "--trials", tmp_path / "trials",
                      "--scores-out", out / "vox1_o.scores",
                      "--results-out", out / "vox1_o.results", first, second)
    assert proc.returncode == 0, proc.stderr
    a = np.array([float(line.split()[2]) for line in lines])
    b = np.array([float(line.split()[2]) for line in open(second).read().splitlines()])
    fused_lines = (out / "vox1_o.scores").read_text().splitlines()
    assert [line.split()[:2] for line in fused_lines] == [list(p) for p in scored["pairs"]]
    fused = np.array([float(line.split()[2]) for line in fused_lines])
    np.testing.assert_allclose(fused, (a + b) / 2, atol=5e-7)
    results = dict(line.split() for line in (out / "vox1_o.results").read_text().splitlines())
    assert float(results["eer_percent"]) == pytest.approx(
        100 * compute_eer(fused, scored["labels"])[0], abs=1e-3)
    assert float(results["min_dcf_p0.01"]) == pytest.approx(
        compute_min_dcf(fused, scored["labels"], 0.01)[0], abs=1e-3)
    assert results["fused_systems"] == "2" and results["bootstrap_replicates"] == "1000"


def test_fusing_scores_of_other_trials_names_the_file_and_line(scored, tmp_path):
    first = scored["out"] / "vox1_o.scores"
    lines = first.read_text().splitlines()
    swapped = write_text(tmp_path / "swapped.scores", [lines[1], lines[0]] + lines[2:])
    assert scored["pairs"][0] != scored["pairs"][1]
    out = tmp_path / "fused"
    proc = run_module("pytorch_modules.bin.fuse_scores", "--trials", tmp_path / "trials",
                      "--scores-out", out / "x.scores", "--results-out", out / "x.results",
                      first, swapped)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert f"{swapped}:1: expected the score of trial 1 '{' '.join(scored['pairs'][0])}'" \
        in proc.stderr
    assert not out.exists()
