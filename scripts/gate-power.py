#!/usr/bin/env python3
"""How well `harness compare` tells a real slowdown from noise on THIS machine: its false-alarm
rate and its detection power, measured, not assumed. Run it on the CI runner you gate on.

It runs, each a full `harness compare` of gev-echo (1 loop, loopback) with the flags given after
`--` (default: the gate's defaults):

  calibrate  how much throughput `gev-echo --work-ns N` really costs each planted slowdown when the
             server runs alone (`--schedule alternating`, many repeats): the size of the planted
             slowdown in the terms users care about;
  self       gev-echo against itself, --self times: every `regressed` or `improved` verdict is a
             false alarm;
  planted    gev-echo against gev-echo --work-ns PLANTED, --planted times: how often the gate fails
             (exit 1) as it should;
  small      gev-echo against gev-echo --work-ns SMALL (a ~3% slowdown), --small times: it must
             never be reported as `improved`.

With --noise K it also starts K busy-loop processes, unpinned, each switching between spinning
and sleeping for random 50-500 ms stretches, so the gate is measured on a machine that other
work disturbs the way a shared CI runner is disturbed. They stop when this script ends.

Usage (from the workspace root, after `cargo build --release --workspace --bins`):
  scripts/gate-power.py [--self 20] [--planted 10] [--small 10] [--planted-ns 900]
                        [--small-ns 300] [--calibrate-repeats 24] [--calibrate-duration 4s]
                        [--noise 0] [--bin-dir target/release]
                        [-- EXTRA COMPARE FLAGS]
On the 2-core VM this was written on, --work-ns 900 cost 11% [8%, 14%] of throughput alone and
--work-ns 300 cost 2.6% [-1.5%, 6.5%] (the defaults). Calibrate on yours: what a fixed spin costs
depends on how much the server's own work per message costs there. A full run takes about 20
minutes.

Every comparison is bounded (repeats and duration are fixed; a run that hangs is killed by the
harness), and traffic goes to loopback only. Exit 0 when the targets hold (at most 1 false
verdict in 20 self-comparisons, the planted slowdown caught in at least 9 of 10, the small one
never `improved`), 1 when they do not, 2 on a usage or harness error."""
import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time

BIN_DIR = "target/release"


def fail(message):
    """A usage or harness error: one line, exit 2."""
    print(f"gate-power: {message}", file=sys.stderr)
    sys.exit(2)


def compare(candidate_extra, flags):
    """One `harness compare` of gev-echo against gev-echo + candidate_extra: (exit code, report)."""
    echo = f"{BIN_DIR}/gev-echo --host 127.0.0.1 --port {{port}} --loops {{loops}}"
    command = [f"{BIN_DIR}/harness", "compare", "--baseline-cmd", echo,
               "--candidate-cmd", echo + candidate_extra, "--json"] + flags
    done = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if done.returncode not in (0, 1):
        lines = done.stderr.strip().splitlines()
        reason = next((line for line in lines if "error" in line), lines[-1] if lines else "(no output)")
        fail(f"harness compare failed (exit {done.returncode}): {reason.strip()}")
    return done.returncode, json.loads(done.stdout)


def readings(report):
    return {m["metric"]: m for m in report["points"][0]["metrics"]}


def show(report):
    return "  ".join(
        f"{name} {m['ratio']['point']:.3f} [{m['ratio']['low']:.3f}, {m['ratio']['high']:.3f}] {m['verdict']}"
        for name, m in readings(report).items())


def scenario(title, count, candidate_extra, flags):
    """Runs `count` comparisons; prints each; returns the list of (exit, verdicts)."""
    results = []
    for i in range(count):
        started = time.time()
        code, report = compare(candidate_extra, flags)
        verdicts = {name: m["verdict"] for name, m in readings(report).items()}
        results.append((code, verdicts))
        print(f"{title} {i + 1}/{count}: exit {code}, {report['repeats']} rounds, "
              f"{time.time() - started:.0f} s: {show(report)}", flush=True)
    return results


def disturb(parent, seed):
    """One noise process: spin and sleep in random 50-500 ms stretches while the parent lives."""
    rng = random.Random(seed)
    while os.getppid() == parent:
        until = time.time() + rng.uniform(0.05, 0.5)
        while time.time() < until:
            pass
        time.sleep(rng.uniform(0.05, 0.5))


def main():
    global BIN_DIR
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--self", dest="self_runs", type=int, default=20)
    parser.add_argument("--planted", type=int, default=10)
    parser.add_argument("--small", type=int, default=10)
    parser.add_argument("--planted-ns", type=int, default=900)
    parser.add_argument("--small-ns", type=int, default=300)
    parser.add_argument("--noise", type=int, default=0,
                        help="busy-loop processes that disturb the machine while it measures")
    parser.add_argument("--calibrate-repeats", type=int, default=24,
                        help="alternating runs per side to size the planted slowdowns (0: skip)")
    parser.add_argument("--calibrate-duration", default="4s",
                        help="measured time of each calibration run")
    parser.add_argument("--bin-dir", default=BIN_DIR,
                        help="where harness, loadgen and gev-echo are built (default target/release)")
    parser.add_argument("flags", nargs="*", help="extra `harness compare` flags, after --")
    args = parser.parse_args()
    for flag, value in (("--self", args.self_runs), ("--planted", args.planted),
                        ("--small", args.small), ("--planted-ns", args.planted_ns),
                        ("--small-ns", args.small_ns), ("--noise", args.noise),
                        ("--calibrate-repeats", args.calibrate_repeats)):
        if value < 0:
            parser.error(f"{flag} must not be negative, got {value}")
    BIN_DIR = args.bin_dir
    if not os.access(f"{BIN_DIR}/harness", os.X_OK):
        fail(f"{BIN_DIR}/harness is missing: run `cargo build --release --workspace --bins` from "
             "the workspace root first")

    noise = [multiprocessing.Process(target=disturb, args=(os.getpid(), i), daemon=True)
             for i in range(args.noise)]
    for process in noise:
        process.start()
    try:
        return measure(args)
    finally:
        for process in noise:
            process.terminate()


def measure(args):
    if args.calibrate_repeats:
        for ns in (args.planted_ns, args.small_ns):
            _, report = compare(f" --work-ns {ns}", [
                "--schedule", "alternating", "--repeats", str(args.calibrate_repeats),
                "--duration", args.calibrate_duration, "--warmup", "500ms"])
            print(f"calibrate --work-ns {ns} alone (alternating, {report['repeats']} runs each): "
                  f"{show(report)}", flush=True)

    self_results = scenario("self", args.self_runs, "", args.flags)
    planted = scenario(f"planted {args.planted_ns} ns", args.planted, f" --work-ns {args.planted_ns}",
                       args.flags)
    small = scenario(f"small {args.small_ns} ns", args.small, f" --work-ns {args.small_ns}", args.flags)

    false_verdicts = sum(
        sum(v in ("regressed", "improved") for v in verdicts.values()) for _, verdicts in self_results)
    false_runs = sum(
        any(v in ("regressed", "improved") for v in verdicts.values()) for _, verdicts in self_results)
    caught = sum(code == 1 for code, _ in planted)
    small_improved = sum(any(v == "improved" for v in verdicts.values()) for _, verdicts in small)
    small_caught = sum(code == 1 for code, _ in small)
    print()
    print(f"self-comparisons: {false_runs}/{len(self_results)} with a false regressed/improved "
          f"verdict ({false_verdicts} such verdicts over all metrics)")
    print(f"planted --work-ns {args.planted_ns}: caught (exit 1) in {caught}/{len(planted)}")
    print(f"small --work-ns {args.small_ns}: reported improved in {small_improved}/{len(small)}, "
          f"failed the gate in {small_caught}/{len(small)}")
    checks = [("≤1/20 false", self_results, false_runs * 20 <= len(self_results)),
              ("≥9/10 caught", planted, caught * 10 >= 9 * len(planted)),
              ("small never improved", small, small_improved == 0)]
    for name, runs, held in checks:
        print(f"target {name}: {'not measured' if not runs else 'met' if held else 'NOT met'}")
    return 0 if all(held for _, _, held in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
