# tests/python/san.sh: sourced by the Python tests. A library built with sanitizers (make asan) is
# loaded into Debian's python3, which is not: the sanitizer runtimes are preloaded for it, and
# LeakSanitizer is off (the interpreter keeps memory until exit by design), and the quarantine of
# freed memory is small (1 MB, not 256 MB) so that the binding's memory-growth test measures the
# process, not the quarantine.
if [ -n "${MCPLINK_SAN:-}" ]; then
  pre=""
  for r in libasan.so libubsan.so; do
    f=$(${CC:-cc} -print-file-name=$r)
    [ -f "$f" ] && pre="$pre $f"
  done
  export LD_PRELOAD="${pre# }" ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:quarantine_size_mb=1}
fi
