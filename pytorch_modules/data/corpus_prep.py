"""What the corpus preparations share (local/prepare_voxceleb1.py, prepare_voxceleb2.py,
prepare_sitw.py): VoxCeleb's ids, the speaker files of a set and the writing of
Kaldi data dirs, each set swapped in whole.  Standard library only: preparing data needs no
torch.
"""
import argparse
import os
import re
import shutil
import tempfile
from collections import namedtuple

from pytorch_modules.errors import RecipeError
from pytorch_modules.fileio.kaldi_data import c_sorted, id_problem, spk2utt_lines


def argument_parser(prog, doc):
    """The parser of a preparation script whose docstring is its help: the first paragraph
    the description, the paragraphs after the usage the epilog."""
    paragraphs = doc.split("\n\n")
    return argparse.ArgumentParser(prog=prog, description=paragraphs[0],
                                   formatter_class=argparse.RawDescriptionHelpFormatter,
                                   epilog="\n\n".join(paragraphs[2:]))


# ---------------------------------------------------------------- VoxCeleb's ids

# A VoxCeleb speaker id (VoxCeleb1 and 2 alike).
SPEAKER_ID = re.compile(r"id\d{5}")
# A prepared VoxCeleb set: wavs maps utterance id -> wav.scp entry; trials (data_prep.Trial)
# may be None.
DataSet = namedtuple("DataSet", "name wavs trials")
# One trial of a VoxCeleb list: target is True for label 1; paths are relative to wav/.
Trial = namedtuple("Trial", "line_no target enroll_rel test_rel")


def utt_id(rel_path):
    """'id10270/x6uYqmx31kE/00001.wav' -> 'id10270-x6uYqmx31kE-00001'.

    VoxCeleb speaker ids (idNNNNN) hold no '-', so the speaker is the id up to the first '-'
    (YouTube session ids may contain '-', which is harmless after the prefix)."""
    return rel_path[: -len(".wav")].replace("/", "-")


def speaker_of_utt(utt):
    return utt.split("-", 1)[0]


def voxceleb_files(dataset):
    """{file name: lines} of a VoxCeleb DataSet: speaker_files, and its trials in Kaldi's form
    in the list's order (scores are written in the same order)."""
    files = speaker_files(dataset.wavs, {utt: speaker_of_utt(utt) for utt in dataset.wavs})
    if dataset.trials is not None:
        files["trials"] = [
            f"{utt_id(t.enroll_rel)} {utt_id(t.test_rel)} "
            f"{'target' if t.target else 'nontarget'}" for t in dataset.trials]
    return files


def summary(dataset):
    """'N speakers, M utterances[, T trials (a target, b nontarget)]' of a VoxCeleb DataSet."""
    speakers = {speaker_of_utt(utt) for utt in dataset.wavs}
    targets = None if dataset.trials is None else sum(t.target for t in dataset.trials)
    return count_line(len(speakers), "speakers", len(dataset.wavs),
                      None if dataset.trials is None else len(dataset.trials), targets)


# ---------------------------------------------------------------- any corpus

def count_line(speakers, what, utterances, trials=None, targets=None):
    """'N <what>, M utterances[, T trials (a target, b nontarget)]' for the log."""
    line = f"{speakers} {what}, {utterances} utterances"
    if trials is not None:
        line += f", {trials} trials ({targets} target, {trials - targets} nontarget)"
    return line


def training_set_warning(name, speakers, utterances, corpus, published, hint):
    """A warning when a training set is not the size `published` ((speakers, utterances)) of
    the real `corpus`, e.g. a download cut short; None when it is."""
    if (speakers, utterances) == published:
        return None
    return (f"warning: {name} has {speakers:,} speakers and {utterances:,} utterances, but "
            f"{corpus} has {published[0]:,} and {published[1]:,}; {hint}")


def speaker_files(wavs, utt2spk):
    """{wav.scp, utt2spk, spk2utt: lines} of utterance -> wav.scp entry and utterance ->
    speaker, each sorted in C order (Python's order on these ASCII ids is LC_ALL=C sort's).
    Ids made from folder and file names that a Kaldi table cannot hold (a space in a session
    folder, say) are refused here, naming the audio, before anything is written."""
    for utt, source in wavs.items():
        for what, key in (("utterance", utt), ("speaker", utt2spk[utt])):
            problem = id_problem(key)
            if problem:
                raise RecipeError(f"{source}: its {what} id {key!r} is made from its folder and "
                                  f"file names, and {problem}; rename them (e.g. replace spaces "
                                  f"with '_') and rerun data preparation")
    utts = c_sorted(wavs)
    return {
        "wav.scp": [f"{utt} {wavs[utt]}" for utt in utts],
        "utt2spk": [f"{utt} {utt2spk[utt]}" for utt in utts],
        "spk2utt": spk2utt_lines((utt, utt2spk[utt]) for utt in utts),
    }


def write_sets(data_dir, datasets, files_of):
    """Write every set (files_of(dataset) -> {file name: lines}) into a temporary folder,
    then swap each one into DATA_DIR/<name>: a set is never seen half written."""
    os.makedirs(data_dir, exist_ok=True)
    tmp_root = tempfile.mkdtemp(prefix=".prepare.", dir=data_dir)
    try:
        for dataset in datasets:
            set_dir = os.path.join(tmp_root, dataset.name)
            os.mkdir(set_dir)
            for file_name, lines in files_of(dataset).items():
                with open(os.path.join(set_dir, file_name), "w", encoding="utf-8") as f:
                    f.writelines(line + "\n" for line in lines)
        for dataset in datasets:
            replace_dir(os.path.join(tmp_root, dataset.name),
                        os.path.join(data_dir, dataset.name))
    finally:
        shutil.rmtree(tmp_root, ignore_errors=True)


def replace_dir(new_dir, final_dir):
    """Rename new_dir to final_dir; an old final_dir (and anything derived in it) is removed,
    because features or embeddings computed from the old lists no longer match."""
    old_dir = None
    if os.path.exists(final_dir):
        old_dir = final_dir + ".old." + str(os.getpid())
        os.rename(final_dir, old_dir)
    os.rename(new_dir, final_dir)
    if old_dir:
        shutil.rmtree(old_dir)
