"""Compare trained models: a Markdown table and a PNG of training curves and WER.

    python -m espnet_mamba.compare exp/asr_mamba exp/asr_transformer [--out comparison]

For each experiment directory (made by the recipe engine) it reads
  train.log (+ train.N.log)         parameters, per-epoch losses/accuracy, wall time, peak memory;
                                    a resumed training's earlier logs, which ESPnet's launcher
                                    renames to train.1.log, train.2.log, ..., count too
  DECODE/TEST/score_wer/summary.json   WER per test set (stage 13; --inference_tag DECODE picks one
                                    decoding where there are several)
  DECODE/TEST/audio_seconds + logdir/asr_inference.*.log   decoding real-time factor
  DECODE/TEST/streaming_chunk_ms    a streaming decoding (asr.sh --use_streaming true): compute time
                                    of every chunk but the last, pooled into p50/p95;
  DECODE/TEST/streaming_final_ms    the last chunk's (end-of-stream search), median; all chunks
                                    together give a compute-only RTF
  config.yaml                       the training seed
and writes OUT.md (also printed) and OUT.png. Runs of one model with different seeds
(directory names that differ only by a "_seedN" suffix, as the recipes name them) also get
a second table: WER mean and range over the seeds, since one seed alone can move WER by
several points on a small test set.
"""

import argparse
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Dict, List, Optional

EPOCH = re.compile(r"(\d+)epoch results: \[train\] (.*?)\[valid\] (.*?)(?:\[att_plot\]|$)", re.MULTILINE)
FIELD = re.compile(r"(\w+)=([-+0-9.eE]+)")
PARAMS = re.compile(r"Total Number of model parameters: ([0-9.]+) ([KMB]?)")
STAMP = re.compile(r"(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}),\d+")
ACCOUNTING = re.compile(r"# Accounting: time=([0-9.]+) max_rss_mb=([0-9.]+)")
SCALE = {"": 1, "K": 1e3, "M": 1e6, "B": 1e9}
SEED_SUFFIX = re.compile(r"_seed\d+$")
ROTATED_LOG = re.compile(r"train\.(\d+)\.log")
CONFIG_SEED = re.compile(r"^seed: (\d+)$", re.MULTILINE)


def parse_train_log(path: Path) -> Dict:
    text = path.read_text(encoding="utf-8", errors="replace")
    epochs = []
    for m in EPOCH.finditer(text):
        train = {k: float(v) for k, v in FIELD.findall(m.group(2))}
        valid = {k: float(v) for k, v in FIELD.findall(m.group(3))}
        epochs.append({"epoch": int(m.group(1)), "train": train, "valid": valid})
    params = PARAMS.search(text)
    stamps = [datetime.strptime(s, "%Y-%m-%d %H:%M:%S") for s in STAMP.findall(text)]
    accounting = ACCOUNTING.findall(text)
    return {
        "params": float(params.group(1)) * SCALE[params.group(2)] if params else None,
        "epochs": epochs,
        "wall_s": (stamps[-1] - stamps[0]).total_seconds() if len(stamps) > 1 else None,
        "peak_mem_mb": float(accounting[-1][1]) if accounting else None,
    }


def parse_train_logs(exp: Path) -> Dict:
    """A training resumed after a kill left its earlier segments in train.N.log (N=1 the newest of them):
    epochs from every segment (a later segment's report of an epoch wins), wall time summed over the
    segments, the highest peak memory. Without this, a resumed run would show only its last segment.
    A segment that starts again at epoch 1 is a training from scratch: the segments before it are dropped."""
    rotated = {int(m.group(1)): p for p in exp.glob("train.*.log") if (m := ROTATED_LOG.fullmatch(p.name))}
    segments = [parse_train_log(rotated[n]) for n in sorted(rotated, reverse=True)]  # oldest first
    segments.append(parse_train_log(exp / "train.log"))
    restarts = [i for i, seg in enumerate(segments) if seg["epochs"] and seg["epochs"][0]["epoch"] == 1]
    segments = segments[restarts[-1]:] if restarts else segments
    epochs = {e["epoch"]: e for seg in segments for e in seg["epochs"]}
    walls = [seg["wall_s"] for seg in segments if seg["wall_s"] is not None]
    mems = [seg["peak_mem_mb"] for seg in segments if seg["peak_mem_mb"] is not None]
    params = [seg["params"] for seg in segments if seg["params"] is not None]
    return {
        "params": params[-1] if params else None,
        "epochs": [epochs[n] for n in sorted(epochs)],
        "wall_s": sum(walls) if walls else None,
        "peak_mem_mb": max(mems) if mems else None,
    }


def decoding(exp: Path, inference_tag: Optional[str] = None) -> Dict[str, Dict]:
    out = {}
    for summary in sorted(exp.glob(f"{inference_tag or '*'}/*/score_wer/summary.json")):
        test_dir = summary.parent.parent
        if test_dir.name in out:  # two decodings of one test set: which one the table shows must be chosen
            raise SystemExit(f"compare: {exp} holds two scored decodings of {test_dir.name} "
                             f"({out[test_dir.name]['decode']} and {test_dir.parent.name}); "
                             f"pick one with --inference_tag")
        row = json.loads(summary.read_text())
        entry = {"wer": row["Err"], "decode": test_dir.parent.name}
        counts = row.get("counts")  # written by our scorer; a summary without them still gives the rate
        if counts:
            entry["errors"] = counts["sub"] + counts["dele"] + counts["ins"]
            entry["words"] = counts["wrd"]
            # "Err" is rounded to one decimal; means over seeds of rounded rates can round the other
            # way (8.3 and 11.0 give 9.7; 56/674 and 74/674 give 9.6), so keep the exact rate
            entry["wer"] = 100.0 * entry["errors"] / max(entry["words"], 1)
        audio = test_dir / "audio_seconds"
        jobs = [ACCOUNTING.search(p.read_text(errors="replace"))
                for p in sorted((test_dir / "logdir").glob("asr_inference.*.log"))]
        jobs = [j for j in jobs if j]
        if audio.exists() and jobs:
            entry["rtf"] = sum(float(j.group(1)) for j in jobs) / max(float(audio.read_text()), 1e-9)
            entry["decode_peak_mem_mb"] = max(float(j.group(2)) for j in jobs)
        entry.update(streaming_stats(test_dir))
        out[test_dir.name] = entry
    return out


def streaming_stats(test_dir: Path) -> Dict:
    """p50/p95 of the compute time of every chunk of every utterance, and compute time / audio."""
    chunks = test_dir / "streaming_chunk_ms"
    audio = test_dir / "audio_seconds"
    if not chunks.exists():
        return {}
    ms = sorted(float(v) for line in chunks.read_text().splitlines() for v in line.split()[1:])
    if not ms:
        return {}

    def percentile(q):
        return ms[min(len(ms) - 1, max(0, int(round(q / 100 * (len(ms) - 1)))))]

    stats = {"stream_p50_ms": percentile(50), "stream_p95_ms": percentile(95)}
    final = test_dir / "streaming_final_ms"
    final_ms = sorted(float(v) for line in final.read_text().splitlines() for v in line.split()[1:]) \
        if final.exists() else []
    if final_ms:
        stats["stream_final_p50_ms"] = final_ms[len(final_ms) // 2]
    if audio.exists():
        stats["stream_rtf"] = (sum(ms) + sum(final_ms)) / 1000 / max(float(audio.read_text()), 1e-9)
    return stats


def summarise(exp: Path, inference_tag: Optional[str] = None) -> Dict:
    log = exp / "train.log"
    if not log.exists():
        raise SystemExit(f"compare: {log} not found (is {exp} an experiment directory from stage 11?)")
    info = parse_train_logs(exp)
    config = exp / "config.yaml"
    seed = CONFIG_SEED.search(config.read_text()) if config.exists() else None
    info.update(name=exp.name, path=str(exp), tests=decoding(exp, inference_tag),
                seed=int(seed.group(1)) if seed else None)
    return info


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def markdown(runs: List[Dict]) -> str:
    tests = sorted({t for r in runs for t in r["tests"]})
    head = ["model", "params"] + [f"WER {t}" for t in tests] + [
        "epochs", "train time", "train peak mem", "decode RTF"]
    streaming = any("stream_p50_ms" in t for r in runs for t in r["tests"].values())
    if streaming:  # mean over the test sets of each, as decode RTF
        head += ["chunk p50 ms", "chunk p95 ms", "final chunk ms", "stream RTF"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in runs:
        rtfs = [t["rtf"] for t in r["tests"].values() if "rtf" in t]
        row = [r["name"], f"{r['params'] / 1e6:.2f}M" if r["params"] else "-"]
        row += [_fmt(r["tests"].get(t, {}).get("wer"), ".1f") for t in tests]
        row += [str(len(r["epochs"])),
                f"{r['wall_s'] / 60:.1f} min" if r["wall_s"] is not None else "-",
                f"{r['peak_mem_mb']:.0f} MB" if r["peak_mem_mb"] else "-",
                _fmt(sum(rtfs) / len(rtfs) if rtfs else None, ".3f")]
        for key, spec in (("stream_p50_ms", ".1f"), ("stream_p95_ms", ".1f"), ("stream_final_p50_ms", ".1f"),
                          ("stream_rtf", ".3f")):
            if streaming:
                values = [t[key] for t in r["tests"].values() if key in t]
                row.append(_fmt(sum(values) / len(values) if values else None, spec))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def seed_groups(runs: List[Dict]) -> Dict[str, List[Dict]]:
    """Runs keyed by model name (the directory name without its _seedN suffix), in input order."""
    groups: Dict[str, List[Dict]] = {}
    for r in runs:
        groups.setdefault(SEED_SUFFIX.sub("", r["name"]), []).append(r)
    return groups


def markdown_seed_means(runs: List[Dict]) -> str:
    """WER mean (min-max) over the seeds of each model; empty when no model has two runs.
    Where every seed's scoring has counts, the cell ends with errors/words summed over the seeds: the
    mean rounded to one decimal cannot say on which side of a threshold (e.g. 10.0) it lies."""
    groups = seed_groups(runs)
    if all(len(g) < 2 for g in groups.values()):
        return ""
    tests = sorted({t for r in runs for t in r["tests"]})
    head = ["model", "seeds"] + [f"WER {t} mean (range)" for t in tests] + ["train time (mean)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, group in groups.items():
        row = [name, " ".join("?" if r["seed"] is None else str(r["seed"]) for r in group)]
        for t in tests:
            wers = [r["tests"][t]["wer"] for r in group if t in r["tests"]]
            if len(wers) < len(group):  # a seed not decoded on t: a mean over fewer runs would mislead
                row.append("-")
            else:
                spread = f"{min(wers):.1f}-{max(wers):.1f}"
                scored = [r["tests"][t] for r in group if "errors" in r["tests"][t]]
                if len(scored) == len(group):
                    spread += f"; {sum(s['errors'] for s in scored)}/{sum(s['words'] for s in scored)} words"
                row.append(f"{sum(wers) / len(wers):.1f} ({spread})")
        walls = [r["wall_s"] for r in group if r["wall_s"] is not None]
        row.append(f"{sum(walls) / len(walls) / 60:.1f} min" if len(walls) == len(group) else "-")
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def _legend_name(name: str, group: List[Dict]) -> str:
    return name if len(group) == 1 else f"{name} ({len(group)} seeds)"


def plot(runs: List[Dict], path: Path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_acc, ax_wer) = plt.subplots(1, 3, figsize=(15, 4.2))
    groups = seed_groups(runs)
    colour = {name: f"C{i % 10}" for i, name in enumerate(groups)}  # one colour per model, all its seeds
    for name, group in groups.items():
        for k, r in enumerate(group):
            ep = [e["epoch"] for e in r["epochs"]]
            c = colour[name]
            # one legend entry per model: matplotlib leaves labels starting with "_" out of the legend
            label = ("_" if k else "") + _legend_name(name, group)
            ax_loss.plot(ep, [e["train"].get("loss") for e in r["epochs"]], "--x", color=c, label=f"{label} train")
            ax_loss.plot(ep, [e["valid"].get("loss") for e in r["epochs"]], "-o", color=c, label=f"{label} valid")
            ax_acc.plot(ep, [e["valid"].get("acc") for e in r["epochs"]], "-o", color=c, label=label)
    ax_loss.set(title="loss", xlabel="epoch")
    ax_acc.set(title="valid attention accuracy", xlabel="epoch")
    # WER: one bar per model, the mean over its seeds, with the min-max range as the error bar
    tests = sorted({t for r in runs for t in r["tests"]})
    width = 0.8 / max(len(groups), 1)
    for i, (name, group) in enumerate(groups.items()):
        wers = [[r["tests"][t]["wer"] for r in group if t in r["tests"]] or [0.0] for t in tests]
        means = [sum(w) / len(w) for w in wers]
        spread = [[m - min(w) for m, w in zip(means, wers)], [max(w) - m for m, w in zip(means, wers)]]
        ax_wer.bar([j + i * width for j in range(len(tests))], means, width, color=colour[name],
                   yerr=spread if len(group) > 1 else None, capsize=3,
                   label=_legend_name(name, group))
    ax_wer.set_xticks([j + width * (len(groups) - 1) / 2 for j in range(len(tests))], tests)
    ax_wer.set(title="WER (%)")
    for ax in (ax_loss, ax_acc, ax_wer):
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: Optional[List[str]] = None):
    p = argparse.ArgumentParser(prog="python -m espnet_mamba.compare", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("exp_dirs", type=Path, nargs="+")
    p.add_argument("--out", type=Path, default=Path("comparison"), help="writes OUT.md and OUT.png")
    p.add_argument("--inference_tag", nargs="+",
                   help="decoding directory to report (e.g. decode_decode_asr_valid.acc.ave) when an "
                   "experiment holds several: one for every experiment, or one per experiment in the "
                   "order of EXP_DIRS (streamed models decode into TAG_streaming160ms); default: the only one")
    a = p.parse_args(argv)
    tags = a.inference_tag or [None]
    if len(tags) == 1:
        tags = tags * len(a.exp_dirs)
    if len(tags) != len(a.exp_dirs):
        p.error(f"--inference_tag: {len(tags)} tags for {len(a.exp_dirs)} experiment directories "
                f"(give one for all, or one per directory)")
    runs = [summarise(d, tag) for d, tag in zip(a.exp_dirs, tags)]
    table = markdown(runs)
    means = markdown_seed_means(runs)
    if means:
        table += "\nMean over seeds (min-max; errors/words summed over the seeds where scored):\n\n" + means
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.with_suffix(".md").write_text(table)
    plot(runs, a.out.with_suffix(".png"))
    print(table, end="")
    print(f"(written to {a.out.with_suffix('.md')} and {a.out.with_suffix('.png')})")


if __name__ == "__main__":
    main()
