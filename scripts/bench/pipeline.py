"""Whole-pipeline profile: `configs/sample.yaml` (the README's main job) over SCALE x the bundled sample.

    python scripts/bench/pipeline.py                 # 10x the sample, plus the read -> write baseline
    python scripts/bench/pipeline.py --scale 1 --no-baseline
    python scripts/bench/pipeline.py --config my.yaml --text plain

Input. The repository ships ~1.7k real documents (data/sample/: C4 + raw CommonCrawl, 4.7 M chars) and
no other real text of that size, so SCALE x the sample is made of copies: copy 0 is the sample as it
is; in copies 1..SCALE-1 every document gets a distinct id (`ID#k`) and, with `--text varied` (the
default), every 12th word (from a seeded offset) is replaced by a random word of the same sample file's
vocabulary (seeded by the text and k, so the sample's own duplicates stay duplicates within a copy).
About 8 % of the words differ, so no 50-token window and few 5-gram shingles repeat between copies:
exact-doc, exact-substring and MinHash dedup see a 10x corpus that is not 90 % duplicates (they still
drop what they drop; the table shows docs in per stage). `--text plain` writes exact copies instead,
which exact_doc_dedup then drops (9 of 10), so later stages see 1x. A SCALE below 1 keeps that share
of each sample file (for quick checks).

Run. `curate run CONFIG --set input.path=... --output ... --set executor.logging_dir=...` in a child
process (the real CLI, with the config's executor: sample.yaml runs 2 tasks on 2 workers, 8 jobs).

Per stage. "task-s": the time datatrove's step timers recorded inside the stage's steps, summed over all
tasks (from the per-task stats files `LOGS/NN_job/stats/RANK.json`, which also time the raw datatrove
steps of MinHash and exact-doc dedup that `stats.json` lists without a time). "wall s": each job's wall
time (first task launched to last task done, from the task logs) split among its steps in proportion
to their task-s. What the tasks of the main flow spent outside any step timer (reading, writing,
handoff Parquet, generator plumbing; datatrove does not time its readers) is the row
"read/write/handoffs"; in a dedup stage's side jobs (e.g. MinHash's signatures job re-reading the
handed-off documents) all of the job's time counts as that stage's. Wall time outside every task
(imports, preflight, planning, starting each job's worker pool, stats) is the row "outside tasks".
The wall s column therefore sums to the run's wall, and "share" is wall s / run wall. "MB in": the
UTF-8 MB the stage read, estimated as its chars_in x the input's bytes per char (exact for the
read/write/handoffs row: the input). "MB/s" = MB in / wall s (the stage's throughput in this run, all
workers); "MB/s/task" = MB in / task-s.

Peak RSS per worker. A thread samples the run's process tree every --interval s (psutil) and keeps
each process's VmHWM (the kernel's per-process high-water mark of resident memory, so a peak between
two samples is not missed; only growth in a process's last interval before it exits could be).
Each worker process belongs to the job during which it started (every job starts its own pool).

Baseline (same run, same input, same executor): the config with `stages: []` (read -> write only).
The ratio is the whole run's MB/s over the baseline's: the cost of the stages relative to I/O alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import re
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "data" / "sample"
CONFIG = REPO / "configs" / "sample.yaml"
WORD = re.compile(r"\S+")
EVERY = 12  # one word in EVERY replaced in copies >= 1
IO = "read/write/handoffs"  # the tasks' time outside every step timer (datatrove does not time its reader)


def _records(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def vary(text: str, k: int, vocab: list[str]) -> str:
    """Every EVERY-th word (seeded offset) replaced by a random vocabulary word; seeded by text and k."""
    if not text:
        return text
    rng = random.Random(zlib.crc32(text.encode("utf-8", "surrogatepass")) * 1000 + k)
    offset = rng.randrange(EVERY)
    out, last = [], 0
    for n, m in enumerate(WORD.finditer(text)):
        if n % EVERY == offset:
            out.append(text[last : m.start()])
            out.append(vocab[rng.randrange(len(vocab))])
            last = m.end()
    out.append(text[last:])
    return "".join(out)


def make_input(dest: Path, scale: float, text: str, text_key: str = "text", id_key: str = "id") -> dict:
    """SCALE x the sample in `dest` (one file per sample file and copy); returns records / bytes / chars."""
    dest.mkdir(parents=True)
    files = {f: _records(f) for f in sorted(SAMPLE.glob("*.jsonl.gz"))}
    vocabs = {f: sorted({w for r in recs for w in WORD.findall(r.get(text_key) or "")}) for f, recs in files.items()}
    copies = max(1, int(round(scale))) if scale >= 1 else 1
    keep = 1.0 if scale >= 1 else scale
    n = nbytes = nchars = 0
    for k in range(copies):
        for f, recs in files.items():
            recs = recs[: max(1, int(len(recs) * keep))]
            with gzip.open(dest / f"{k:03d}-{f.name}", "wt", encoding="utf-8", compresslevel=1) as out:
                for r in recs:
                    r = dict(r)
                    if k:
                        r[id_key] = f"{r.get(id_key)}#{k}"
                        if text == "varied":
                            r[text_key] = vary(r.get(text_key) or "", k, vocabs[f])
                    t = r.get(text_key) or ""
                    n += 1
                    nchars += len(t)
                    nbytes += len(t.encode("utf-8", "surrogatepass"))
                    out.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"records": n, "bytes": nbytes, "chars": nchars, "copies": copies, "files": copies * len(files)}


class TreeSampler(threading.Thread):
    """VmHWM (peak RSS) of every process under `root`, sampled every `interval` s."""

    def __init__(self, root: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.root, self.interval = root, interval
        self.procs: dict[int, dict] = {}  # pid -> {first, last, hwm, ppid, name}
        self.stop = threading.Event()

    def _sample(self) -> None:
        import psutil

        try:
            root = psutil.Process(self.root)
            procs = [root] + root.children(recursive=True)
        except psutil.Error:
            return
        now = time.time()
        for p in procs:
            try:
                with open(f"/proc/{p.pid}/status") as f:
                    st = dict(line.split(":", 1) for line in f if ":" in line)
                hwm = int(st["VmHWM"].split()[0]) * 1024 if "VmHWM" in st else 0
                rec = self.procs.setdefault(
                    p.pid, {"first": now, "ppid": int(st["PPid"]), "hwm": 0, "name": " ".join(p.cmdline()[:3])[:80]}
                )
                rec["last"] = now
                rec["hwm"] = max(rec["hwm"], hwm)
            except (OSError, KeyError, ValueError, psutil.Error):
                continue

    def run(self) -> None:
        while not self.stop.is_set():
            self._sample()
            self.stop.wait(self.interval)
        self._sample()


def _log_time(line: str) -> float:
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S.%f").timestamp()


def task_spans(logdir: Path) -> dict[str, list[tuple[float, float]]]:
    """Per job folder: (launched, done) of every task, from datatrove's task logs."""
    spans: dict[str, list[tuple[float, float]]] = {}
    for job in sorted(p for p in logdir.iterdir() if p.is_dir()):
        for log in sorted((job / "logs").glob("task_*.log")):
            start = end = None
            for line in log.read_text(errors="replace").splitlines():
                if "Launching pipeline for rank" in line:
                    start = _log_time(line)
                elif "Processing done for rank" in line:
                    end = _log_time(line)
            if start is not None and end is not None:
                spans.setdefault(job.name, []).append((start, end))
    return spans


def run_curate(config: Path, inp: Path, out: Path, logs: Path, sets: list[str], interval: float) -> dict:
    cmd = [
        sys.executable,
        "-m",
        "curate.pipeline.cli",
        "run",
        str(config),
        "--no-progress",
        "--output",
        str(out),
        "--set",
        f"input.path={inp}",
        "--set",
        f"executor.logging_dir={logs}",
    ]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO)
    sampler = TreeSampler(proc.pid, interval)
    sampler.start()
    output = proc.communicate()[0]
    t1 = time.time()
    sampler.stop.set()
    sampler.join()
    if proc.returncode != 0:
        raise SystemExit(f"curate run failed ({proc.returncode}):\n{output[-4000:]}")
    stats = json.loads((out / "stats.json").read_text())
    return {
        "t0": t0,
        "t1": t1,
        "wall_s": t1 - t0,
        "stats": stats,
        "procs": sampler.procs,
        "root": proc.pid,
        "spans": task_spans(logs),
        "logs": logs,
        "interval": interval,
    }


def _side_stage(job: str, stages: list[str]) -> str | None:
    """The stage a side job belongs to (`minhash_dedup_buckets` -> `minhash_dedup`); None for a main-flow job
    (`main`, or a job named after the stage that opens it, whose later steps belong to other stages)."""
    if job in stages:
        return None
    match = [s for s in stages if job.startswith(s)]
    return max(match, key=len) if match else None


def _stage_of(label: str, job: str, stages: list[str]) -> str | None:
    """A stage's own step -> that stage; any step of a side job (its handoff read, datatrove's signature /
    bucket / cluster steps) -> the side job's stage; plumbing of the main flow (read, write, handoffs) -> None."""
    return label if label in stages else _side_stage(job, stages)


def profile(r: dict, inp: dict, stage_labels: list[str]) -> dict:
    """Per-stage rows (see the module docstring) from stats.json, the per-task stats files and the logs."""
    stats, logs = r["stats"], r["logs"]
    bpc = inp["bytes"] / max(1, inp["chars"])
    job_dirs = {d.name.split("_", 1)[1]: d for d in logs.iterdir() if d.is_dir() and d.name[:2].isdigit()}
    by_job: dict[str, list[dict]] = {}
    for s in stats["stages"]:
        by_job.setdefault(s["job"], []).append(s)
    rows: dict[str, dict] = {}
    order = stage_labels + [IO, "outside tasks"]
    for name in order:
        rows[name] = {"task_s": 0.0, "wall_s": 0.0, "mb": None, "docs": None, "jobs": []}
    busy_total = 0.0
    jobs_out = []
    for job in stats["jobs"]:
        name = job["name"]
        steps = by_job.get(name, [])
        times = [0.0] * len(steps)
        for f in sorted((job_dirs[name] / "stats").glob("*.json")):
            for k, st in enumerate(json.loads(f.read_text())[: len(steps)]):
                ts = st.get("time_stats")
                times[k] += ts.get("total", 0.0) if isinstance(ts, dict) else float(ts or 0)
        spans = r["spans"].get(job_dirs[name].name, [])
        busy = sum(e - s for s, e in spans)
        job_wall = (max(e for _, e in spans) - min(s for s, _ in spans)) if spans else 0.0
        busy_total += busy
        parts: dict[str, float] = {}
        for s, t in zip(steps, times):
            owner = _stage_of(s["label"], name, stage_labels)
            if owner is None:
                owner = IO
            parts[owner] = parts.get(owner, 0.0) + t
            if "docs_in" in s and owner in stage_labels and s["label"] == owner:
                rows[owner]["docs"] = s["docs_in"]
                rows[owner]["mb"] = s["chars_in"] * bpc / 1e6
            if s["label"] == "read" and "docs_in" in s:
                rows[IO]["docs"] = s["docs_in"]
                rows[IO]["mb"] = inp["bytes"] / 1e6
        side = _side_stage(name, stage_labels)  # a side job's untimed reading is its stage's work
        parts[side or IO] = parts.get(side or IO, 0.0) + max(0.0, busy - sum(parts.values()))
        scale = job_wall / sum(parts.values()) if sum(parts.values()) > 0 else 0.0
        for owner, t in parts.items():
            rows[owner]["task_s"] += t
            rows[owner]["wall_s"] += t * scale
            if name not in rows[owner]["jobs"]:
                rows[owner]["jobs"].append(name)
        start = min((s for s, _ in spans), default=None)
        jobs_out.append(
            {"name": name, "tasks": job["tasks"], "start": start, "wall_s": job_wall, "busy_s": busy, "spans": spans}
        )
    # each worker process -> its job. Jobs run one after another and each starts its own pool, so a worker of
    # job K appeared after job K-1's last task was done and lived until job K's first task launched (it runs
    # it); the latest job meeting both (with one sampling interval of slack) is the one
    slack = r["interval"] + 0.05
    timeline = [
        (j["name"], min(s for s, _ in j["spans"]), max(e for _, e in j["spans"])) for j in jobs_out if j["spans"]
    ]
    main = r["procs"].get(r["root"], {"hwm": 0})
    worker_hwm: dict[str, list[int]] = {}
    helpers = []
    for pid, p in r["procs"].items():
        if pid == r["root"]:
            continue
        if p["ppid"] == r["root"]:  # forkserver, resource tracker: children of the CLI process
            helpers.append(p)
            continue
        job, prev_end = None, float("-inf")
        for name, start, end in timeline:
            if p["first"] > prev_end - slack and p["last"] >= start - slack:
                job = name
            prev_end = end
        if job is not None:
            worker_hwm.setdefault(job, []).append(p["hwm"])
    for j in jobs_out:
        j["worker_peaks_mib"] = sorted((h / 2**20 for h in worker_hwm.get(j["name"], [])), reverse=True)
    rows["outside tasks"]["wall_s"] = max(
        0.0, r["wall_s"] - sum(v["wall_s"] for k, v in rows.items() if k != "outside tasks")
    )
    rows["outside tasks"]["jobs"] = []
    for row in rows.values():
        peaks = [p for j in jobs_out if j["name"] in row["jobs"] for p in j["worker_peaks_mib"]]
        row["peak_mib"] = max(peaks) if peaks else None
    return {
        "rows": rows,
        "jobs": jobs_out,
        "busy_s": busy_total,
        "main_peak_mib": main["hwm"] / 2**20,
        "helper_peaks_mib": [h["hwm"] / 2**20 for h in helpers],
    }


def _f(v, fmt: str, width: int) -> str:
    return f"{'-':>{width}}" if v is None else f"{v:{width}{fmt}}"


def print_profile(p: dict, r: dict, inp: dict) -> None:
    wall = r["wall_s"]
    print(
        f"{'stage':<22} {'docs in':>8} {'MB in':>7} {'task-s':>7} {'MB/s/task':>9} {'wall s':>7} {'MB/s':>6} "
        f"{'share':>6} {'peak RSS/worker MiB':>19}"
    )
    for name, row in p["rows"].items():
        mb, w = row["mb"], row["wall_s"]
        print(
            f"{name:<22} {_f(row['docs'], ',', 8)} {_f(mb, '.1f', 7)} "
            f"{_f(row['task_s'] if name != 'outside tasks' else None, '.1f', 7)} "
            f"{_f(mb / row['task_s'] if mb and row['task_s'] else None, '.2f', 9)} {w:7.1f} "
            f"{_f(mb / w if mb and w else None, '.2f', 6)} {w / wall:6.1%} {_f(row['peak_mib'], ',.0f', 19)}"
        )
    print(
        f"{'whole run':<22} {inp['records']:8,} {inp['bytes'] / 1e6:7.1f} {p['busy_s']:7.1f} {'':>9} {wall:7.1f} "
        f"{inp['bytes'] / 1e6 / wall:6.2f} {1:6.0%} {max((x for j in p['jobs'] for x in j['worker_peaks_mib']), default=0):19,.0f}"
    )
    print(
        "peak RSS/worker: the largest VmHWM among the worker processes of the job(s) the stage ran in (stages "
        "sharing a job share it); -: no worker process seen (it lived less than one sampling interval)"
    )
    print(
        "\njobs (wall s from the first task launched to the last done; peak RSS of each of the job's worker processes):"
    )
    for j in p["jobs"]:
        peaks = ", ".join(f"{x:,.0f}" for x in j["worker_peaks_mib"]) or "-"
        print(
            f"  {j['name']:<28} {j['tasks']:>3} tasks  wall {j['wall_s']:6.1f} s  tasks busy {j['busy_s']:6.1f} s  "
            f"worker peak RSS MiB: {peaks}"
        )
    print(
        f"  CLI (main) process peak RSS {p['main_peak_mib']:,.0f} MiB; its helper processes (forkserver, resource "
        f"tracker): {', '.join(f'{x:,.0f}' for x in p['helper_peaks_mib']) or '-'} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scale", type=float, default=10.0, help="copies of the sample (below 1: that share of it)")
    ap.add_argument("--config", type=Path, default=CONFIG)
    ap.add_argument("--text", choices=("varied", "plain"), default="varied")
    ap.add_argument(
        "--baseline",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also run read -> write alone (stages: []) on the same input (default on)",
    )
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="extra override for both runs")
    ap.add_argument("--interval", type=float, default=0.2, help="RSS sampling interval, s")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    a = ap.parse_args()
    sys.path.insert(0, str(REPO.parent))
    from curate.pipeline import load_config

    cfg = load_config(a.config)
    labels = [e.label for e in cfg.entries]
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="curate-bench-pipeline-") as tmp:
        t = Path(tmp)
        t_in = time.time()
        inp = make_input(t / "in", a.scale, a.text, cfg.input.text_key, cfg.input.id_key)
        print(
            f"input: {a.scale:g}x the sample ({a.text} text): {inp['records']:,} records in {inp['files']} files, "
            f"{inp['bytes'] / 1e6:.1f} MB UTF-8 ({inp['chars'] / 1e6:.1f} M chars), made in {time.time() - t_in:.1f} s",
            flush=True,
        )
        print(
            f"config: {a.config} ({cfg.executor.kind}, {cfg.executor.tasks} tasks, {cfg.executor.workers} workers; "
            f"stages: {', '.join(labels)})",
            flush=True,
        )
        full = run_curate(a.config, t / "in", t / "out", t / "logs", a.set, a.interval)
        prof = profile(full, inp, labels)
        base = None
        if a.baseline:
            base = run_curate(a.config, t / "in", t / "out-base", t / "logs-base", ["stages=[]"] + a.set, a.interval)
            bprof = profile(base, inp, [])
        load1 = os.getloadavg()
    print(
        f"machine: {os.cpu_count()} cores; load average (1/5/15 min) {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f} "
        f"before, {load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} after\n"
    )
    print(
        f"whole run: {full['wall_s']:.1f} s wall, {full['stats']['output_docs']:,} of {inp['records']:,} records kept, "
        f"{inp['bytes'] / 1e6 / full['wall_s']:.2f} MB/s of input\n"
    )
    print_profile(prof, full, inp)
    result = {
        "input": inp,
        "wall_s": full["wall_s"],
        "rows": prof["rows"],
        "jobs": prof["jobs"],
        "load": [load0, load1],
        "processes": full["procs"],
        "cli_pid": full["root"],
    }
    if base is not None:
        bmbs = inp["bytes"] / 1e6 / base["wall_s"]
        mbs = inp["bytes"] / 1e6 / full["wall_s"]
        bpeak = max((x for j in bprof["jobs"] for x in j["worker_peaks_mib"]), default=0)
        print(
            f"\nbaseline, same run: read -> write alone (stages: []): {base['wall_s']:.1f} s wall, {bmbs:.2f} MB/s, "
            f"worker peak RSS {bpeak:,.0f} MiB"
        )
        print(
            f"ratio whole pipeline / read+write alone: MB/s {mbs / bmbs:.3f} (wall x{full['wall_s'] / base['wall_s']:.1f})"
        )
        result["baseline"] = {"wall_s": base["wall_s"], "mb_s": bmbs, "peak_mib": bpeak, "ratio": mbs / bmbs}
    if a.json:
        a.json.write_text(json.dumps(result, indent=2, default=str))


if __name__ == "__main__":
    main()
