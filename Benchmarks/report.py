"""What the benchmark scripts share: the machine's description and publishing a
dated table (printed, and appended to BENCHMARKS.md unless told not to)."""
import os, platform, subprocess, sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def machine():
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    return f"{cpu}, {os.cpu_count()} CPUs, kernel {platform.release()}"


def publish(lines, append=True):
    text = "\n".join(lines) + "\n"
    print(text)
    if append:
        with open(os.path.join(ROOT, "BENCHMARKS.md"), "a") as f:
            f.write(text + "\n")


_SPIN = """
import os, sys, time
os.sched_setaffinity(0, {int(sys.argv[1])})
end = time.monotonic() + float(sys.argv[2]); last = time.monotonic(); gaps = []
while last < end:
    t = time.monotonic()
    if t - last > 0.005: gaps.append(t - last)
    last = t
print(len(gaps), max(gaps, default=0.0))
"""


def host_stalls(seconds=10.0):
    """How often this machine stops running us: one clock-reading spinner per CPU,
    nothing else running; gaps over 5 ms are the host (or the kernel) taking the
    CPU away. Returns a sentence for the tables' header."""
    procs = [subprocess.Popen([sys.executable, "-c", _SPIN, str(c), str(seconds)], stdout=subprocess.PIPE, text=True)
             for c in range(os.cpu_count())]
    parts = []
    for c, p in enumerate(procs):
        n, worst = p.communicate()[0].split()
        parts.append(f"CPU {c}: {n} (longest {float(worst) * 1e3:.0f} ms)")
    return (f"Stalls over 5 ms seen by a spinning clock reader per CPU in {seconds:g} s before the run, nothing else running: "
            + ", ".join(parts) + ".")
