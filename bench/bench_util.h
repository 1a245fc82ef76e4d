/* bench_util.h: shared helpers of the benchmark programs (header-only, static): clocks, CPU
 * time and peak RSS from getrusage, and the "@ LABEL key=value" result lines run.sh reads. */
#ifndef BENCH_UTIL_H
#define BENCH_UTIL_H
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>

typedef struct { double us; } bu_cpu;

static inline double bu_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

/* user + system CPU time of the whole process (every thread) */
static inline bu_cpu bu_cpu_now(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  bu_cpu c = { (double)ru.ru_utime.tv_sec * 1e6 + (double)ru.ru_utime.tv_usec +
               (double)ru.ru_stime.tv_sec * 1e6 + (double)ru.ru_stime.tv_usec };
  return c;
}

static inline double bu_cpu_since(bu_cpu c0) { return bu_cpu_now().us - c0.us; }

static inline long bu_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static inline int bu_cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* sorts lat[] and prints calls/s, p50, p99, CPU µs per call and peak RSS */
static inline void bu_report_calls(const char *label, double *lat, int n, double wall_us, double cpu_us) {
  qsort(lat, (size_t)n, sizeof *lat, bu_cmp);
  printf("@ %s calls_s=%.0f p50_us=%.1f p99_us=%.1f cpu_us=%.1f rss_kb=%ld n=%d\n", label,
         n / (wall_us / 1e6), lat[n / 2], lat[(n * 99) / 100], cpu_us / n, bu_rss_kb(), n);
  fflush(stdout);
}
#endif
