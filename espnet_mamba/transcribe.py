"""Transcribe audio files of any length with a trained model.

    python -m espnet_mamba.transcribe --model exp/asr_x/asr_model.zip talk.flac calls/ \
        [--output text|json|ctm|srt] [--beam_size 10] [--ctc_weight 0.3] [--device cpu]

MODEL is a packed model (``asr_model.zip`` from the recipe's stage 14, or any
``espnet2.bin.pack asr`` archive) or an experiment directory (``config.yaml``
and a ``.pth``: ``valid.acc.ave.pth``, else ``valid.acc.best.pth``, else the
newest ``*.pth``; ``--model_file`` picks one). A directory of audio is searched
recursively for audio files by extension.

Audio: anything soundfile (libsndfile) reads, any rate (resampled to the
model's, said once), any channel count (downmixed, said), 8-32-bit integer or
float samples. A file that cannot be used (missing, empty, not audio,
truncated, NaN samples, too short for the model) is named with its problem on
one line and skipped; the others are still transcribed and the exit status is
1. Clipped audio is transcribed with a warning.

Long recordings are decoded without external segmentation: the encoder runs
over overlapping windows (``--window_s``), the CTC posteriors cut the
recording at pauses (runs of frames where CTC says blank or only a word
boundary: every run of ``--pause_s`` or more, and the longest runs of a piece
still longer than ``--max_segment_s``) into segments, each segment is decoded with joint CTC/attention beam
search, and the texts are joined. Word times (``ctm``, ``srt``, ``json``) come
from a CTC forced alignment of each segment's tokens. A recording no longer
than ``--max_segment_s`` is decoded whole, exactly as ESPnet's ``Speech2Text``.

Outputs (standard output, or ``-o FILE``): ``text``: the transcript of a single
file alone, else one "PATH<TAB>TEXT" line per file; ``json``: per file its
text, duration, segments with word times, notes and error; ``ctm``: "REC 1
START DUR WORD" per word; ``srt``: subtitles from the word times. Errors and
notes go to standard error as "error: PATH: problem" / "note: ...".

In Python::

    from espnet_mamba.transcribe import transcribe, Transcriber
    results = transcribe(["a.wav", "dir/"], model="exp/asr_x/asr_model.zip")
    for r in results:
        print(r.path, r.error or r.text)
"""

import argparse
import hashlib
import json
import logging
import os
import sys
import warnings
from contextlib import redirect_stdout
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, List, Optional, Sequence, Tuple, Union

import numpy as np

from espnet_mamba.audio import AudioError, Note, load_audio
from espnet_mamba.longform import ctc_word_times, split_at_pauses, window_plan

logger = logging.getLogger("espnet_mamba.transcribe")

AUDIO_EXTENSIONS = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".sph", ".nist", ".aiff", ".aif",
                    ".aifc", ".au", ".snd", ".w64", ".caf", ".rf64", ".wv", ".voc", ".htk", ".sd2"}
MODEL_FILE_PREFERENCE = ("valid.acc.ave.pth", "valid.acc.best.pth", "valid.loss.ave.pth",
                         "valid.loss.best.pth")


class ModelError(Exception):
    pass


# ---- results ------------------------------------------------------------------------------

@dataclass
class Word:
    word: str
    start: float
    end: float


@dataclass
class Segment:
    start: float
    end: float
    text: str
    words: Optional[List[Word]] = None   # None: no CTC alignment for this segment


@dataclass
class Result:
    path: str
    text: Optional[str] = None
    duration: Optional[float] = None
    segments: List[Segment] = field(default_factory=list)
    notes: List[str] = field(default_factory=list)
    error: Optional[str] = None          # one line, "PATH: problem"; None when transcribed

    @property
    def ok(self) -> bool:
        return self.error is None

    def to_dict(self) -> dict:
        return asdict(self)


# ---- the model ----------------------------------------------------------------------------

def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "espnet_mamba" / "models"


def _pick_model_file(d: Path) -> Path:
    for name in MODEL_FILE_PREFERENCE:
        if (d / name).is_file():
            return d / name
    pths = sorted(d.glob("*.pth"), key=lambda p: p.stat().st_mtime)
    pths = [p for p in pths if p.name != "checkpoint.pth"]
    if not pths:
        raise ModelError(f"{d}: no model file (*.pth) in the experiment directory")
    return pths[-1]


def _absolutize_paths(config: Path, roots: Sequence[Path]) -> Path:
    """config.yaml whose relative file paths (stats, bpe model) resolve from any directory.

    A recipe's config names files relative to the recipe directory
    (``exp/asr_stats_.../feats_stats.npz``); when one is not found from the
    current directory but is from the experiment's parents, the config is
    rewritten (into the cache) with absolute paths.
    """
    import yaml

    d = yaml.safe_load(config.read_text(encoding="utf-8"))
    changed = False

    def fix(v):
        nonlocal changed
        if isinstance(v, dict):
            return {k: fix(x) for k, x in v.items()}
        if isinstance(v, list):
            return [fix(x) for x in v]
        if isinstance(v, str) and "/" in v and not os.path.isabs(v) and "\n" not in v and not Path(v).exists():
            for r in roots:
                if (r / v).exists():
                    changed = True
                    return str((r / v).resolve())
        return v

    d = fix(d)
    if not changed:
        return config
    key = hashlib.sha1(str(config.resolve()).encode() + str(config.stat().st_mtime_ns).encode()).hexdigest()[:16]
    out = _cache_dir() / "configs" / key / "config.yaml"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(d), encoding="utf-8")
    return out


def resolve_model(model: Union[str, Path], model_file: Optional[Union[str, Path]] = None) -> Tuple[Path, Path]:
    """(config.yaml, model .pth) for a packed archive or an experiment directory."""
    m = Path(model)
    if not m.exists():
        raise ModelError(f"{m}: no such model (give a packed asr_model.zip or an exp dir)")
    if m.is_dir():
        if not (m / "config.yaml").is_file():
            packed = sorted(m.glob("*.zip"))
            if len(packed) == 1:
                return resolve_model(packed[0], model_file)
            raise ModelError(f"{m}: no config.yaml (an experiment directory holds config.yaml and a .pth)")
        pth = Path(model_file) if model_file else _pick_model_file(m)
        if not pth.is_file() and not pth.is_absolute():
            pth = m / pth
        if not pth.is_file():
            raise ModelError(f"{pth}: no such model file")
        roots = [Path.cwd(), m, m.parent, m.parent.parent]
        return _absolutize_paths(m / "config.yaml", roots), pth
    from espnet_mamba.asr.espnet_compat import unpack

    st = m.stat()
    key = hashlib.sha1(f"{m.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:16]
    out = _cache_dir() / key
    try:
        files = unpack(str(m), str(out))
    except Exception as exc:  # noqa: BLE001 - tarfile/zipfile/yaml errors
        raise ModelError(f"{m}: not a packed ESPnet model ({type(exc).__name__}: {exc})") from None
    if "asr_train_config" not in files or "asr_model_file" not in files:
        raise ModelError(f"{m}: the archive holds no ASR model (found {sorted(files)})")
    return Path(files["asr_train_config"]), Path(model_file or files["asr_model_file"])


def _model_fs(train_args) -> int:
    conf = getattr(train_args, "frontend_conf", None) or {}
    fs = conf.get("fs", 16000)
    if isinstance(fs, str):
        import humanfriendly

        fs = humanfriendly.parse_size(fs)
    return int(fs)


# ---- the transcriber ------------------------------------------------------------------------

def _default_report(level: str, message: str):
    (logger.error if level == "error" else logger.warning)(message)


class Transcriber:
    """A loaded model and the decoding options; call :meth:`transcribe_file` per file.

    model: packed archive, experiment directory, or an ``espnet2`` ``Speech2Text``.
    max_segment_s: longer recordings are cut at pauses into segments this long at most.
    pause_s: a run of CTC blank frames at least this long is always a cut (long-form only).
    window_s, window_overlap_s: the first pass's encoder window over a long recording (bounded
        memory; near the lengths the model was trained on, its CTC is most reliable).
    reencode: encode each segment again on its own (as decoding utterance by utterance
        does) instead of slicing the windowed encoder output.
    fs: the model's sample rate (default: its config's frontend_conf fs, else ESPnet's 16000).
    decode options (beam_size, ctc_weight, penalty, maxlenratio, ...) go to ``Speech2Text``.
    """

    def __init__(self, model, model_file=None, device: Optional[str] = None, beam_size: int = 10,
                 ctc_weight: float = 0.3, max_segment_s: float = 20.0, pause_s: float = 0.5,
                 window_s: float = 30.0, window_overlap_s: float = 5.0, reencode: bool = True,
                 progress: bool = False, report: Callable[[str, str], None] = _default_report,
                 fs: Optional[int] = None, **decode_options):
        if max_segment_s <= 0 or pause_s <= 0:
            raise ValueError(f"max_segment_s ({max_segment_s}) and pause_s ({pause_s}) must be positive")
        if not 0 <= window_overlap_s < max(window_s, max_segment_s):
            raise ValueError(f"window_overlap_s ({window_overlap_s}) must be in [0, window_s ({window_s}))")
        from espnet_mamba.asr.espnet_compat import Speech2Text

        if isinstance(model, Speech2Text):
            device = model.device
        if device is None:
            import torch

            device = "cuda" if torch.cuda.is_available() else "cpu"
        if isinstance(model, Speech2Text):
            self.s2t = model
        else:
            config, pth = resolve_model(model, model_file)
            opts = dict(beam_size=beam_size, ctc_weight=ctc_weight, lm_weight=0.0, nbest=1)
            opts.update(decode_options)
            try:
                self.s2t = Speech2Text(str(config), str(pth), device=device, **opts)
            except ModelError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise ModelError(f"{model}: cannot load the model ({type(exc).__name__}: {exc})") from None
        self.device = device
        self.model = self.s2t.asr_model
        self.fs = int(fs) if fs else _model_fs(self.s2t.asr_train_args)
        self.max_segment_s = max_segment_s
        self.pause_s = pause_s
        self.window_s = max(window_s, max_segment_s)
        self.window_overlap_s = window_overlap_s
        self.reencode = reencode
        self.progress = progress
        self.report = report
        self._said = set()
        self._min_samples = None
        self._frame_shift = None
        token_type = getattr(self.s2t.asr_train_args, "token_type", None)
        self._word_tokens = token_type == "word"
        # frames where CTC says blank or only a word boundary (<space>, a lone U+2581) are pause
        # frames: a model may emit a space in silence between utterances
        token_list = list(getattr(self.model, "token_list", []) or [])
        self._pause_ids = np.array(sorted({int(self.model.blank_id)} | {
            i for i, tok in enumerate(token_list) if tok in ("<space>", "\u2581")}))

    # -- messages
    def _note(self, note: Note, result: Result):
        result.notes.append(note.message)
        if note.key:
            if note.key in self._said:
                return
            self._said.add(note.key)
            self.report("note", note.message + " (said once)")
        else:
            self.report("warning", note.message)

    def _progress(self, items, desc: str, unit: str, leave: bool = False):
        """tqdm's bar on standard error when progress is on and there is more than one item."""
        if not self.progress or len(items) < 2:
            return items
        try:
            from tqdm import tqdm
        except ImportError:
            return items
        return tqdm(items, desc=desc, unit=unit, leave=leave, file=sys.stderr)

    # -- model pieces
    def _encode(self, samples: np.ndarray):
        import torch

        speech = torch.as_tensor(samples, dtype=getattr(torch, self.s2t.dtype)).unsqueeze(0).to(self.device)
        lengths = torch.tensor([speech.shape[1]], dtype=torch.long, device=self.device)
        with torch.no_grad():
            enc, lens = self.model.encode(speech, lengths)
        if isinstance(enc, tuple):  # (output, intermediate CTC outputs)
            enc = enc[0]
        return enc[0, : int(lens[0])]

    def min_samples(self) -> int:
        """The fewest samples the model's front end and encoder turn into at least one frame."""
        if self._min_samples is None:
            lo, hi = 1, self.fs
            while lo < hi:
                mid = (lo + hi) // 2
                try:
                    ok = self._encode(np.zeros(mid, dtype=np.float32)).shape[0] > 0
                except Exception:  # noqa: BLE001 - too short fails in the frontend or subsampling
                    ok = False
                lo, hi = (lo, mid) if ok else (mid + 1, hi)
            self._min_samples = lo
        return self._min_samples

    def frame_shift(self) -> float:
        """Seconds between encoder frames (front-end hop times subsampling), measured once."""
        if self._frame_shift is None:
            n1, n2 = 2 * self.fs, 10 * self.fs
            l1 = self._encode(np.zeros(n1, dtype=np.float32)).shape[0]
            l2 = self._encode(np.zeros(n2, dtype=np.float32)).shape[0]
            self._frame_shift = (n2 - n1) / self.fs / max(l2 - l1, 1)
        return self._frame_shift

    def _decode_enc(self, enc) -> Tuple[str, List[int], List[str]]:
        import torch

        with torch.no_grad():
            hyps = self.s2t._decode_single_sample(enc)  # what Speech2Text.__call__ does after encoding
        if not hyps:   # the beam search ended no hypothesis (ESPnet warns); nothing heard
            return "", [], []
        text, tokens, token_int, _ = hyps[0]
        if text is None:
            text = " ".join(tokens)
        return text, list(token_int), list(tokens)

    def _detokenize(self, tokens: List[str]) -> str:
        tok = self.s2t.tokenizer
        return tok.tokens2text(tokens) if tok is not None else "".join(tokens)

    def _words(self, enc, token_int, tokens, offset: float) -> Optional[List[Word]]:
        import torch

        if enc.shape[0] == 0:
            return None
        with torch.no_grad():
            lp = self.model.ctc.log_softmax(enc.unsqueeze(0))[0].float().cpu()
        words = ctc_word_times(lp, token_int, tokens, self._detokenize, blank=self.model.blank_id,
                               frame_seconds=self.frame_shift(), offset=offset,
                               each_token_a_word=self._word_tokens)
        return None if words is None else [Word(w, round(s, 3), round(e, 3)) for w, s, e in words]

    # -- one recording
    def transcribe_samples(self, samples: np.ndarray, name: str = "<array>") -> Result:
        """Transcribe mono float samples at ``self.fs``. Raises AudioError if too short."""
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        duration = len(samples) / self.fs
        result = Result(path=name, duration=round(duration, 3))
        if len(samples) < self.fs and len(samples) < self.min_samples():
            raise AudioError(name, f"too short ({len(samples)} samples, {duration:.3f} s; the model needs at "
                                   f"least {self.min_samples()} samples at {self.fs} Hz)")
        if duration <= self.max_segment_s:
            enc = self._encode(samples)
            text, token_int, tokens = self._decode_enc(enc)
            result.segments = [Segment(0.0, round(duration, 3), text,
                                       self._words(enc, token_int, tokens, 0.0))]
        else:
            result.segments = self._long_form(samples, name)
        result.text = " ".join(s.text for s in result.segments if s.text)
        return result

    def _first_pass(self, samples: np.ndarray):
        """Per encoder frame of the whole recording: centre time (s), pause? (CTC says blank or
        a word boundary), encoder output (when not re-encoding)."""
        import torch

        n = len(samples)
        shift = self.frame_shift() * self.fs
        plan = window_plan(n, int(self.window_s * self.fs), int(self.window_overlap_s * self.fs))
        times, blank, encs = [], [], []
        for w in self._progress(plan, "encoding", "window"):
            enc = self._encode(samples[w.start:w.end])
            L = enc.shape[0]
            if L == 0:
                continue
            centre = w.start + (np.arange(L) + 0.5) * shift
            keep = (centre >= w.keep_start) & (centre < w.keep_end)
            with torch.no_grad():
                best = self.model.ctc.argmax(enc.unsqueeze(0))[0].cpu().numpy()
            times.append(centre[keep] / self.fs)
            blank.append(np.isin(best[keep], self._pause_ids))
            if not self.reencode:
                encs.append(enc[torch.as_tensor(keep, device=enc.device)])
        enc_all = torch.cat(encs) if encs else None
        return np.concatenate(times), np.concatenate(blank), enc_all

    def _long_form(self, samples: np.ndarray, name: str) -> List[Segment]:
        times, is_blank, enc_all = self._first_pass(samples)
        duration = len(samples) / self.fs
        frame_s = self.frame_shift()
        pieces = split_at_pauses(is_blank, max(1, int(self.max_segment_s / frame_s)),
                                 max(1, int(round(self.pause_s / frame_s))))
        bounds = [0.0] + [float((times[a - 1] + times[a]) / 2) for a, _ in pieces[1:]] + [duration]
        segments = []
        for i in self._progress(range(len(pieces)), f"{Path(name).name}: decoding", "segment"):
            a, b = pieces[i]
            if is_blank[a:b].all():      # CTC hears no word in it: silence between utterances
                continue
            t0, t1 = bounds[i], bounds[i + 1]
            if self.reencode:
                seg = samples[int(round(t0 * self.fs)):int(round(t1 * self.fs))]
                if len(seg) < self.min_samples():
                    continue
                enc = self._encode(seg)
            else:
                enc = enc_all[a:b]
            text, token_int, tokens = self._decode_enc(enc)
            segments.append(Segment(round(t0, 3), round(t1, 3), text,
                                    self._words(enc, token_int, tokens, t0)))
        return segments

    def transcribe_file(self, path: Union[str, Path]) -> Result:
        """Load, check and transcribe one file. Raises AudioError (one line) for a bad file."""
        audio = load_audio(path, fs=self.fs)
        holder = Result(path=str(path))
        for note in audio.notes:
            self._note(note, holder)
        result = self.transcribe_samples(audio.samples, str(path))
        result.notes = holder.notes
        return result

    def __call__(self, inputs: Iterable[Union[str, Path]]) -> List[Result]:
        files, results = expand_inputs(inputs)
        for r in results:
            self.report("error", r.error)
        for f in self._progress(files, "files", "file", leave=True):
            try:
                r = self.transcribe_file(f)
            except AudioError as exc:
                r = Result(path=str(f), error=str(exc))
            except Exception as exc:  # noqa: BLE001 - one file's failure must not stop the others
                if os.environ.get("ESPNET_MAMBA_TRACEBACK"):
                    raise
                r = Result(path=str(f), error=f"{f}: decoding failed ({type(exc).__name__}: "
                                               f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''})")
            if r.error:
                self.report("error", r.error)
            results.append(r)
        order = {str(p): i for i, p in enumerate(files)}
        results.sort(key=lambda r: order.get(r.path, -1))
        return results


def expand_inputs(inputs: Iterable[Union[str, Path]]) -> Tuple[List[str], List[Result]]:
    """Files to transcribe (directories searched for audio by extension) and errors for missing paths."""
    files, errors = [], []
    for x in inputs:
        p = Path(x)
        if p.is_dir():
            found = sorted(str(f) for f in p.rglob("*") if f.is_file() and f.suffix.lower() in AUDIO_EXTENSIONS)
            if not found:
                errors.append(Result(path=str(p), error=f"{p}: directory holds no audio files "
                                                        f"({', '.join(sorted(AUDIO_EXTENSIONS)[:6])}, ...)"))
            files.extend(found)
        elif p.exists():
            files.append(str(p))
        else:
            errors.append(Result(path=str(p), error=f"{p}: no such file or directory"))
    return files, errors


def transcribe(inputs: Union[str, Path, Iterable[Union[str, Path]]], model, **options) -> List[Result]:
    """Transcribe files and directories; one :class:`Result` per file, bad files with ``error`` set.

    Same behaviour as the command line: bad files are reported (through
    ``report``, default: the ``espnet_mamba.transcribe`` logger) and skipped,
    the rest transcribed. ``model``: archive, exp dir, Speech2Text or Transcriber.
    """
    if isinstance(inputs, (str, Path)):
        inputs = [inputs]
    t = model if isinstance(model, Transcriber) else Transcriber(model, **options)
    return t(inputs)


# ---- output formats ------------------------------------------------------------------------

def _recording_id(path: str) -> str:
    return Path(path).stem.replace(" ", "_") or "rec"


def _srt_time(t: float) -> str:
    ms = int(round(t * 1000))
    h, ms = divmod(ms, 3600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def captions(result: Result, max_seconds: float = 6.0, max_words: int = 12, max_gap: float = 1.0):
    """(start, end, text) subtitle cues: words grouped up to max_seconds/max_words, split at gaps."""
    cues = []
    for seg in result.segments:
        if seg.words is None:
            if seg.text:
                cues.append((seg.start, seg.end, seg.text))
            continue
        cur = []
        for w in seg.words:
            if cur and (w.end - cur[0].start > max_seconds or len(cur) >= max_words
                        or w.start - cur[-1].end > max_gap):
                cues.append((cur[0].start, cur[-1].end, " ".join(x.word for x in cur)))
                cur = []
            cur.append(w)
        if cur:
            cues.append((cur[0].start, cur[-1].end, " ".join(x.word for x in cur)))
    return cues


def format_results(results: List[Result], output: str, single: bool = False) -> str:
    ok = [r for r in results if r.ok]
    if output == "json":
        return json.dumps([r.to_dict() for r in results], indent=2, ensure_ascii=False) + "\n"
    if output == "text":
        if single and len(ok) == 1:
            return ok[0].text + "\n"
        return "".join(f"{r.path}\t{r.text}\n" for r in ok)
    if output == "ctm":
        lines = []
        for r in ok:
            rec = _recording_id(r.path)
            for seg in r.segments:
                for w in seg.words or []:
                    lines.append(f"{rec} 1 {w.start:.3f} {max(w.end - w.start, 0.0):.3f} {w.word}\n")
        return "".join(lines)
    if output == "srt":
        blocks = []
        for r in ok:
            if len(ok) > 1:
                blocks.append(f"NOTE {r.path}\n\n")
            for i, (s, e, text) in enumerate(captions(r), 1):
                blocks.append(f"{i}\n{_srt_time(s)} --> {_srt_time(e)}\n{text}\n\n")
        return "".join(blocks)
    raise ValueError(f"unknown output format {output!r}")


# ---- command line -------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m espnet_mamba.transcribe", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("inputs", nargs="+", metavar="FILE_OR_DIR")
    p.add_argument("--model", required=True, help="packed asr_model.zip or experiment directory")
    p.add_argument("--model_file", help="which .pth of an experiment directory (default: valid.acc.ave.pth, ...)")
    p.add_argument("--output", choices=["text", "json", "ctm", "srt"], default="text")
    p.add_argument("--output_file", "-o", help="write here instead of standard output")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:N (default: cuda when available)")
    p.add_argument("--beam_size", type=int, default=10)
    p.add_argument("--ctc_weight", type=float, default=0.3)
    p.add_argument("--penalty", type=float, default=0.0)
    p.add_argument("--decode_config", help="YAML of Speech2Text options (beam_size, ctc_weight, ...)")
    p.add_argument("--max_segment_s", type=float, default=20.0,
                   help="longer recordings are cut at pauses into segments of at most this")
    p.add_argument("--pause_s", type=float, default=0.5, help="a CTC blank run this long is always a cut")
    p.add_argument("--window_s", type=float, default=30.0,
                   help="encoder window of the first pass over long recordings (bounds its memory)")
    p.add_argument("--window_overlap_s", type=float, default=5.0)
    p.add_argument("--no_reencode", action="store_true",
                   help="decode segments from the windowed encoder output instead of encoding each again")
    p.add_argument("--fs", type=int, default=None,
                   help="the model's sample rate, when its config does not give frontend_conf fs "
                        "(default: that, else 16000)")
    p.add_argument("--no_progress", action="store_true")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    a = build_parser().parse_args(argv)
    out = sys.stdout
    # ESPnet and its dependencies print notices on standard output while importing and
    # loading; standard output is for the transcripts alone
    with redirect_stdout(sys.stderr):
        return _main(a, out)


def _main(a, out) -> int:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"(torch|espnet|torchaudio)")
    logging.basicConfig(level=logging.ERROR, format="%(message)s")
    for name in ("espnet_mamba.transcribe",):
        logging.getLogger(name).setLevel(logging.INFO)

    def report(level, message):
        try:
            from tqdm import tqdm   # keeps a progress bar intact below the message

            tqdm.write(f"{level}: {message}", file=sys.stderr)
        except ImportError:
            print(f"{level}: {message}", file=sys.stderr, flush=True)

    options = {}
    if a.decode_config:
        import yaml

        options.update(yaml.safe_load(Path(a.decode_config).read_text()) or {})
    options.setdefault("beam_size", a.beam_size)
    options.setdefault("ctc_weight", a.ctc_weight)
    options.setdefault("penalty", a.penalty)
    try:
        t = Transcriber(a.model, model_file=a.model_file, device=a.device, max_segment_s=a.max_segment_s,
                        pause_s=a.pause_s, window_s=a.window_s, window_overlap_s=a.window_overlap_s,
                        reencode=not a.no_reencode, progress=not a.no_progress and sys.stderr.isatty(),
                        report=report, fs=a.fs, **options)
    except (ModelError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    results = t(a.inputs)
    single = len(a.inputs) == 1 and not Path(a.inputs[0]).is_dir()
    text = format_results(results, a.output, single=single)
    if a.output_file:
        Path(a.output_file).write_text(text, encoding="utf-8")
    else:
        out.write(text)
        out.flush()
    failed = [r for r in results if not r.ok]
    if failed:
        print(f"error: {len(failed)} of {len(results)} input(s) failed (listed above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
