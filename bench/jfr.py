"""`make bench BENCH_ARGS=--profile`: where Connect's CPU goes over the measured window.

A Java Flight Recorder recording (the JDK's own sampler, `settings=profile`) of the Connect JVM,
started by `jcmd` when the warm-up ends and stopped with the window, then read with `jfr print`:
each Java thread's share of the samples, the frames the samples stop in (self), and for each busy
thread the frames its samples pass through (inclusive), below the thread's own task loop. Those are
samples of Java code; time in native code (the gzip deflater, sockets) is sampled apart and listed
by frame, waits left out. GC and JIT compiler threads are not Java threads and not sampled:
the benchmark's GC seconds and per-thread CPU (from /proc) cover them.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from collections import Counter, defaultdict
from pathlib import Path

STACK_DEPTH = 96
# A frame nearly every sample of a thread passes through, without stopping in it, is the thread's
# loop (Thread.run, the task's poll), not where the time goes.
SPINE = 0.9
# Native calls a thread waits in, not works.
WAITS = (".wait", ".accept", ".poll", ".park", ".sleep", ".epollWait", ".poll0")


def start(pid: int, delay_s: float, duration_s: float, path: Path) -> None:
    subprocess.run(["jcmd", str(pid), "JFR.start", "name=bench", "settings=profile", f"delay={int(delay_s)}s",
                    f"duration={int(duration_s)}s", f"filename={path}"], check=True, capture_output=True, text=True)


def wait(path: Path, timeout_s: float = 120) -> bool:
    """The recording is written when its duration ends (or the JVM stops): wait until its size holds."""
    deadline = time.monotonic() + timeout_s
    size = -1
    while time.monotonic() < deadline:
        now = path.stat().st_size if path.exists() else 0
        if now > 0 and now == size:
            return True
        size = now
        time.sleep(2)
    return False


def _thread(sample: dict) -> str:
    thread = sample["sampledThread"] or {}
    return re.sub(r"\d+", "N", thread.get("javaName") or thread.get("osName") or "?")


def _frame(frame: dict) -> str:
    method = frame["method"]
    return f"{method['type']['name'].rsplit('/', 1)[-1]}.{method['name']}"


def _named(frame: str) -> bool:
    """Lambdas' generated classes say nothing a reader can look up."""
    return not re.match(r"\d", frame) and "$$Lambda" not in frame


def _events(path: Path, event: str) -> list[dict]:
    printed = subprocess.run(["jfr", "print", "--json", "--stack-depth", str(STACK_DEPTH), "--events", event,
                              str(path)], check=True, capture_output=True, text=True).stdout
    return [recorded["values"] for recorded in json.loads(printed)["recording"]["events"]]


def summarize(path: Path, top: int = 12) -> dict:
    samples = _events(path, "jdk.ExecutionSample")
    # Time in native code (the gzip deflater, sockets) is sampled apart, a thread waiting in a
    # native call too: by frame, the waits left out.
    native = Counter(f"{_thread(sample)}: {frame}" for sample in _events(path, "jdk.NativeMethodSample")
                     if (frames := (sample.get("stackTrace") or {}).get("frames"))
                     and not (frame := _frame(frames[0])).endswith(WAITS))
    threads: Counter = Counter()
    self_frames: Counter = Counter()
    through: dict[str, Counter] = defaultdict(Counter)
    stopped: dict[str, Counter] = defaultdict(Counter)
    for sample in samples:
        thread = _thread(sample)
        threads[thread] += 1
        frames = [_frame(frame) for frame in (sample.get("stackTrace") or {}).get("frames", [])]
        if frames:
            self_frames[frames[0]] += 1
            stopped[thread][frames[0]] += 1
        through[thread].update({frame for frame in frames if _named(frame)})
    total = max(1, len(samples))

    def share(count: int, of: int = total) -> float:
        return round(100 * count / max(1, of), 1)

    busy = [thread for thread, count in threads.most_common() if count >= 0.05 * total]
    return {
        "samples": len(samples),
        "threads_pct": {thread: share(count) for thread, count in threads.most_common(top)},
        "self_pct": {frame: share(count) for frame, count in self_frames.most_common(top * 2)},
        # Per busy thread, as a share of that thread's samples.
        "inclusive_pct": {
            thread: {frame: share(count, threads[thread]) for frame, count in through[thread].most_common()
                     if count < SPINE * threads[thread] or stopped[thread][frame] > count / 2}
            for thread in busy
        },
        "native_samples": dict(native.most_common(top)),
    }


def report(profile: dict, process: str = "Connect", top: int = 25) -> str:
    lines = [f"  {process}'s profile (JFR, {profile['samples']} samples over the window):",
             "    threads: " + ", ".join(f"{thread} {pct}%" for thread, pct in profile["threads_pct"].items()),
             "    self: " + ", ".join(f"{frame} {pct}%" for frame, pct in profile["self_pct"].items())]
    for thread, frames in profile["inclusive_pct"].items():
        shown = list(frames.items())[:top]
        lines.append(f"    {thread} (of its samples): " + ", ".join(f"{frame} {pct}%" for frame, pct in shown))
    lines.append("    in native code (samples): "
                 + ", ".join(f"{frame} {count}" for frame, count in profile["native_samples"].items()))
    return "\n".join(lines)
