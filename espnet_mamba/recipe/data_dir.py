"""Kaldi-style data directories for the recipe stages 2-4.

    python -m espnet_mamba.recipe.data_dir validate DIR
    python -m espnet_mamba.recipe.data_dir speed_perturb SRC DST --factors 0.9 1.0 1.1
    python -m espnet_mamba.recipe.data_dir format SRC DST --fs 16000 [--nj N]
    python -m espnet_mamba.recipe.data_dir filter SRC DST --fs 16000 --min_wav_duration 0.1 \
        --max_wav_duration 20

A directory holds wav.scp ("utt path" or "rec cmd |"), text, utt2spk,
optionally segments ("utt rec start end", seconds). ``format`` writes a dump
directory that ESPnet reads as ``wav.scp,speech,sound``: entries that are plain
audio files at the right sample rate are referenced in place; pipes, segments
and other rates are written out as 16-bit WAV. Every audio file is opened and
checked: empty, unreadable or wrong-rate audio is an error naming the
utterance and the file, never silently wrong data.
"""

import argparse
import io
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import soundfile

REQUIRED = ("wav.scp", "text", "utt2spk")


class DataError(Exception):
    pass


def read_table(path: Path, allow_empty_value=False) -> Dict[str, str]:
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


# ---- format -----------------------------------------------------------------------

def _load(entry: str, what: str) -> Tuple[np.ndarray, int]:
    if entry.endswith("|"):
        out = subprocess.run(["bash", "-c", entry[:-1]], capture_output=True)
        if out.returncode != 0:
            raise DataError(f"{what}: command failed ({out.returncode}): {entry[:-1]}\n"
                            f"{out.stderr.decode(errors='replace')[-500:]}")
        source = io.BytesIO(out.stdout)
    else:
        if not Path(entry).is_file():
            raise DataError(f"{what}: audio file {entry} does not exist")
        source = entry
    try:
        audio, fs = soundfile.read(source, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001 - soundfile raises several types
        raise DataError(f"{what}: cannot decode audio {entry!r}: {exc}") from None
    return audio[:, 0], fs


def _resample(audio: np.ndarray, fs_in: int, fs_out: int) -> np.ndarray:
    import torch
    import torchaudio.functional as F

    return F.resample(torch.from_numpy(audio), fs_in, fs_out).numpy()


def _format_one(job):
    utt, entry, seg, out_path, fs, allow_resample = job
    what = f"utterance {utt}"
    plain = not entry.endswith("|") and seg is None
    if plain:
        try:
            info = soundfile.info(entry)
        except Exception as exc:  # noqa: BLE001
            if not Path(entry).is_file():
                raise DataError(f"{what}: audio file {entry} does not exist") from None
            raise DataError(f"{what}: cannot decode audio {entry!r}: {exc}") from None
        if info.frames == 0:
            raise DataError(f"{what}: audio file {entry} is empty (0 samples)")
        if info.samplerate == fs:
            return utt, entry, info.frames
    audio, rate = _load(entry, what)
    if seg is not None:
        start, end = seg
        audio = audio[int(round(start * rate)):int(round(end * rate))]
    if rate != fs:
        if not allow_resample:
            raise DataError(f"{what}: {entry} is {rate} Hz but the recipe expects --fs {fs}; "
                            f"resample it or set --fs")
        audio = _resample(audio, rate, fs)
    if audio.size == 0:
        raise DataError(f"{what}: audio {entry!r}{' segment' if seg else ''} is empty (0 samples)")
    if not np.isfinite(audio).all():
        raise DataError(f"{what}: audio {entry!r} contains NaN/Inf samples")
    soundfile.write(out_path, audio, fs, subtype="PCM_16")
    return utt, out_path, len(audio)


def format_dir(src: Path, dst: Path, fs: int, nj: int = 1, allow_resample: bool = True):
    t = validate(src)
    (dst / "data").mkdir(parents=True, exist_ok=True)
    jobs = []
    if "segments" in t:
        for utt, v in t["segments"].items():
            rec, start, end = v.split()
            jobs.append((utt, t["wav.scp"][rec], (float(start), float(end)),
                         str((dst / "data" / f"{utt}.wav").resolve()), fs, allow_resample))
    else:
        for utt, entry in t["wav.scp"].items():
            jobs.append((utt, entry, None, str((dst / "data" / f"{utt}.wav").resolve()), fs, allow_resample))
    if nj > 1:
        with ProcessPoolExecutor(nj) as pool:
            results = list(pool.map(_format_one, jobs, chunksize=64))
    else:
        results = [_format_one(j) for j in jobs]
    write_table(dst / "wav.scp", {u: p for u, p, _ in results})
    write_table(dst / "utt2num_samples", {u: str(n) for u, _, n in results})
    write_table(dst / "text", t["text"])
    write_table(dst / "utt2spk", t["utt2spk"])
    write_spk2utt(dst, t["utt2spk"])
    (dst / "audio_format").write_text(f"fs={fs}\n")


# ---- filter -----------------------------------------------------------------------

def filter_dir(src: Path, dst: Path, fs: int, min_sec: float, max_sec: float) -> Dict[str, str]:
    wav = read_table(src / "wav.scp")
    nsamp = read_table(src / "utt2num_samples")
    text = read_table(src / "text", allow_empty_value=True)
    utt2spk = read_table(src / "utt2spk")
    removed = {}
    for utt in sorted(wav):
        sec = int(nsamp[utt]) / fs
        if sec < min_sec:
            removed[utt] = f"too short ({sec:.2f} s < {min_sec} s)"
        elif sec > max_sec:
            removed[utt] = f"too long ({sec:.2f} s > {max_sec} s)"
        elif not text.get(utt, "").strip():
            removed[utt] = "empty transcript"
    keep = [u for u in sorted(wav) if u not in removed]
    if not keep:
        raise DataError(f"{src}: every utterance was removed by the filter "
                        f"(min {min_sec} s, max {max_sec} s, non-empty text)")
    dst.mkdir(parents=True, exist_ok=True)
    for name, table in (("wav.scp", wav), ("utt2num_samples", nsamp), ("text", text), ("utt2spk", utt2spk)):
        write_table(dst / name, {u: table[u] for u in keep})
    write_spk2utt(dst, {u: utt2spk[u] for u in keep})
    (dst / "audio_format").write_text((src / "audio_format").read_text() if (src / "audio_format").exists() else "")
    write_table(dst / "removed_utts", removed) if removed else (dst / "removed_utts").write_text("")
    return removed


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
    fl = sub.add_parser("filter")
    fl.add_argument("src", type=Path)
    fl.add_argument("dst", type=Path)
    fl.add_argument("--fs", type=int, required=True)
    fl.add_argument("--min_wav_duration", type=float, default=0.1)
    fl.add_argument("--max_wav_duration", type=float, default=20.0)
    a = p.parse_args(argv)
    try:
        if a.cmd == "validate":
            t = validate(a.dir)
            print(json.dumps({"dir": str(a.dir), "utterances": len(t["text"])}))
        elif a.cmd == "speed_perturb":
            speed_perturb(a.src, a.dst, a.factors)
        elif a.cmd == "format":
            format_dir(a.src, a.dst, a.fs, a.nj, allow_resample=not a.no_resample)
        elif a.cmd == "filter":
            removed = filter_dir(a.src, a.dst, a.fs, a.min_wav_duration, a.max_wav_duration)
            print(f"filter: kept {len(read_table(a.dst / 'wav.scp'))}, removed {len(removed)} "
                  f"(reasons in {a.dst / 'removed_utts'})")
    except DataError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
