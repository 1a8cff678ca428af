"""Kaldi-style data directories for the recipe stages 2-4.

    python -m espnet_mamba.recipe.data_dir validate DIR
    python -m espnet_mamba.recipe.data_dir speed_perturb SRC DST --factors 0.9 1.0 1.1
    python -m espnet_mamba.recipe.data_dir format SRC DST --fs 16000 [--nj N] [--skip_bad_utts true]
    python -m espnet_mamba.recipe.data_dir filter SRC DST --fs 16000 --min_wav_duration 0.1 \
        --max_wav_duration 20

A directory holds wav.scp ("utt path" or "rec cmd |"), text, utt2spk,
optionally segments ("utt rec start end", seconds). ``format`` writes a dump
directory that ESPnet reads as ``wav.scp,speech,sound``: entries that are plain
mono audio files at the right sample rate are referenced in place; pipes,
segments and other rates are written out as 16-bit WAV. Every recording is read
once (``--nj`` processes) and its samples checked: missing, empty,
undecodable, NaN/Inf samples, another channel count than ``--audio_channels``
(default 1), another rate with ``--no_resample``. All problems are reported
together (utterance, file, problem); ``--skip_bad_utts true`` moves those
utterances to DST/removed_utts and formats the rest instead.
"""

import argparse
import io
import json
import multiprocessing
import os
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

from espnet_mamba.audio import AudioError, read_audio, resample
from espnet_mamba.recipe.cli import run_reporting

REQUIRED = ("wav.scp", "text", "utt2spk")


class DataError(Exception):
    pass


def read_table(path: Path, allow_empty_value=False) -> Dict[str, str]:
    """A Kaldi table ('key value' lines; a text file with ``allow_empty_value``) -> {key: value}."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    out = {}
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        if len(parts) < 2 and not allow_empty_value:
            raise DataError(f"{path}:{n}: expected 'key value', got {line!r}")
        if parts[0] in out:
            raise DataError(f"{path}:{n}: key {parts[0]!r} appears twice")
        out[parts[0]] = parts[1].strip() if len(parts) > 1 else ""
    return out


def write_table(path: Path, table: Dict[str, str]):
    path.write_text("".join(f"{k} {v}\n" for k, v in sorted(table.items())), encoding="utf-8")


def validate(d: Path) -> Dict[str, Dict[str, str]]:
    if not d.is_dir():
        raise DataError(f"{d}: data directory does not exist (did stage 1, local/data.sh, run?)")
    missing = [f for f in REQUIRED if not (d / f).is_file()]
    if missing:
        raise DataError(f"{d}: missing {', '.join(missing)} (a Kaldi data dir needs {', '.join(REQUIRED)})")
    tables = {f: read_table(d / f, allow_empty_value=(f == "text")) for f in REQUIRED}
    if (d / "segments").is_file():
        tables["segments"] = read_table(d / "segments")
        utts = set(tables["segments"])
        recs = {v.split()[0] for v in tables["segments"].values()}
        unknown = sorted(recs - set(tables["wav.scp"]))
        if unknown:
            raise DataError(f"{d}/segments: recording {unknown[0]!r} is not in wav.scp")
    else:
        utts = set(tables["wav.scp"])
    for f in ("text", "utt2spk"):
        if set(tables[f]) != utts:
            extra = sorted(set(tables[f]) ^ utts)
            raise DataError(f"{d}/{f}: utterance ids differ from {'segments' if 'segments' in tables else 'wav.scp'} "
                            f"(e.g. {extra[0]!r}); run utils-style sorting/fixing before formatting")
    if not utts:
        raise DataError(f"{d}: no utterances")
    return tables


def write_spk2utt(d: Path, utt2spk: Dict[str, str]):
    spk2utt: Dict[str, List[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        spk2utt.setdefault(spk, []).append(utt)
    write_table(d / "spk2utt", {s: " ".join(u) for s, u in spk2utt.items()})


# ---- speed perturbation -------------------------------------------------------

def speed_perturb(src: Path, dst: Path, factors: List[float]):
    t = validate(src)
    dst.mkdir(parents=True, exist_ok=True)
    wav, text, utt2spk, segs = {}, {}, {}, {}
    for f in factors:
        prefix = "" if f == 1.0 else f"sp{f}-"
        for rec, entry in t["wav.scp"].items():
            if f == 1.0:
                wav[rec] = entry
            else:
                source = f"{entry[:-1].strip()} | sox -t wav - -t wav -" if entry.endswith("|") else f"sox {entry} -t wav -"
                wav[prefix + rec] = f"{source} speed {f} |"
        for utt in t["text"]:
            text[prefix + utt] = t["text"][utt]
            utt2spk[prefix + utt] = prefix + t["utt2spk"][utt]
        for utt, v in t.get("segments", {}).items():
            rec, start, end = v.split()
            segs[prefix + utt] = f"{prefix + rec} {float(start) / f:.3f} {float(end) / f:.3f}"
    write_table(dst / "wav.scp", wav)
    write_table(dst / "text", text)
    write_table(dst / "utt2spk", utt2spk)
    if segs:
        write_table(dst / "segments", segs)
    write_spk2utt(dst, utt2spk)


# ---- format ----------------------------------------------------------------------------

def _read_entry(entry: str) -> Tuple[np.ndarray, int, Optional[str]]:
    """(samples (n, channels) float32, rate, libsndfile subtype) of a wav.scp entry; AudioError if unusable."""
    if entry.endswith("|"):
        out = subprocess.run(["bash", "-c", entry[:-1]], capture_output=True)
        if out.returncode != 0:
            err = out.stderr.decode(errors="replace").strip().splitlines()
            raise AudioError(entry, f"command failed (exit {out.returncode}"
                                    f"{': ' + err[-1] if err else ''})")
        if not out.stdout:
            raise AudioError(entry, "command wrote no audio")
        try:
            data, rate = soundfile.read(io.BytesIO(out.stdout), dtype="float32", always_2d=True)
        except Exception as exc:  # noqa: BLE001 - libsndfile raises several types
            raise AudioError(entry, f"command's output is not readable audio ({str(exc).strip()})") from None
        return data, rate, None
    data, rate, info = read_audio(entry)
    return data, rate, info.subtype


def _format_job(job):
    """Read one recording once; write/reference its utterances. Never raises.

    job: (entry, [(utt, (start, end) or None, out_path)], fs, channels, allow_resample).
    Returns (done: [(utt, path, n_samples)], problems: [(utt, entry, problem)], notes: [str]).
    """
    entry, utts, fs, channels, allow_resample = job
    done, problems, notes = [], [], []
    try:
        data, rate, subtype = _read_entry(entry)
        nch = data.shape[1]
        if data.shape[0] == 0:
            raise AudioError(entry, "no samples (0 samples of audio)")
        if channels and nch != channels:
            raise AudioError(entry, f"{nch} channels, the recipe expects {channels} (--audio_channels)")
        if rate != fs and not allow_resample:
            raise AudioError(entry, f"{rate} Hz, the recipe expects --fs {fs} (resampling is off)")
        mono = data[:, 0] if nch == 1 else data.mean(axis=1, dtype=np.float32)
        if rate != fs:
            notes.append(f"resampled {rate} Hz -> {fs} Hz")
        for utt, seg, out_path in utts:
            x = mono
            if seg is not None:
                start, end = seg
                x = mono[int(round(start * rate)):int(round(end * rate))]
                if x.size == 0:
                    problems.append((utt, entry, f"segment {start}-{end} s is empty "
                                                 f"(the recording is {len(mono) / rate:.2f} s)"))
                    continue
            bad = ~np.isfinite(x)
            if bad.any():
                first = int(np.argmax(bad))
                problems.append((utt, entry, f"{int(bad.sum())} NaN/Inf samples (first at "
                                             f"{first / rate:.3f} s{' into the segment' if seg else ''})"))
                continue
            if seg is None and rate == fs and nch == 1 and not entry.endswith("|") and subtype is not None:
                done.append((utt, entry, len(x)))   # usable as it is: referenced in place
                continue
            if rate != fs:
                x = resample(x, rate, fs)
            if x.size == 0:
                problems.append((utt, entry, "too short to resample"))
                continue
            if np.abs(x).max() > 1.0:  # keep the level; a float source beyond full scale stays float
                soundfile.write(out_path, x, fs, subtype="FLOAT")
            else:
                soundfile.write(out_path, x, fs, subtype="PCM_16")
            done.append((utt, out_path, len(x)))
    except AudioError as exc:
        problems.extend((utt, entry, exc.problem) for utt, _, _ in utts if utt not in {d[0] for d in done})
    except Exception as exc:  # noqa: BLE001 - one recording must not hide the others' problems
        first = str(exc).strip().splitlines()
        problems.extend((utt, entry, f"unexpected error: {type(exc).__name__}: {first[0] if first else ''}")
                        for utt, _, _ in utts if utt not in {d[0] for d in done})
    return done, problems, notes


def _worker_init():
    os.environ.setdefault("OMP_NUM_THREADS", "1")   # nj processes share the cores (torch reads it on import)


def format_dir(src: Path, dst: Path, fs: int, nj: int = 1, allow_resample: bool = True,
               channels: Optional[int] = 1, skip_bad_utts: bool = False) -> List[Tuple[str, str, str]]:
    """Read every recording of SRC once (``nj`` processes) and write the dump dir DST.

    Every problem (missing, empty, undecodable, NaN/Inf, wrong channel count,
    wrong rate with resampling off, empty segment) is collected; then either
    all are reported together (DataError) or, with ``skip_bad_utts``, those
    utterances go to DST/removed_utts and the rest is written. Returns the
    problems as (utterance, file, problem).
    """
    t = validate(src)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    by_rec: Dict[str, List] = {}
    if "segments" in t:
        for utt, v in t["segments"].items():
            rec, start, end = v.split()
            by_rec.setdefault(rec, []).append((utt, (float(start), float(end)),
                                               str((dst / "data" / f"{utt}.wav").resolve())))
    else:
        for utt in t["wav.scp"]:
            by_rec[utt] = [(utt, None, str((dst / "data" / f"{utt}.wav").resolve()))]
    jobs = [(t["wav.scp"][rec], utts, fs, channels, allow_resample) for rec, utts in sorted(by_rec.items())]
    if nj > 1 and len(jobs) > 1:
        # spawn, not fork: a forked child deadlocks in torch (resampling) once the parent used its threads
        with ProcessPoolExecutor(min(nj, len(jobs)), mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_worker_init) as pool:
            outs = list(pool.map(_format_job, jobs, chunksize=max(1, min(64, len(jobs) // (4 * nj)))))
    else:
        outs = [_format_job(j) for j in jobs]
    done = [d for o in outs for d in o[0]]
    problems = sorted(p for o in outs for p in o[1])
    notes: Dict[str, int] = {}
    for o in outs:
        for n in o[2]:
            notes[n] = notes.get(n, 0) + 1
    for n, count in sorted(notes.items()):
        print(f"format {src}: {n} ({count} recording{'s' if count > 1 else ''})", file=sys.stderr)
    if problems:
        table = "\n".join(f"  {u}  {f}  {p}" for u, f, p in problems)
        head = f"{src}: {len(problems)} of {len(done) + len(problems)} utterances have unusable audio " \
               f"(utterance, file, problem):\n{table}"
        if not skip_bad_utts:
            raise DataError(f"{head}\nFix or remove them, or rerun with --skip_bad_utts true to move them "
                            f"to {dst}/removed_utts and go on")
        print(f"WARNING: {head}\n  skipped (--skip_bad_utts true): listed in {dst}/removed_utts",
              file=sys.stderr)
        if not done:
            raise DataError(f"{src}: every utterance has unusable audio; nothing left to format")
    kept = {u for u, _, _ in done}
    write_table(dst / "wav.scp", {u: p for u, p, _ in done})
    write_table(dst / "utt2num_samples", {u: str(n) for u, _, n in done})
    write_table(dst / "text", {u: v for u, v in t["text"].items() if u in kept})
    write_table(dst / "utt2spk", {u: v for u, v in t["utt2spk"].items() if u in kept})
    write_spk2utt(dst, {u: v for u, v in t["utt2spk"].items() if u in kept})
    write_table(dst / "removed_utts", {u: f"unusable audio: {f}: {p}" for u, f, p in problems})
    (dst / "audio_format").write_text(f"fs={fs}\n")
    return problems


# ---- filter -----------------------------------------------------------------------

def filter_dir(src: Path, dst: Path, fs: int, min_sec: float, max_sec: float) -> Dict[str, str]:
    wav = read_table(src / "wav.scp")
    nsamp = read_table(src / "utt2num_samples")
    text = read_table(src / "text", allow_empty_value=True)
    utt2spk = read_table(src / "utt2spk")
    removed = read_table(src / "removed_utts") if (src / "removed_utts").is_file() else {}
    earlier = len(removed)
    for utt in sorted(wav):
        sec = int(nsamp[utt]) / fs
        if sec < min_sec:
            removed[utt] = f"too short ({sec:.2f} s < {min_sec} s)"
        elif sec > max_sec:
            removed[utt] = f"too long ({sec:.2f} s > {max_sec} s)"
        elif not text.get(utt, "").strip():
            removed[utt] = "empty transcript"
    keep = [u for u in sorted(wav) if u not in removed]
    removed_here = len(removed) - earlier
    if not keep:
        raise DataError(f"{src}: every utterance was removed by the filter "
                        f"(min {min_sec} s, max {max_sec} s, non-empty text)")
    dst.mkdir(parents=True, exist_ok=True)
    for name, table in (("wav.scp", wav), ("utt2num_samples", nsamp), ("text", text), ("utt2spk", utt2spk)):
        write_table(dst / name, {u: table[u] for u in keep})
    write_spk2utt(dst, {u: utt2spk[u] for u in keep})
    (dst / "audio_format").write_text((src / "audio_format").read_text() if (src / "audio_format").exists() else "")
    write_table(dst / "removed_utts", removed) if removed else (dst / "removed_utts").write_text("")
    return {u: removed[u] for u in list(removed)[earlier:]} if removed_here else {}


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(prog="python -m espnet_mamba.recipe.data_dir", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("validate")
    v.add_argument("dir", type=Path)
    sp = sub.add_parser("speed_perturb")
    sp.add_argument("src", type=Path)
    sp.add_argument("dst", type=Path)
    sp.add_argument("--factors", type=float, nargs="+", required=True)
    f = sub.add_parser("format")
    f.add_argument("src", type=Path)
    f.add_argument("dst", type=Path)
    f.add_argument("--fs", type=int, required=True)
    f.add_argument("--nj", type=int, default=1)
    f.add_argument("--no_resample", action="store_true", help="wrong sample rates are errors")
    f.add_argument("--audio_channels", type=int, default=1,
                   help="channels every recording must have (0: any, averaged to mono)")
    f.add_argument("--skip_bad_utts", type=lambda v: v.lower() in ("true", "1", "yes"), default=False,
                   help="true: move utterances with unusable audio to DST/removed_utts and go on")
    fl = sub.add_parser("filter")
    fl.add_argument("src", type=Path)
    fl.add_argument("dst", type=Path)
    fl.add_argument("--fs", type=int, required=True)
    fl.add_argument("--min_wav_duration", type=float, default=0.1)
    fl.add_argument("--max_wav_duration", type=float, default=20.0)
    a = p.parse_args(argv)

    def action():
        if a.cmd == "validate":
            t = validate(a.dir)
            print(json.dumps({"dir": str(a.dir), "utterances": len(t["text"])}))
        elif a.cmd == "speed_perturb":
            speed_perturb(a.src, a.dst, a.factors)
        elif a.cmd == "format":
            format_dir(a.src, a.dst, a.fs, a.nj, allow_resample=not a.no_resample,
                       channels=a.audio_channels or None, skip_bad_utts=a.skip_bad_utts)
        elif a.cmd == "filter":
            removed = filter_dir(a.src, a.dst, a.fs, a.min_wav_duration, a.max_wav_duration)
            print(f"filter: kept {len(read_table(a.dst / 'wav.scp'))}, removed {len(removed)} "
                  f"(reasons in {a.dst / 'removed_utts'})")

    return run_reporting(action, (DataError,))


if __name__ == "__main__":
    sys.exit(main())
