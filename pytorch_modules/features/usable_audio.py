"""The one rule for audio that cannot give speaker features, and so no embedding: applied by the
feature stage (features/feature_job.py, bin/make_shards.py) to every utterance and by
verification (deploy/verification.py: bin/verify, bin/embed) to every file, so that the same
recording is refused everywhere, with the same words, naming it.

Unusable: no samples, NaN or infinite samples (a broken float wav), fewer samples than one
analysis frame, or silence: an RMS level below the feature config's --min-rms-dbfs (-80 dBFS
by default), which gives the log floor in every bin, features that say nothing of the speaker
and an embedding that scores the same against everyone.
"""
import numpy as np

from pytorch_modules.fileio.audio import AudioError, rms_dbfs


def check_usable(samples: np.ndarray, options, what: str, config: str) -> None:
    """Raises AudioError "<what> <why>; <what to do>" when `samples` (mono) are unusable.
    `options`: the feature options (num_frames(), frame_length, min_rms_dbfs); `what` names
    the audio (e.g. "utterance U: 'path'" or "audio file 'path'"); `config` the file the
    options come from."""
    if samples.shape[0] == 0:
        raise AudioError(f"{what} holds no samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{what} holds NaN or infinite samples; check the program that "
                         f"wrote it")
    if options.num_frames(len(samples)) == 0:
        raise AudioError(f"{what} is only {len(samples)} samples, shorter than one "
                         f"{options.frame_length:g}-ms frame")
    level = rms_dbfs(samples)
    if level < options.min_rms_dbfs:
        raise AudioError(f"{what} is silent (RMS level {level:.1f} dBFS, below "
                         f"--min-rms-dbfs={options.min_rms_dbfs:g} in {config}); check the "
                         f"recording, or lower --min-rms-dbfs to keep it")
