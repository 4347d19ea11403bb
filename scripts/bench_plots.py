#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Draw make bench's pictures from the JSON a run left in its results directory.

    scripts/bench_plots.py RESULTS_DIR

Writes next to the JSON, each only when its runs are there:

  latency-<set>.png  per-touch latency CDF of the 10% random runs of one
                     dataset (<set>-floor.json, <set>-{lazy,eager,mmap}-r10.json, and the
                     HTTP run http-url-r10.json for the set HTTP used), from
                     their log2 touch histograms
  population.png     bytes in place over time (pop-{lazy,eager,prefetch,http}.json,
                     from `thaw bench --population`)
  migration.png      the phases of each migration (migrate-*.txt RESULT lines):
                     downtime, then post-copy until every page is in

Data files for gnuplot go to RESULTS_DIR/plots/. Prints one line per PNG.
"""
import glob
import json
import os
import subprocess
import sys

TERM = "set terminal pngcairo size 960,600 font 'DejaVu Sans,11' noenhanced"


def load(path):
    with open(path) as f:
        return json.load(f)


def gnuplot(script):
    subprocess.run(["gnuplot"], input=script, text=True, check=True)


def cdf_points(hist):
    """(upper bound in us, cumulative fraction) per log2 bucket of ns."""
    total = sum(b["count"] for b in hist)
    pts, cum = [], 0
    for b in sorted(hist, key=lambda b: b["ge_ns"]):
        cum += b["count"]
        upper_ns = max(b["ge_ns"] * 2, 1)
        pts.append((upper_ns / 1000.0, cum / total))
    return pts


def latency(res, data):
    made = []
    http_set = None
    if os.path.exists(os.path.join(res, "http-url-r10.json")):
        http_set = os.path.basename(load(os.path.join(res, "http-url-r10.json"))["snapshot"])
    for lazy in sorted(glob.glob(os.path.join(res, "*-lazy-r10.json"))):
        name = os.path.basename(lazy)[: -len("-lazy-r10.json")]
        if name.startswith("http-"):
            continue
        # the floor run of bench.sh's compare_modes is <set>-floor (random:10% too)
        runs = [("floor", os.path.join(res, "%s-floor.json" % name))]
        runs += [(m, os.path.join(res, "%s-%s-r10.json" % (name, m)))
                 for m in ("lazy", "eager", "mmap")]
        if http_set and http_set.startswith(name + "."):
            runs.append(("lazy over HTTP", os.path.join(res, "http-url-r10.json")))
        plots = []
        for label, path in runs:
            if not os.path.exists(path):
                continue
            d = load(path)
            dat = os.path.join(data, "latency-%s-%s.dat" % (name, label.replace(" ", "_")))
            with open(dat, "w") as f:
                # a step per bucket: the fraction at or under its upper bound
                prev = 0.0
                for x, y in cdf_points(d["touch_hist"]):
                    f.write("%g %g\n%g %g\n" % (x, prev, x, y))
                    prev = y
            plots.append("'%s' using 1:2 with lines lw 2 title '%s (p50 %.1f us, %d faults)'"
                         % (dat, label, d["touch_p50_us"], d["faults"]))
        if not plots:
            continue
        png = os.path.join(res, "latency-%s.png" % name)
        gnuplot("\n".join([
            TERM, "set output '%s'" % png,
            "set title 'Per-touch latency, 10%% of the pages of %s at random (CDF)'" % name,
            "set logscale x", "set xlabel 'latency (us, log2 buckets)'",
            "set ylabel 'fraction of touches at or under'", "set yrange [0:1.02]",
            "set grid", "set key bottom right",
            "plot " + ", ".join(plots), ""]))
        made.append(png)
    return made


def population(res, data):
    runs = [("lazy (local file)", "pop-lazy.json"), ("eager (decode all first)", "pop-eager.json"),
            ("lazy, optimized snapshot", "pop-prefetch.json"), ("lazy over HTTP (nginx)", "pop-http.json")]
    plots, raw, name = [], None, ""
    for label, fname in runs:
        path = os.path.join(res, fname)
        if not os.path.exists(path):
            continue
        d = load(path)
        if not d.get("population"):
            continue
        raw = d["raw_bytes"]
        name = os.path.basename(d["snapshot"])
        dat = os.path.join(data, fname[:-5] + ".dat")
        with open(dat, "w") as f:
            for p in d["population"]:
                f.write("%g %g\n" % (p["t_ms"], p["bytes"] / 2**30))
        plots.append("'%s' using 1:2 with lines lw 2 title '%s'" % (dat, label))
    if not plots:
        return []
    png = os.path.join(res, "population.png")
    gnuplot("\n".join([
        TERM, "set output '%s'" % png,
        "set title 'Memory in place over time, %s (%.2f GiB raw), no touches'" % (name, raw / 2**30),
        "set xlabel 'time since restore start (ms)'", "set ylabel 'GiB in place'",
        "set yrange [0:%g]" % (raw / 2**30 * 1.05), "set grid", "set key bottom right",
        "plot " + ", ".join(plots), ""]))
    return [png]


def migration(res, data):
    rows = []
    for path in sorted(glob.glob(os.path.join(res, "migrate-*.txt"))):
        with open(path) as f:
            line = f.read().split()
        kv = dict(x.split("=", 1) for x in line if "=" in x)
        if "downtime_ms" not in kv:
            continue
        rows.append((os.path.basename(path)[len("migrate-"):-4], float(kv["downtime_ms"]),
                     float(kv["total_ms"]), int(kv.get("faults", 0)), int(kv.get("bytes", 0))))
    if not rows:
        return []
    dat = os.path.join(data, "migration.dat")
    with open(dat, "w") as f:
        for i, (name, down, total, faults, nbytes) in enumerate(rows):
            # y, downtime end, total end, label
            f.write("%d %g %g \"%s: %d faults, %.0f MiB\"\n"
                    % (i, down, total, name, faults, nbytes / 2**20))
    png = os.path.join(res, "migration.png")
    gnuplot("\n".join([
        TERM, "set output '%s'" % png,
        "set title 'Migration timeline: downtime (workload stopped), then until every page is in'",
        "set xlabel 'ms since the source paused'", "set yrange [-0.7:%g]" % (len(rows) - 0.3),
        "unset ytics", "set grid x", "set key top right", "set style fill solid 0.8",
        "set xrange [0:*]",
        "plot '%s' using (($2+$3)/2):1:2:3:($1-0.3):($1+0.3) with boxxyerror lc rgb '#9ecae1' "
        "title 'post-copy: pages arriving (or the copy)', "
        "'' using ($2/2):1:(0):2:($1-0.3):($1+0.3) with boxxyerror lc rgb '#de2d26' "
        "title 'downtime', "
        "'' using (0):($1+0.42):4 with labels left offset 0.5,0 notitle" % dat, ""]))
    return [png]


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    res = sys.argv[1]
    data = os.path.join(res, "plots")
    os.makedirs(data, exist_ok=True)
    for png in latency(res, data) + population(res, data) + migration(res, data):
        print("  wrote %s" % png)


if __name__ == "__main__":
    main()
