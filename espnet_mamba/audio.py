"""Read an audio file for a speech model: checked, mono, at the model's sample rate.

Shared by ``python -m espnet_mamba.transcribe`` and the recipe's stage 3
(``espnet_mamba.recipe.data_dir format``). Anything libsndfile reads (WAV,
FLAC, OGG/Vorbis, Opus, SPHERE, MP3, ...) with any integer or float sample
type is accepted. What is wrong with a file is an :class:`AudioError` whose
message is one line naming the file and the problem; what is changed or
suspicious (resampled, downmixed, clipped) is a :class:`Note` returned with
the samples, for the caller to say.

    >>> audio = load_audio("speech.flac", fs=16000)
    >>> audio.samples            # float32, shape (n,), the model's rate
    >>> [str(n) for n in audio.notes]
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Optional, Union

import numpy as np
import soundfile

# a sample is "at full scale" when its magnitude is at least this (PCM_16's largest
# positive value is 32767/32768 = 0.99997)
FULL_SCALE = 0.999
# clipping is reported when at least this fraction of the samples sit at full scale
CLIPPED_FRACTION = 1e-3
CHECK_BLOCK = 1 << 20   # samples per block when checking


class AudioError(Exception):
    """A file that cannot be used; ``str()`` is one line: "PATH: problem"."""

    def __init__(self, path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class Note:
    """Something done to, or noticed about, a usable file.

    kind: "resampled", "downmixed", "clipped", "over_full_scale", "narrowband", "silent".
    ``key`` is what makes two notes "the same" for saying them once per run
    (e.g. every 44.1 kHz file is resampled the same way).
    """

    kind: str
    message: str
    key: tuple = ()

    def __str__(self):
        return self.message


@dataclass
class Audio:
    path: str
    samples: np.ndarray          # float32, (n,), mono at ``fs``
    fs: int
    source_fs: int
    channels: int
    subtype: str                 # libsndfile's subtype, e.g. PCM_16, PCM_24, FLOAT
    notes: List[Note] = field(default_factory=list)

    @property
    def duration(self) -> float:
        return len(self.samples) / self.fs


def _describe_exception(exc: Exception) -> str:
    msg = str(exc).strip().splitlines()
    msg = msg[-1] if msg else type(exc).__name__
    # libsndfile prefixes "Error opening 'path': " ; the path is already in our message
    if ": " in msg and msg.startswith("Error opening"):
        msg = msg.split(": ", 1)[1]
    return msg


def audio_info(path: Union[str, Path]):
    """libsndfile's info of a file that exists, is not empty and has a readable header; else AudioError."""
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "no such file")
    if p.is_dir():
        raise AudioError(path, "is a directory, not an audio file")
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise AudioError(path, f"cannot read: {exc.strerror or exc}") from None
    if size == 0:
        raise AudioError(path, "empty file (0 bytes)")
    try:
        info = soundfile.info(str(p))
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        if p.suffix.lower() == ".mp3" and "MPEG" not in soundfile.available_formats():
            raise AudioError(path, f"MP3 is not supported by this libsndfile ({soundfile.__libsndfile_version__}, "
                                   f"built without MPEG); convert it, e.g. ffmpeg -i IN.mp3 OUT.flac") from None
        raise AudioError(path, f"not a readable audio file ({_describe_exception(exc)})") from None
    return info


def read_audio(path: Union[str, Path]):
    """(samples float32 (n, channels), rate, info) straight from the file; AudioError if unusable."""
    info = audio_info(path)
    try:
        data, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001
        raise AudioError(path, f"audio data cannot be decoded ({_describe_exception(exc)})") from None
    return data, rate, info


def wav_missing_bytes(path) -> int:
    """How many bytes of the RIFF/WAVE 'data' chunk its header announces but the file lacks."""
    import struct

    try:
        with open(path, "rb") as f:
            head = f.read(12)
            if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
                return 0
            size = Path(path).stat().st_size
            pos = 12
            while pos + 8 <= size:
                f.seek(pos)
                cid, n = struct.unpack("<4sI", f.read(8))
                if cid == b"data":
                    if n == 0xFFFFFFFF or n == 0:  # streamed WAV: size unknown
                        return 0
                    return max(0, n - (size - pos - 8))
                pos += 8 + n + (n & 1)
    except OSError:
        return 0
    return 0


class _SampleStats:
    """NaN/Inf count, peak and full-scale count, accumulated block by block."""

    def __init__(self):
        self.n = self.values = self.bad = self.at_full = 0
        self.first_bad = None
        self.peak = 0.0

    def update(self, block: np.ndarray):
        """block: (frames, channels) float32."""
        nonfinite = ~np.isfinite(block).all(axis=1)
        if nonfinite.any():
            self.bad += int((~np.isfinite(block)).sum())
            if self.first_bad is None:
                self.first_bad = self.n + int(np.argmax(nonfinite))
        else:
            mag = np.abs(block)
            self.peak = max(self.peak, float(mag.max()))
            self.at_full += int((mag >= FULL_SCALE).sum())
        self.n += block.shape[0]
        self.values += block.size

    def finish(self, path, rate: int, info=None) -> List[Note]:
        """Raise AudioError for unusable samples; notes about usable ones."""
        notes: List[Note] = []
        if self.n == 0:
            raise AudioError(path, "no samples (the file holds a header but 0 samples of audio)")
        if rate <= 0:
            raise AudioError(path, f"invalid sample rate {rate}")
        if self.bad:
            raise AudioError(path, f"{self.bad} NaN/Inf sample{'s' if self.bad > 1 else ''} "
                                   f"(first at {self.first_bad / rate:.3f} s)")
        if info is not None and info.format == "WAV":
            missing = wav_missing_bytes(path)
            if missing:
                notes.append(Note("truncated", f"{path}: truncated: the WAV header announces {missing} more "
                                               f"bytes of audio than the file holds; transcribing the "
                                               f"{self.n / rate:.2f} s that are there"))
        if self.peak == 0.0:
            notes.append(Note("silent", f"{path}: every sample is 0 (silence)"))
        elif self.peak > 1.0 + 1e-6:
            notes.append(Note("over_full_scale",
                              f"{path}: float samples reach {self.peak:.3g}, beyond full scale [-1, 1]; "
                              f"levels differ from what a model trained on integer audio heard"))
        elif self.at_full and self.at_full >= CLIPPED_FRACTION * self.values:
            notes.append(Note("clipped", f"{path}: clipped ({100 * self.at_full / self.values:.2g}% of samples "
                                         f"at full scale); transcribed anyway, accuracy may suffer"))
        return notes


def check_samples(path, data: np.ndarray, rate: int, info=None) -> List[Note]:
    """Errors (raised) and notes (returned) about samples (frames, channels) as read."""
    stats = _SampleStats()
    for i in range(0, data.shape[0], CHECK_BLOCK):
        stats.update(data[i:i + CHECK_BLOCK])
    return stats.finish(path, rate, info)


def resample(samples: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed-sinc), float32 in and out."""
    if fs_in == fs_out:
        return samples
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
                      fs_in, fs_out).numpy()


def load_audio(path: Union[str, Path], fs: Optional[int] = None, channels: Optional[int] = None) -> Audio:
    """Read, check and convert one file. Raises AudioError (one line) for an unusable file.

    fs: the rate to return (None: the file's own). channels: require this many
    channels instead of downmixing (None: downmix any count). The file is read
    in blocks, each checked and downmixed as it comes, so the only full-length
    arrays are the mono samples (and their resampled copy).
    """
    info = audio_info(path)
    nch, rate = info.channels, info.samplerate
    if channels is not None and nch != channels:
        raise AudioError(path, f"{nch} channels, expected {channels}")
    stats = _SampleStats()
    mono = np.empty(max(int(info.frames), 0), dtype=np.float32)
    pos = 0
    try:
        with soundfile.SoundFile(str(path)) as f:
            for block in f.blocks(blocksize=CHECK_BLOCK, dtype="float32", always_2d=True):
                stats.update(block)
                if pos + len(block) > len(mono):  # the header under-counted (some compressed formats)
                    mono = np.concatenate([mono[:pos], np.empty(max(len(mono), len(block)), np.float32)])
                mono[pos:pos + len(block)] = block[:, 0] if nch == 1 else block.mean(axis=1, dtype=np.float32)
                pos += len(block)
    except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
        raise AudioError(path, f"audio data cannot be decoded ({_describe_exception(exc)})") from None
    mono = mono[:pos]
    notes = stats.finish(path, rate, info)
    conv: List[Note] = []
    if nch > 1:
        conv.append(Note("downmixed", f"{nch}-channel audio is downmixed to mono (mean of the channels)",
                         key=("downmixed", nch)))
    if fs is not None and rate != fs:
        mono = resample(mono, rate, fs)
        conv.append(Note("resampled", f"{rate} Hz audio is resampled to the model's {fs} Hz",
                         key=("resampled", rate, fs)))
        if rate < fs:
            conv.append(Note("narrowband", f"{rate} Hz audio has nothing above {rate // 2} Hz; a model "
                                           f"trained on {fs} Hz speech may be less accurate on it",
                             key=("narrowband", rate, fs)))
        if mono.size == 0:
            raise AudioError(path, f"too short to resample ({pos} samples at {rate} Hz)")
    return Audio(str(path), np.ascontiguousarray(mono), fs or rate, rate, nch, info.subtype, notes + conv)
