"""utils/split_data.sh's work (data_dir.py split): a data dir cut into N parts for N parallel
jobs, DATA_DIR/split<N>[utt]/<k>/, by speaker (each speaker's utterances in one part) or by
utterance (--per-utt), in contiguous runs of nearly equal size.  A split that is still current
(made from the same files) is kept, so that reruns are cheap and finished jobs keep their
inputs.  Standard library only, like data_dir.py.
"""
import filecmp
import os
import shutil

from pytorch_modules.fileio.atomic import write_lines
from pytorch_modules.fileio.kaldi_data import (
    PER_UTT_FILES,
    SPECS,
    TEXT,
    DataError,
    scan_file,
    spk2utt_lines,
    spk2utt_of,
)


def contiguous_parts(sizes, num_parts):
    """Cuts a list of group sizes into num_parts non-empty runs of nearly equal total size.

    Each cut goes where the running total comes closest to its share, total * k / num_parts,
    while leaving at least one group for every later part.  Returns [(start, end)] indices.
    """
    total, bounds, start, running = sum(sizes), [], 0, 0
    for part in range(1, num_parts):
        target = total * part / num_parts
        end = start + 1                       # every part gets at least one group
        running += sizes[start]
        last_end = len(sizes) - (num_parts - part)
        while end < last_end and abs(running + sizes[end] - target) < abs(running - target):
            running += sizes[end]
            end += 1
        bounds.append((start, end))
        start = end
    bounds.append((start, len(sizes)))
    return bounds


def split_groups(utt2spk, per_utt):
    """Groups of utterances that must stay together: one per speaker (C order), or per utt."""
    if per_utt:
        return [[utt] for utt, _ in utt2spk]
    return [utts for _, utts in spk2utt_of(utt2spk)]


def split_dir_name(data_dir, num_parts, per_utt):
    return os.path.join(data_dir, f"split{num_parts}{'utt' if per_utt else ''}")


# In a split dir: its time says when the split was last built.  The part files' own times say
# when their content last changed (write_split keeps unchanged ones), which is what the stages
# compare their outputs with (utils/pending_jobs.sh).
SPLIT_STAMP = ".built"


def split_is_current(split_dir, num_parts, names, sources):
    """True when every part holds exactly the expected files and the split was built after
    the newest source changed."""
    for part in range(1, num_parts + 1):
        part_dir = os.path.join(split_dir, str(part))
        if not os.path.isdir(part_dir) or set(os.listdir(part_dir)) != set(names):
            return False
    try:
        built = os.stat(os.path.join(split_dir, SPLIT_STAMP)).st_mtime_ns
    except FileNotFoundError:
        return False
    return built >= max(os.stat(path).st_mtime_ns for path in sources)


def checked_for_split(data_dir, name, utt2spk=None):
    """Scans data_dir/name; raises DataError unless it is clean and matches utt2spk's ids."""
    path = os.path.join(data_dir, name)
    scan = scan_file(path, SPECS[name], keep_rows=utt2spk is None)
    if scan.problems:
        raise DataError(f"{scan.problems[0]}; run utils/fix_data_dir.sh {data_dir} first.")
    if utt2spk is not None and (len(scan.ids) != len(utt2spk)
                                or any(utt not in utt2spk for utt in scan.ids)):
        raise DataError(f"{path} and {data_dir}/utt2spk list different utterances; run "
                        f"utils/fix_data_dir.sh {data_dir} first.")
    return scan


def split_data_dir(data_dir, num_parts, per_utt=False):
    """Writes data_dir/split{N}[utt]/{1..N}/ unless it is up to date; returns its path."""
    split_dir = split_dir_name(data_dir, num_parts, per_utt)
    if not os.path.exists(os.path.join(data_dir, "utt2spk")):
        raise DataError(f"{data_dir}/utt2spk is missing; is {data_dir} a data directory?")
    names = ["utt2spk"] + [n for n in PER_UTT_FILES if os.path.exists(os.path.join(data_dir, n))]
    sources = [os.path.join(data_dir, n) for n in names + ["spk2utt"]
               if os.path.exists(os.path.join(data_dir, n))]
    # Decided before reading anything: every stage calls split_data.sh on big directories.
    if split_is_current(split_dir, num_parts, names + ["spk2utt"], sources):
        return split_dir
    utt2spk = dict(checked_for_split(data_dir, "utt2spk").rows)
    for name in names[1:]:
        checked_for_split(data_dir, name, utt2spk)
    groups = split_groups(utt2spk.items(), per_utt)
    if num_parts > len(groups):
        unit, hint = ("utterances", "") if per_utt else ("speakers", " or --per-utt")
        raise DataError(f"cannot split {data_dir} into {num_parts} parts: it has only "
                        f"{len(groups)} {unit}; use fewer parts{hint}.")
    part_of = {utt: part for part, (start, end) in enumerate(contiguous_parts(
        [len(g) for g in groups], num_parts)) for group in groups[start:end] for utt in group}
    write_split(data_dir, split_dir, names, part_of, num_parts, utt2spk)
    return split_dir


def write_split(data_dir, split_dir, names, part_of, num_parts, utt2spk):
    """Builds the parts in a temporary folder, then swaps it in: no half-written split."""
    tmp = f"{split_dir}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    part_dirs = [os.path.join(tmp, str(part)) for part in range(1, num_parts + 1)]
    try:
        for part_dir in part_dirs:
            os.makedirs(part_dir)
        for name in names:
            distribute_lines(os.path.join(data_dir, name), name, part_dirs, part_of)
        members = [[] for _ in part_dirs]
        for utt, spk in utt2spk.items():
            members[part_of[utt]].append((utt, spk))
        for part_dir, pairs in zip(part_dirs, members):
            write_lines(os.path.join(part_dir, "spk2utt"), spk2utt_lines(pairs))
        keep_unchanged_files(split_dir, tmp, names + ["spk2utt"], num_parts)
        with open(os.path.join(tmp, SPLIT_STAMP), "w"):
            pass
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = f"{split_dir}.old{os.getpid()}"
    if os.path.exists(split_dir):
        os.rename(split_dir, old)
    os.rename(tmp, split_dir)
    shutil.rmtree(old, ignore_errors=True)


def keep_unchanged_files(old_split, new_split, names, num_parts):
    """Moves the old copy of every part file whose content is unchanged into the new split, so
    that its time still says when its content last changed.  A split rebuilt only because
    another file joined the data dir (feats.scp, after the feature stage) then leaves the
    jobs made from its parts up to date."""
    for part in range(1, num_parts + 1):
        for name in names:
            old = os.path.join(old_split, str(part), name)
            new = os.path.join(new_split, str(part), name)
            if os.path.isfile(old) and filecmp.cmp(old, new, shallow=False):
                os.replace(old, new)


def distribute_lines(path, name, part_dirs, part_of):
    """Copies each line of a sorted per-utterance file into its part's copy (stays sorted)."""
    outputs = [open(os.path.join(d, name), "w", **TEXT) for d in part_dirs]
    try:
        with open(path, **TEXT) as f:
            for line in f:
                outputs[part_of[line.split(None, 1)[0]]].write(line.rstrip("\n") + "\n")
    finally:
        for output in outputs:
            output.close()


def run_split(args):
    if args.num_parts < 1:
        raise DataError(f"the number of parts must be 1 or more, not {args.num_parts}.")
    split_data_dir(args.data_dir, args.num_parts, args.per_utt)
    return 0
