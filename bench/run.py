"""`make bench`: change events per second through the rendered pipeline, inside the memory budget.

Runs the data-plane harness (three brokers, the rendered configs, real processes), commits inserts
and updates to PostgreSQL at a target rate (or as fast as it can), and measures from what lands in
S3: each archived record carries its commit time (`source.ts_us`) and the time Kafka appended it
(change topics use LogAppendTime); each object has the time the sink wrote it.

Writes bench/results.json and bench/chart.png; the last line printed is the summary.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from datetime import timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import psycopg  # noqa: E402

from bench import jfr  # noqa: E402
from components import connect_config as cconf  # noqa: E402
from components import kafka_config as kconf  # noqa: E402
from components.formats import ARCHIVE_FORMATS, SERIALIZATIONS  # noqa: E402
from components.postgres_config import server_settings  # noqa: E402
from components.settings import StackConfig  # noqa: E402
from components.topology import KAFKA_VERSION  # noqa: E402
from connectors import configs  # noqa: E402
from operations.smoke import archived_records  # noqa: E402
from harness.dataplane.pipeline import Pipeline, require_dataplane, stack_settings  # noqa: E402
from harness.needs import Unavailable  # noqa: E402

HERE = Path(__file__).parent
TICK = 0.1  # the load generator commits one transaction per tick


class Load(threading.Thread):
    """Commits `rate` change events per second (or as many as it can): 80% inserts, 20% updates."""

    def __init__(self, dsn: str, rate: int | None, seconds: float, limit: int | None = None):
        super().__init__(daemon=True)
        self.dsn, self.rate, self.seconds, self.limit = dsn, rate, seconds, limit
        self.committed = 0
        self.burst = 0  # what this load committed, without an earlier warm-up's
        self.per_second: Counter = Counter()
        self.first_id: int | None = None
        self.last_id = 0
        self.cpu_seconds = 0.0  # this thread's own CPU: the load generator, apart from moto

    def run(self) -> None:
        try:
            self._run()
        finally:
            self.cpu_seconds = time.thread_time()

    def _run(self) -> None:
        per_tick = max(10, int((self.rate or 50_000) * TICK))
        inserts = per_tick * 4 // 5
        updates = per_tick - inserts
        started = time.monotonic()
        with psycopg.connect(self.dsn, autocommit=False) as conn:
            tick = 0
            while time.monotonic() - started < self.seconds and (self.limit is None or self.committed < self.limit):
                with conn.transaction():
                    ids = conn.execute(
                        "INSERT INTO inventory.customers (email, full_name) "
                        "SELECT 'bench-' || g || '-' || txid_current() || '@load.test', 'bench ' || g "
                        "FROM generate_series(1, %s) AS g RETURNING id", (inserts,)
                    ).fetchall()
                    low, high = ids[0][0], ids[-1][0]
                    conn.execute(
                        "UPDATE inventory.customers SET full_name = full_name || '+' WHERE id BETWEEN %s AND %s",
                        (low, low + updates - 1),
                    )
                self.first_id = self.first_id or low
                self.last_id = high
                self.committed += per_tick
                self.burst += per_tick
                self.per_second[int(time.monotonic() - started)] += per_tick
                tick += 1
                if self.rate:
                    pause = started + tick * TICK - time.monotonic()
                    if pause > 0:
                        time.sleep(pause)


def pss_mib(pid: int) -> float:
    """Proportional set size: shared pages split among the processes that share them."""
    total = 0
    for candidate in [pid, *_children(pid)]:
        try:
            for line in Path(f"/proc/{candidate}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            pass
    return found + [grandchild for child in found for grandchild in _children(child)]


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu(path: Path) -> float:
    """utime + stime of a /proc stat file, in seconds."""
    fields = path.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its live children (PostgreSQL's backends), in seconds."""
    total = 0.0
    for candidate in [pid, *_children(pid)]:
        try:
            total += _stat_cpu(Path(f"/proc/{candidate}/stat"))
        except OSError:
            pass
    return total


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread name of a process (a JVM names its threads; trailing numbers are
    dropped, so a pool's threads add up)."""
    found: dict[str, float] = defaultdict(float)
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            name = re.sub(r"[-_#\d]+$", "", (task / "comm").read_text().strip()) or "?"
            found[name] += _stat_cpu(task / "stat")
        except OSError:
            pass
    return found


def gc_seconds(pid: int) -> float | None:
    """Total GC time of a JVM so far (jstat's GCT), or None without the JDK's jstat."""
    import shutil
    import subprocess

    jstat = shutil.which("jstat")
    if jstat is None:
        return None
    result = subprocess.run([jstat, "-gc", str(pid)], capture_output=True, text=True, timeout=30)
    lines = result.stdout.split("\n")
    if result.returncode != 0 or len(lines) < 2:
        return None
    header, values = lines[0].split(), lines[1].split()
    return float(values[header.index("GCT")]) if "GCT" in header else None


class CpuSnapshot:
    """Per process: CPU seconds, per-thread CPU for the JVMs, GC seconds."""

    def __init__(self, pids: dict[str, int]):
        self.taken = time.monotonic()
        self.process = {name: cpu_seconds(pid) for name, pid in pids.items()}
        self.process["bench+moto"] = _stat_cpu(Path("/proc/self/stat"))
        self.threads = {name: thread_cpu(pid) for name, pid in pids.items() if name != "postgres"}
        self.gc = {name: gc_seconds(pid) for name, pid in pids.items() if name != "postgres"}


# What the benchmark runs beside the stack: the S3 stand-in and the load generator are not the pipeline.
OUTSIDE_THE_PIPELINE = ("load generator", "moto (S3 stand-in)")


def events_per_core(cpu_s_per_million: float) -> int:
    """The events per second one core carries at this cost."""
    return round(1e6 / max(1e-9, cpu_s_per_million))


def cpu_report(before: CpuSnapshot, after: CpuSnapshot, events: int, load: Load) -> dict:
    """Where the cores went between two snapshots, per million events: the pipeline's whole (Connect,
    the brokers, PostgreSQL, the registry) is the figure that travels between machines."""
    per_million = 1e6 / max(1, events)
    process = {name: after.process[name] - before.process[name] for name in after.process}
    # The bench process holds both the load generator and moto's S3 server: split them.
    process["load generator"] = load.cpu_seconds
    process["moto (S3 stand-in)"] = process.pop("bench+moto") - load.cpu_seconds
    threads = {}
    for name, now in after.threads.items():
        delta = {thread: cpu - before.threads[name].get(thread, 0.0) for thread, cpu in now.items()}
        threads[name] = {thread: round(cpu, 1) for thread, cpu in sorted(delta.items(), key=lambda i: -i[1])[:6]}
    gc = {name: (round(after.gc[name] - before.gc[name], 2) if after.gc[name] is not None
                 and before.gc[name] is not None else None) for name in after.gc}
    elapsed = after.taken - before.taken
    pipeline = sum(cpu for name, cpu in process.items() if name not in OUTSIDE_THE_PIPELINE) * per_million
    return {
        "pipeline_cpu_s_per_million_events": round(pipeline, 1),
        "events_per_s_per_core": events_per_core(pipeline),
        "seconds": round(elapsed, 1),
        "cores_used": round(sum(process.values()) / max(1e-9, elapsed), 2),
        "cpu_s_per_million_events": {name: round(cpu * per_million, 1)
                                     for name, cpu in sorted(process.items(), key=lambda i: -i[1])},
        "top_threads_cpu_s": threads,
        "gc_s": gc,
    }


class MemorySampler(threading.Thread):
    def __init__(self, pids: dict[str, int]):
        super().__init__(daemon=True)
        self.pids = pids
        self.peak: dict[str, float] = defaultdict(float)
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(1.0):
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], pss_mib(pid))


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


def main() -> int:
    # `kill` or Ctrl-C still stops every process the harness started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=int, default=10_000, help="offered change events/s; 0 = full speed")
    parser.add_argument("--runs", type=int, default=3, help="runs, each on a freshly started pipeline")
    parser.add_argument("--seconds", type=float, default=130, help="load duration, warm-up included")
    # Freshly started JVMs (JIT, metadata, group joins) lag for ~30 s before they keep pace.
    parser.add_argument("--warmup", type=float, default=40)
    parser.add_argument("--tag", default="", help="suffix of the result files, e.g. full-speed")
    parser.add_argument("--events", type=int, default=1_500_000,
                        help="at full speed: commit this many events as fast as possible, then let the pipeline drain")
    parser.add_argument("--format", choices=tuple(ARCHIVE_FORMATS), default=StackConfig().archive_format.name,
                        help="the stack's archiveFormat")
    parser.add_argument("--exactly-once", action="store_true", help="the stack's exactlyOnceSource")
    parser.add_argument("--serialization", choices=tuple(SERIALIZATIONS), default=StackConfig().serialization.name,
                        help="the stack's serialization")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="another stack config key, e.g. connectMemory=768Mi (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help="record Connect with Java Flight Recorder over the window and print where its CPU goes")
    args = parser.parse_args()
    try:
        require_dataplane()
    except Unavailable as missing:
        print(f"make bench: {missing}", file=sys.stderr)
        return 2

    runs = []
    for index in range(args.runs):
        print(f"run {index + 1} of {args.runs}", flush=True)
        runs.append(run_once(args))
        print(f"  {runs[-1]['summary']}", flush=True)
        if "profile" in runs[-1]:
            print(jfr.report(runs[-1]["profile"]), flush=True)
    results = aggregate(args, runs)

    suffix = f"-{args.tag}" if args.tag else ""
    (HERE / f"results{suffix}.json").write_text(json.dumps(results, indent=2) + "\n")
    worst = runs[results["worst_run"]]
    chart(worst, HERE / f"chart{suffix}.png", window_opens(args))
    print(json.dumps({k: v for k, v in results.items() if k != "runs"}, indent=2))
    for index, run in enumerate(runs):
        print(f"run {index + 1}: {run['summary']}")
        print(f"  CPU s per million events: pipeline {run['cpu']['pipeline_cpu_s_per_million_events']}, "
              f"per process {run['cpu']['cpu_s_per_million_events']}; GC s: {run['cpu']['gc_s']}; "
              f"topic bytes per event: {run['wire']['topic_bytes_per_event']}, "
              f"WAL bytes per event: {run['wire'].get('wal_bytes_per_event')}")
    print(results["summary"])
    return 0 if all(run["completeness"]["lost"] == 0 for run in runs) else 1


def run_once(args) -> dict:
    """One run on a freshly started pipeline (three brokers, the rendered configs)."""
    settings = stack_settings(brokers=3, archiveFormat=args.format, exactlyOnceSource=str(args.exactly_once).lower(),
                              serialization=args.serialization, **dict(item.split("=", 1) for item in args.set))
    pipeline = Pipeline(settings, jit_options="").start()  # the JVMs compile as in the pods
    try:
        pipeline.deploy_connectors()
        # The pipeline's start-up is not the benchmark: wait until a first row has gone through.
        pids = {**pipeline.pids(), "postgres": int(Path(pipeline.pg.data_dir, "postmaster.pid").read_text().split()[0])}
        sampler = MemorySampler(pids)
        sampler.start()
        warm = 0
        if not args.rate:
            # Full speed: warm the JVMs at the target rate first, then commit a burst as fast as
            # PostgreSQL takes it and measure how fast the pipeline works the backlog off.
            warming = Load(pipeline.pg.dsn(), 10_000, args.warmup)
            warming.start()
            warming.join()
            warm = warming.committed
        load = Load(pipeline.pg.dsn(), args.rate or None, args.seconds, None if args.rate else args.events)
        if args.profile:
            recording = Path(tempfile.mkdtemp(prefix="bench-jfr-")) / "connect.jfr"
            jfr.start(pids["connect"], window_opens(args), args.seconds - window_opens(args), recording)
        before = CpuSnapshot(pids)
        wal_before = wal_position(pipeline)
        load_started = time.time()
        load.start()
        load.join()
        load_ended = time.time()
        print(f"  committed {load.committed} change events in {load_ended - load_started:.1f}s", flush=True)
        load.committed += warm
        gather = collect_iceberg if ARCHIVE_FORMATS[args.format].typed else collect
        records, objects = gather(pipeline, load, deadline=time.monotonic() + 900)
        cpu = cpu_report(before, CpuSnapshot(pids), load.burst, load)
        wire = wire_bytes(pipeline)
        sampler.stopped.set()
        results = measure(args, settings, load, load_started, load_ended, records, objects, dict(sampler.peak))
        results["cpu"] = cpu
        if args.profile:
            if jfr.wait(recording):
                results["profile"] = jfr.summarize(recording)
            else:
                print(f"  no profile: Java Flight Recorder wrote no {recording}", flush=True)
            shutil.rmtree(recording.parent, ignore_errors=True)
        # What an archive outage costs per event in each buffer (components/buffer_config.py).
        results["wire"] = {"topic_bytes_per_event": round(wire / max(1, load.committed), 1),
                           "wal_bytes_per_event": round(wal_written(pipeline, wal_before) / max(1, load.burst), 1)}
        return results
    finally:
        pipeline.stop()


def window_opens(args) -> float:
    """Seconds after the load starts that the measured window opens: after the warm-up at a set rate;
    at once at full speed, whose burst follows a warm-up of its own."""
    return args.warmup if args.rate else 0


def wal_position(pipeline: Pipeline) -> str:
    [(lsn,)] = pipeline.sql("SELECT pg_current_wal_lsn()::text")
    return lsn


def wal_written(pipeline: Pipeline, since: str) -> int:
    [(written,)] = pipeline.sql("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", since)
    return written


def wire_bytes(pipeline: Pipeline) -> int:
    """What the bench table's topic holds on one broker (each holds every partition at RF 3):
    the records as the source's converter wrote them, batched and compressed."""
    topic = configs.change_topic("inventory.customers")
    return sum(segment.stat().st_size for segment in (pipeline.kafka.root / "data-0").glob(f"{topic}-*/*.log"))


FIGURES = {  # name: (where in a run's results, higher is better)
    "pipeline_cpu_s_per_million_events": (("cpu", "pipeline_cpu_s_per_million_events"), False),
    "connect_cpu_s_per_million_events": (("cpu", "cpu_s_per_million_events", "connect"), False),
    "sink_records_per_s": (("throughput", "sink_records_per_s"), True),
    "source_events_per_s": (("throughput", "source_events_per_s"), True),
    "p50_commit_to_kafka_ms": (("latency_ms", "commit_to_kafka", "p50"), False),
    "p95_commit_to_kafka_ms": (("latency_ms", "commit_to_kafka", "p95"), False),
    "p99_commit_to_kafka_ms": (("latency_ms", "commit_to_kafka", "p99"), False),
    "p99_commit_to_archive_ms": (("latency_ms", "commit_to_s3", "p99"), False),
}


def _figure(run: dict, path: tuple[str, ...]):
    value = run
    for key in path:
        value = value[key]
    return value


def aggregate(args, runs: list[dict]) -> dict:
    """Every run, the median and the worst of each figure, and the one summary line, led by the
    worst run's sink rate: a figure only the best run reaches is not a result."""
    median, worst = {}, {}
    for name, (path, higher_is_better) in FIGURES.items():
        values = [_figure(run, path) for run in runs]
        median[name] = round(statistics.median(values))
        worst[name] = min(values) if higher_is_better else max(values)
    worst_run = min(range(len(runs)), key=lambda i: runs[i]["throughput"]["sink_records_per_s"])
    lost = sum(run["completeness"]["lost"] for run in runs)
    duplicates = sum(run["completeness"]["duplicates"] for run in runs)
    within = all(m["within"] for run in runs for m in run["memory"].values())
    offered = args.rate or "full speed"
    summary = (
        f"CPU s per million events: pipeline worst {worst['pipeline_cpu_s_per_million_events']} "
        f"(about {events_per_core(worst['pipeline_cpu_s_per_million_events'])} events/s per core), "
        f"median {median['pipeline_cpu_s_per_million_events']}; "
        f"Connect worst {worst['connect_cpu_s_per_million_events']}, median {median['connect_cpu_s_per_million_events']}; "
        f"events/s: {worst['sink_records_per_s']} (sink, worst of {len(runs)}), median {median['sink_records_per_s']}; "
        f"source worst {worst['source_events_per_s']}, median {median['source_events_per_s']}; offered {offered}; "
        f"p99 commit→Kafka worst {worst['p99_commit_to_kafka_ms']} ms, median {median['p99_commit_to_kafka_ms']} ms; "
        f"p99 commit→archive worst {worst['p99_commit_to_archive_ms']} ms; lost {lost}, duplicates {duplicates}; "
        f"every process within its memory budget in every run: {'yes' if within else 'NO'}"
    )
    return {"offered": offered, "runs_count": len(runs), "median": median, "worst": worst,
            "worst_run": worst_run, "lost": lost, "duplicates": duplicates, "memory_within_budget": within,
            "summary": summary, "runs": runs}


def collect(pipeline: Pipeline, load: Load, deadline: float):
    """Wait until every committed event is in S3; return (records, objects) of the bench rows."""
    from moto.s3.models import s3_backends

    bucket = s3_backends["123456789012"]["aws"].get_bucket(pipeline.archive.bucket)
    parsed: dict[tuple[str, str], list[tuple]] = {}  # (key, etag) → its bench records
    while True:
        records, objects = [], {}
        for key in list(bucket.keys):
            current = bucket.keys[key]
            written = current.last_modified.replace(tzinfo=timezone.utc).timestamp()
            if (key, current.etag) not in parsed:
                rows = []
                for record in archived_records(key, current.value):
                    value = record["value"]
                    after = (value or {}).get("after") or {}
                    if str(after.get("email", "")).startswith("bench-"):
                        rows.append((after["id"], value["op"], value["source"]["lsn"], value["source"]["ts_us"] / 1e6,
                                     record["timestamp"] / 1e3))
                parsed[(key, current.etag)] = rows
            rows = parsed[(key, current.etag)]
            objects[key] = {"written": written, "records": len(rows)}
            records += [(*row, written) for row in rows]
        done = sum(1 for r in records if r[1] in ("c", "u"))
        if done >= load.committed or time.monotonic() > deadline:
            return records, objects
        print(f"  in S3: {done}/{load.committed}", flush=True)
        time.sleep(10)


def collect_iceberg(pipeline: Pipeline, load: Load, deadline: float):
    """Like collect, from the Iceberg table: each data file's rows, written when the snapshot that
    added the file was committed."""
    import pyarrow.parquet as pq

    name = configs.iceberg_table(pipeline.archive.glue_database, "inventory.customers")
    parsed: dict[str, list[tuple]] = {}  # data file → its bench rows
    while True:
        table = pipeline.iceberg_catalog().load_table(name)
        committed = {snapshot.snapshot_id: snapshot.timestamp_ms / 1e3 for snapshot in table.snapshots()}
        records, objects = [], {}
        for entry in table.inspect.entries().to_pylist():
            path = entry["data_file"]["file_path"]
            if path not in parsed:
                with table.io.new_input(path).open() as handle:
                    rows = pq.read_table(handle, columns=["id", "email", "_cdc"]).to_pylist()
                parsed[path] = [(row["id"], row["_cdc"]["op"], row["_cdc"]["lsn"],
                                 row["_cdc"]["committed_at"].timestamp(), row["_cdc"]["appended_at"].timestamp())
                                for row in rows if row["email"].startswith("bench-")]
            written = committed[entry["snapshot_id"]]
            objects[path] = {"written": written, "records": len(parsed[path])}
            records += [(*row, written) for row in parsed[path]]
        done = sum(1 for r in records if r[1] in ("c", "u"))
        if done >= load.committed or time.monotonic() > deadline:
            return records, objects
        print(f"  in Iceberg: {done}/{load.committed}", flush=True)
        time.sleep(10)


def measure(args, settings, load, load_started, load_ended, records, objects, peak) -> dict:
    unique = {(r[0], r[1], r[2]) for r in records}
    changes = {(r[0], r[1], r[2]) for r in records if r[1] in ("c", "u")}
    lost = max(0, load.committed - len(changes))
    duplicates = len(records) - len(unique)
    first = {}
    for record in records:
        first.setdefault((record[0], record[1], record[2]), record)
    events = list(first.values())
    window_start = load_started + window_opens(args)
    window_end = load_started + args.seconds
    in_window = [e for e in events if window_start <= e[3] < window_end]
    kafka_latency = [(e[4] - e[3]) * 1000 for e in in_window]
    s3_latency = [(e[5] - e[3]) * 1000 for e in in_window]
    if args.rate:
        source_rate = len([e for e in events if window_start <= e[4] < window_end]) / (window_end - window_start)
        sink_rate = len([e for e in events if window_start <= e[5] < window_end]) / (window_end - window_start)
    else:
        # At full speed the backlog is the measure: how fast each stage worked it off, after warm-up.
        appended = sorted(e[4] for e in events if e[4] >= window_start)
        written = sorted(e[5] for e in events if e[5] >= window_start)
        source_rate = len(appended) / max(1e-9, appended[-1] - appended[0]) if appended else 0
        sink_rate = len(written) / max(1e-9, written[-1] - window_start) if written else 0
        window_end = appended[-1] if appended else window_end
    # The sink writes one object per rotation, so its rate is bursty second by second; over the
    # window it is what landed. After the load stops, the last objects wait for their rotation.
    last_written = max((e[5] for e in events), default=load_started)
    drain = last_written - load_ended
    timeline = defaultdict(lambda: {"committed": 0, "kafka": 0, "s3": 0, "latency_ms": []})
    for e in events:
        timeline[int(e[3] - load_started)]["committed"] += 1
        timeline[int(e[4] - load_started)]["kafka"] += 1
        timeline[int(e[5] - load_started)]["s3"] += 1
        timeline[int(e[3] - load_started)]["latency_ms"].append((e[4] - e[3]) * 1000)
    budget = {
        **{name: settings.broker_memory.mib for name in ("kafka-0", "kafka-1", "kafka-2")},
        "connect": settings.config.connect_memory.mib,
        "postgres": settings.config.postgres_memory.mib,
        **({"registry": settings.config.schema_registry_memory.mib} if "registry" in peak else {}),
    }
    memory = {name: {"peak_pss_mib": round(peak.get(name, 0), 1), "budget_mib": budget[name],
                     "within": peak.get(name, 0) <= budget[name]} for name in budget}
    peak_total = round(sum(peak.values()), 1)
    results = {
        "machine": {"cores": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "config": {
            "target_rate": args.rate or "full speed", "seconds": args.seconds, "warmup": args.warmup,
            "kafka_version": KAFKA_VERSION, "brokers": settings.brokers,
            "broker_heap": kconf.heap(settings).quantity(), "connect_heap": cconf.connect_heap(settings).quantity(),
            "postgres": {k: v for k, v in server_settings(settings.config).items()
                         if k in ("shared_buffers", "work_mem", "max_connections", "wal_buffers", "max_wal_size")},
            "source": {k: v for k, v in configs.debezium_source(settings, configs.Database("db", 5432)).items()
                       if k.startswith(("max.", "poll.", "producer.override", "topic.creation"))},
            "archive_format": settings.config.archive_format.name,
            "exactly_once_source": settings.config.exactly_once_source,
            "serialization": settings.config.serialization.name,
            "sink": {k: v for k, v in configs.archive_sink(settings, configs.Bucket("b", "r", "p"), "db").items()
                     if k.startswith(("file.", "consumer.override", "iceberg.control", "iceberg.tables.auto-create-props"))},
            "worker": {k: v for k, v in cconf.worker_properties(settings).items() if k.startswith("offset.")},
        },
        "throughput": {
            "committed_per_s": round(load.burst / max(1e-9, load_ended - load_started)),
            "source_events_per_s": round(source_rate),
            "sink_records_per_s": round(sink_rate),
            "measured_over_s": window_end - window_start,
            "sink_drain_after_load_s": round(drain, 1),
        },
        "latency_ms": {
            "commit_to_kafka": {q: round(percentile(kafka_latency, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
            "commit_to_s3": {q: round(percentile(s3_latency, p)) for q, p in (("p50", 50), ("p95", 95), ("p99", 99))},
        },
        "memory": memory,
        "completeness": {"committed": load.committed, "in_s3": len(changes), "lost": lost, "duplicates": duplicates,
                         "objects": len(objects)},
        "timeline": [
            {"second": second, "committed": row["committed"], "kafka": row["kafka"], "s3": row["s3"],
             "p99_commit_to_kafka_ms": round(percentile(row["latency_ms"], 99)) if row["latency_ms"] else None}
            for second, row in sorted(timeline.items())
        ],
    }
    kafka, archive = results["latency_ms"]["commit_to_kafka"], results["latency_ms"]["commit_to_s3"]
    results["summary"] = (
        f"sink {results['throughput']['sink_records_per_s']} rec/s, source {results['throughput']['source_events_per_s']} "
        f"ev/s (offered {args.rate or 'full speed'}); commit→Kafka p50/p95/p99 {kafka['p50']}/{kafka['p95']}/"
        f"{kafka['p99']} ms; commit→archive p99 {archive['p99']} ms; lost {lost}, duplicates {duplicates}; "
        f"peak PSS {peak_total} MiB (" + ", ".join(f"{n} {m['peak_pss_mib']:.0f}/{m['budget_mib']}" for n, m in memory.items()) + ")"
    )
    return results


def chart(results: dict, path: Path, warmup: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["timeline"]
    seconds = [row["second"] for row in rows]
    figure, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7), sharex=True)
    by_second = {row["second"]: row for row in rows}
    span = range(0, max(seconds, default=0) + 1)
    for series, label in (("committed", "committed in PostgreSQL"), ("kafka", "appended to Kafka")):
        top.plot(list(span), [by_second.get(s, {}).get(series, 0) for s in span], label=label, drawstyle="steps-mid")
    # One object per rotation lands tens of thousands of records at once: show the 30 s average.
    landed = [by_second.get(s, {}).get("s3", 0) for s in span]
    average = [sum(landed[max(0, s - 29): s + 1]) / 30 for s in span]
    top.plot(list(span), average, label="written to S3 (30 s average)")
    for axis in (top, bottom):
        axis.axvspan(0, warmup, color="grey", alpha=0.12, label="warm-up" if axis is top else None)
    top.axhline(10_000, color="grey", linestyle="--", linewidth=1, label="10,000 events/s")
    top.set_ylabel("change events / s")
    top.legend(loc="upper right")
    top.set_title(results["summary"][:110], fontsize=8)
    bottom.plot(seconds, [row["p99_commit_to_kafka_ms"] for row in rows], color="tab:red")
    bottom.set_ylabel("p99 commit → Kafka (ms)")
    bottom.set_xlabel("seconds since the load started")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
