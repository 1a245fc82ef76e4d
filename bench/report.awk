# bench/report.awk: turns the "@ SERVER/CLIENT key=value ..." lines of bench/run.sh into the
# Markdown report: medians over the repetitions, ratios to the raw floor of the same server.
# Variables: reps, machine, cmd, date, tools, page, quick.

function median(label, key,    n, i, j, t, a) {
  n = cnt[label, key]
  if (n == 0) return ""
  for (i = 1; i <= n; i++) a[i] = val[label, key, i] + 0
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
# pmedian(label, base, key): the median over the repetitions of label's figure divided by base's
# from the same repetition (run one after the other, so a machine that slows down or speeds up
# through the run moves both); the ratio of the medians when the counts differ
function pmedian(label, base, key,    n, i, j, t, a) {
  n = cnt[label, key]
  if (n == 0 || cnt[base, key] == 0) return ""
  if (n != cnt[base, key]) return median(label, key) / median(base, key)
  for (i = 1; i <= n; i++) {
    if (val[base, key, i] + 0 == 0) return ""
    a[i] = val[label, key, i] / val[base, key, i]
  }
  for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j >= 1 && a[j] > t; j--) a[j + 1] = a[j]; a[j + 1] = t }
  return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function pratio(label, base, key,    r) { r = pmedian(label, base, key); return r == "" ? "–" : sprintf("%.2f×", r) }
function server(l) { sub(/\/.*/, "", l); return l }
function client(l) { sub(/^[^\/]*\//, "", l); return l }
function mb(kb) { return kb == "" ? "–" : sprintf("%.1f", kb / 1024) }
function met(ok) { return ok ? "met" : "**missed**" }

$1 == "@" {
  label = $2
  if (!(label in seen)) { seen[label] = 1; order[++nl] = label }
  for (i = 3; i <= NF; i++) {
    split($i, kv, "=")
    k = kv[1]
    cnt[label, k]++
    val[label, k, cnt[label, k]] = kv[2]
  }
}

END {
  print "# mcplink benchmarks"
  print ""
  printf "%s. Machine: %s. Medians of %d repetition%s; all traffic on 127.0.0.1.\n", date, machine, reps, reps == 1 ? "" : "s"
  printf "Reproduce with `%s`.%s\n", cmd, quick ? " (quick run: small inputs, figures not meaningful)" : ""
  print ""
  print "## Tool calls (warm `echo` tool call, API key)"
  print ""
  print "Servers: `https-json`, `https-sse`, `http-json` and `https-legacy` are the C fixture (`bench/fixture_server.c`:"
  print "2026-07-28 stateless, SSE replies, plain HTTP, 2025-11-25 with a session); `sdk-v2-server` and"
  print "`sdk-v1-server` are the official SDK fixture servers. Clients: `raw` = one keep-alive libcurl handle doing"
  print "the exchange by hand (the floor; `raw-8t`: 8 threads with a handle each); `engine-1t`/`engine-8t` = `tool.call` through `mcpl_op` (policies,"
  print "classification check, secret decryption, audit config as shipped) from 1 or 8 threads, linked as the `mcplink` binary"
  print "is (libmcplink.a, with Debian's static Lua and SQLite, built without -fPIC); `engine-1t-shared`: the same with the"
  print "system's shared Lua and SQLite, as libmcplink.so and the Python binding load them; `cli_*` = one"
  print "`mcplink` process per call (`op server.list`, `op tool.call`; `cli_start_*`: the friendly forms"
  print "`server list` and `call ASSISTANT TOOL ARGS`; `cli_run`: one `mcplink run` process calling `tool.call` in a"
  print "loop for 1 s (0.1 s in a quick run) after a first call, its p50 the mean cost of a call there as the script's"
  print "own clock times it, start-up excluded; the median of three processes); `sdk-v2`/`sdk-v1` = the official"
  print "TypeScript SDK clients (Node 22). `mcplink` opens libcurl, libpq, libcrypto and libedit when a command first"
  print "needs them (`core/dynlib.c`): `server list` maps none of them, `call` opens libcurl and libcrypto;"
  print "`exec_true`, `exec_curl_version` and `exec_curl_call` are this machine's floors for a process (`/bin/true`;"
  print "Debian's curl printing its version: the loader binding libcurl and what it needs; and curl making the"
  print "HTTPS call `mcplink call` makes: the same headers, body and API key, the server's answer required)."
  print "CPU µs per call is the client process's user+system time (getrusage), not the server's. Each ratio is"
  print "the median over the repetitions of a figure divided by its baseline's from the same repetition."
  print ""
  print "| server | client | calls/s | p50 µs | p99 µs | CPU µs/call | peak RSS MB | p50 ÷ raw | calls/s ÷ raw |"
  print "|---|---|---:|---:|---:|---:|---:|---:|---:|"
  for (i = 1; i <= nl; i++) {
    l = order[i]
    if (cnt[l, "calls_s"] == 0) continue
    s = server(l); c = client(l)
    cs = median(l, "calls_s"); p50 = median(l, "p50_us")
    p99 = median(l, "p99_us"); if (p99 != "") p99 = sprintf("%.1f", p99) # a loop's mean has none
    printf "| %s | %s | %.0f | %.1f | %s | %.1f | %s | %s | %s |\n", s, c, cs, p50, p99,
      median(l, "cpu_us"), mb(median(l, "rss_kb")), c == "raw" ? "1.00×" : pratio(l, s "/raw", "p50_us"), c == "raw" ? "1.00×" : pratio(l, s "/raw", "calls_s")
  }
  print ""
  printf "## Discovery and persistence (%d tools: one page, and pages of %d)\n", tools, page
  print ""
  print "`raw` fetches every `tools/list` page with one libcurl handle; `engine_first` is `server.update` saving"
  print "the URL (discovery of every kind, validation of each tool, storing all of them in one transaction);"
  print "`engine_refresh` is `server.refresh` on the unchanged server (diff against the stored definitions);"
  print "`engine_changed` is `server.update` saving the URL again after the server changed one tool's description"
  print "(the whole list diffed against the stored one, the tool held for an admin's approval);"
  print "`engine_persist_floor` is SQLite alone writing the rows the engine stored for the capabilities (one"
  print "list per kind, and a row per tool awaiting approval; one transaction) into a copy of the engine's"
  print "database without them: the same schema, indexes, triggers, WAL and `synchronous=FULL`, the cost of"
  print "storing them at all."
  printf "With pages of %d, the paged run fetches %d pages. The engine's list guards (`lua/mcp/paging.lua`)\n", page, int((tools + page - 1) / page)
  print "admit 1,000 pages, 100,000 items and 16 MiB per list."
  print ""
  print "| server | client | wall ms | CPU ms | peak RSS MB | wall ÷ raw |"
  print "|---|---|---:|---:|---:|---:|"
  for (i = 1; i <= nl; i++) {
    l = order[i]
    if (cnt[l, "wall_ms"] == 0) continue
    s = server(l); c = client(l)
    w = median(l, "wall_ms")
    printf "| %s | %s | %.1f | %.1f | %s | %s |\n", s, c, w, median(l, "cpu_ms"), mb(median(l, "rss_kb")),
      c == "raw" ? "1.00×" : pratio(l, s "/raw", "wall_ms")
  }
  print ""
  print "## Engine costs without the network"
  print ""
  print "| what | p50 µs |"
  print "|---|---:|"
  for (i = 1; i <= nl; i++) {
    l = order[i]
    if (cnt[l, "p50_us"] == 0 || cnt[l, "calls_s"] > 0) continue
    printf "| %s | %.2f |\n", client(l), median(l, "p50_us")
  }
  print ""
  print "`policy_call`: the tenant's `url()` policy decision (warm sandbox); `net_decide`: URL parse, settings and"
  print "policy; `url_check_op`: the whole `url.check` op through `mcpl_op`; `dispatch_op`: `engine.info` through"
  print "`mcpl_op` (the dispatch floor); `reveal`: reading and decrypting an API key (AES-256-GCM) from the store;"
  print "`row_read`: reading the same record's plain columns."
  print ""
  print "## PostgreSQL beside SQLite (the same ops, same run)"
  print ""
  print "`-pg` rows: the same client on a PostgreSQL database over its unix socket (a throwaway cluster,"
  print "`tests/tools/pg.sh`), one connection per engine Lua state; the others use a SQLite file."
  print ""
  print "| what | SQLite | PostgreSQL | PostgreSQL ÷ SQLite |"
  print "|---|---:|---:|---:|"
  split("p50_us calls_s", ks, " "); split("p50 µs|calls/s", kn, "|")
  for (t = 1; t <= 2; t++) {
    th = t == 1 ? "1t" : "8t"
    for (q = 1; q <= 2; q++) {
      a = median("https-json/engine-" th, ks[q]); b = median("https-json/engine-" th "-pg", ks[q])
      if (a != "" && b != "") printf "| `tool.call` %s thread%s, %s | %.1f | %.1f | %.2f× |\n", t == 1 ? "1" : "8", t == 1 ? "" : "s", kn[q], a, b, b / a
    }
  }
  split("first refresh", dk, " ")
  for (q = 1; q <= 2; q++) {
    a = median("discover-1-page/engine_" dk[q], "wall_ms"); b = median("discover-1-page/engine-pg_" dk[q], "wall_ms")
    if (a != "" && b != "") printf "| discovery %s, %d tools, wall ms | %.1f | %.1f | %.2f× |\n", dk[q], tools, a, b, b / a
  }
  print ""
  print "## Targets (report only; never asserted)"
  print ""
  print "| target | measured | |"
  print "|---|---|---|"
  e1 = median("https-json/engine-1t", "p50_us"); r1 = median("https-json/raw", "p50_us")
  q1 = pmedian("https-json/engine-1t", "https-json/raw", "p50_us")
  if (q1 != "") printf "| `tool.call` p50 ≤ 1.5× raw floor (fast fixture, HTTPS) | %.2f× (%.0f vs %.0f µs) | %s |\n", q1, e1, r1, met(q1 <= 1.5)
  ec = median("https-json/engine-1t", "calls_s"); rc = median("https-json/raw", "calls_s")
  for (v = 2; v >= 1; v--) {
    sc = median("https-json/sdk-v" v, "calls_s")
    # the floor's own ratio bounds the engine's: no client of this server gets past it
    fl = rc != "" && sc != "" ? sprintf("; the raw libcurl floor itself: %.1f×", rc / sc) : ""
    if (ec != "" && sc != "") printf "| throughput ≥ 15× SDK v%d client (same server) | %.1f× (%.0f vs %.0f calls/s%s) | %s |\n", v, ec / sc, ec, sc, fl, met(ec / sc >= 15)
  }
  split("discover-1-page discover-pages", ds, " ")
  for (d = 1; d <= 2; d++) {
    ew = median(ds[d] "/engine_first", "wall_ms"); rw = median(ds[d] "/raw", "wall_ms")
    qd = pmedian(ds[d] "/engine_first", ds[d] "/raw", "wall_ms")
    if (qd != "") printf "| discovery + persistence ≤ 3× raw fetch (%s) | %.1f× (%.0f vs %.0f ms) | %s |\n", ds[d], qd, ew, rw, met(qd <= 3)
    rs = median(ds[d] "/engine_first", "rss_kb")
    if (rs != "") printf "| peak RSS < 32 MB during discovery (%s) | %.1f MB | %s |\n", ds[d], rs / 1024, met(rs < 32768)
  }
  e8 = median("https-json/engine-8t", "calls_s")
  q8 = pmedian("https-json/engine-8t", "https-json/engine-1t", "calls_s")
  if (q8 != "") printf "| 8 threads ≥ 1.6× one thread (this machine: %s) | %.2f× (%.0f vs %.0f calls/s) | %s |\n", machine, q8, e8, ec, met(q8 >= 1.6)
  a = median("https-json/engine-1t", "p50_us"); b = median("https-json/engine-1t-pg", "p50_us")
  qp = pmedian("https-json/engine-1t-pg", "https-json/engine-1t", "p50_us")
  if (qp != "") printf "| `tool.call` p50 on PostgreSQL ≤ 1.3× SQLite (loopback) | %.2f× (%.0f vs %.0f µs) | %s |\n", qp, b, a, met(qp <= 1.3)
  cl = median("https-json/cli_server_list", "p50_us")
  if (cl != "") printf "| CLI one-shot `op server.list` < 15 ms | %.1f ms | %s |\n", cl / 1000, met(cl < 15000)
  print ""
  print "## Targets of issue #16 (report only; never asserted)"
  print ""
  print "Every ratio is to a baseline measured in the same run: the median, over the repetitions, of each"
  print "repetition's figure divided by its baseline's, measured just before it. `mcplink call` excludes the"
  print "server by subtracting the raw floor's p50 for one call on the same server."
  print ""
  print "| target | measured | |"
  print "|---|---|---|"
  es = median("https-json/engine-1t-shared", "p50_us")
  qs = pmedian("https-json/engine-1t-shared", "https-json/raw", "p50_us")
  esnote = (qs != "") ? sprintf("; with the system's shared Lua and SQLite, as libmcplink.so loads them: %.2f× (%.0f µs)", qs, es) : ""
  if (q1 != "") printf "| `tool.call` p50 through the C API, 1 thread ≤ 1.5× raw | %.2f× (%.0f vs %.0f µs%s) | %s |\n", q1, e1, r1, esnote, met(q1 <= 1.5)
  rn = median("https-json/cli_run", "p50_us"); qn = pmedian("https-json/cli_run", "https-json/raw", "p50_us")
  if (qn != "") printf "| `tool.call` through one `mcplink run` process ≤ 2× raw (mean per call in the loop) | %.2f× (%.0f vs %.0f µs) | %s |\n", qn, rn, r1, met(qn <= 2)
  r8 = median("https-json/raw-8t", "calls_s"); rc1 = median("https-json/raw", "calls_s")
  q8r = pmedian("https-json/raw-8t", "https-json/raw", "calls_s")
  r8note = (q8r != "") ? sprintf("; the raw floor from 8 threads: %.2f× its one thread (%.0f vs %.0f calls/s), the same server on the same 2 CPUs", q8r, r8, rc1) : ""
  if (q8 != "") printf "| 8 threads ≥ 1.8× one thread (calls/s) | %.2f× (%.0f vs %.0f calls/s%s) | %s |\n", q8, e8, ec, r8note, met(q8 >= 1.8)
  for (d = 1; d <= 2; d++) {
    ew = median(ds[d] "/engine_first", "wall_ms"); rw = median(ds[d] "/raw", "wall_ms")
    pf = median(ds[d] "/engine_persist_floor", "wall_ms")
    pfnote = (pf != "" && rw != "") ? sprintf("; SQLite alone writing the same rows: %.0f ms, %.1f× the fetch", pf, pf / rw) : ""
    qd = pmedian(ds[d] "/engine_first", ds[d] "/raw", "wall_ms")
    if (qd != "") printf "| discovery + persistence ≤ 5× raw fetch (%s) | %.1f× (%.0f vs %.0f ms%s) | %s |\n", ds[d], qd, ew, rw, pfnote, met(qd <= 5)
    rs = median(ds[d] "/engine_first", "rss_kb"); rr = median(ds[d] "/engine_refresh", "rss_kb")
    if (rr != "" && rr > rs) rs = rr
    if (rs != "") printf "| peak RSS ≤ 32 MB during discovery and refresh (%s) | %.1f MB | %s |\n", ds[d], rs / 1024, met(rs <= 32768)
  }
  sl = median("https-json/cli_start_server_list", "p50_us"); ex = median("https-json/cli_exec_true", "p50_us")
  cv = median("https-json/cli_exec_curl_version", "p50_us")
  if (sl != "") printf "| one CLI process `mcplink server list` ≤ 4 ms | %.1f ms (this machine: `/bin/true` %.1f ms, `curl --version` %.1f ms) | %s |\n", sl / 1000, ex / 1000, cv / 1000, met(sl <= 4000)
  sc1 = median("https-json/cli_start_call", "p50_us"); cc = median("https-json/cli_exec_curl_call", "p50_us")
  qc = pmedian("https-json/cli_start_call", "https-json/cli_exec_curl_call", "p50_us")
  ccnote = (qc != "") ? sprintf("; Debian's `curl` making the same HTTPS call as one process: %.1f ms, mcplink %.2f× it", cc / 1000, qc) : ""
  if (sc1 != "" && r1 != "") printf "| one CLI process `mcplink call …` ≤ 15 ms without the server | %.1f ms (%.1f ms − %.2f ms raw; `/bin/true`: %.1f ms, `curl --version` %.1f ms%s) | %s |\n", (sc1 - r1) / 1000, sc1 / 1000, r1 / 1000, ex / 1000, cv / 1000, ccnote, met(sc1 - r1 <= 15000)
  # wall ratios move with the machine's speed through a run; CPU per call is the engine's own cost
  ecpu = median("https-json/engine-1t", "cpu_us"); rcpu = median("https-json/raw", "cpu_us")
  scpu = median("https-json/engine-1t-shared", "cpu_us")
  scnote = (scpu != "") ? sprintf(" (%.0f µs with the shared Lua and SQLite)", scpu) : ""
  if (ecpu != "" && rcpu != "") printf "\nCPU per call (the client process, user + system): `tool.call` %.0f µs%s, the raw floor %.0f µs (%.2f×).\n", ecpu, scnote, rcpu, ecpu / rcpu
  print ""
  print "Where each missed target spends its time, with profiles, and why it has not gone lower without"
  print "dropping a check: README \"Performance\" (\"What profiles show is left\")."
}
