"""`make bench --profile`: the summary of a real Java Flight Recorder recording names the thread and
the method the CPU went to."""

import subprocess

import pytest

from bench import jfr

BUSY = """
public class Busy {
  static long spin(long rounds) {
    long x = 1;
    for (long i = 0; i < rounds; i++) {
      x = x * 6364136223846793005L + i;
    }
    return x;
  }

  public static void main(String[] args) throws Exception {
    Thread busy = new Thread(() -> {
      long end = System.nanoTime() + 3_000_000_000L;
      long sum = 0;
      while (System.nanoTime() < end) {
        sum += spin(200_000);
      }
      System.out.println(sum);
    }, "task-thread-busy-7");
    busy.start();
    busy.join();
  }
}
"""


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jfr")
    (folder / "Busy.java").write_text(BUSY)
    path = folder / "busy.jfr"
    subprocess.run(["java", f"-XX:StartFlightRecording=settings=profile,filename={path}", "Busy.java"],
                   cwd=folder, check=True, capture_output=True, timeout=120)
    return path


def test_the_busy_thread_and_its_hot_method_lead(recording):
    profile = jfr.summarize(recording)
    print(jfr.report(profile))
    assert profile["samples"] > 50
    threads = profile["threads_pct"]
    assert max(threads, key=threads.get) == "task-thread-busy-N", threads  # digits folded: one name per role
    assert threads["task-thread-busy-N"] > 80
    top_self = max(profile["self_pct"], key=profile["self_pct"].get)
    assert top_self == "Busy.spin", profile["self_pct"]
    # The hot method stays in the thread's inclusive frames; the loop every sample passes through does not.
    through = profile["inclusive_pct"]["task-thread-busy-N"]
    assert through["Busy.spin"] > 80
    assert "Thread.run" not in through
