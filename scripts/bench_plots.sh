# shellcheck shell=bash
# The plots section of make bench (sourced by scripts/bench.sh), run last:
# population curves of mixed2g (bytes in place over time with no touches:
# lazy from the file, eager, lazy from the optimized snapshot the prefetch
# section wrote, lazy from nginx), then scripts/bench_plots.py draws every
# PNG the run's JSON allows next to it in $res: per-touch latency CDFs per
# mode, the population curves, the migration timeline.

section_plots() {
	echo
	if ! command -v gnuplot >/dev/null; then
		echo "== plots: skipped (gnuplot is not installed; scripts/deps.sh installs gnuplot-nox)"
		return 0
	fi
	mixed_snapshot mixed2g 2G 1
	echo "== plots: population curves of mixed2g (no touches), then PNGs from this run's JSON"
	rm -f "$res"/*.png
	local snap=$work/mixed2g.snap
	"$thaw" bench "$snap" --mode lazy --touch random:0% --population --json >"$res/pop-lazy.json"
	"$thaw" bench "$snap" --mode eager --touch random:0% --population --json >"$res/pop-eager.json"
	if [ -s "$work/mixed2g.opt.snap" ]; then
		"$thaw" bench "$work/mixed2g.opt.snap" --mode lazy --touch random:0% --population \
			--json >"$res/pop-prefetch.json"
	fi
	if [ -x /usr/sbin/nginx ] && http_nginx_start mixed2g.snap; then
		trap http_nginx_stop EXIT
		"$thaw" bench "http://127.0.0.1:$http_port/mixed2g.snap" --mode lazy --touch random:0% \
			--population --json >"$res/pop-http.json"
		http_nginx_stop
		trap - EXIT
	fi
	python3 scripts/bench_plots.py "$res"
}
