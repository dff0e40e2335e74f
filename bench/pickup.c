// (gcc -O2 -Wno-format-truncation)
// Pickup latency: the time from a producer's rename(2) into inbox/ to the
// daemon's claim (its rename into processing/, seen through inotify), one
// job at a time; and, in the same run, the raw inotify latency (rename into
// a watched directory to the event), the floor of any watcher.
//   pickup SPOOLDIR N   -> prints "raw p50 p99 | pickup p50 p99" in ms
#define _GNU_SOURCE
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec * 1e3 + t.tv_nsec / 1e6; }
static int cmp(const void *a, const void *b) { double x = *(double *)a, y = *(double *)b; return x < y ? -1 : x > y; }
static double pct(double *v, int n, double p) { return v[(int)(p * (n - 1) + 0.5)]; }

// Waits for IN_MOVED_TO of `name` on fd; returns the time it was read.
static double wait_for(int fd, const char *name) {
    char buf[65536] __attribute__((aligned(8)));
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0) { fprintf(stderr, "timeout waiting for %s\n", name); exit(1); }
        ssize_t n = read(fd, buf, sizeof buf);
        double t = now();
        for (char *q = buf; q < buf + n;) {
            struct inotify_event *e = (struct inotify_event *)q;
            if (e->len && strcmp(e->name, name) == 0) return t;
            q += sizeof *e + e->len;
        }
    }
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: pickup SPOOL N\n"); return 2; }
    const char *root = argv[1]; int n = atoi(argv[2]);
    double *raw = calloc(n, sizeof *raw), *pick = calloc(n, sizeof *pick);
    char tmpd[4096], inbox[4096], proc[4096], scratch[4096], a[4096], b[4096], name[256];
    snprintf(tmpd, sizeof tmpd, "%s/tmp", root); snprintf(inbox, sizeof inbox, "%s/inbox", root);
    snprintf(proc, sizeof proc, "%s/processing", root); snprintf(scratch, sizeof scratch, "%s/tmp/scratch", root);
    mkdir(scratch, 0775);
    int fd = inotify_init1(IN_CLOEXEC);
    inotify_add_watch(fd, proc, IN_MOVED_TO);
    inotify_add_watch(fd, scratch, IN_MOVED_TO);
    const char *m = "{\"version\":1,\"type\":\"probe\",\"input\":\"a.wav\"}\n";
    for (int i = 0; i < n; i++) {
        // raw: rename into the watched scratch directory.
        snprintf(name, sizeof name, "r%d", i);
        snprintf(a, sizeof a, "%s/.r%d", tmpd, i); snprintf(b, sizeof b, "%s/%s", scratch, name);
        int f = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0664); close(f);
        double t0 = now(); rename(a, b); raw[i] = wait_for(fd, name) - t0; unlink(b);
        // pickup: rename a manifest into inbox/, wait for processing/.
        snprintf(name, sizeof name, "lat%d.json", i);
        snprintf(a, sizeof a, "%s/.lat%d", tmpd, i); snprintf(b, sizeof b, "%s/%s", inbox, name);
        f = open(a, O_WRONLY | O_CREAT | O_TRUNC, 0664); if (write(f, m, strlen(m)) < 0) perror("write"); close(f);
        t0 = now(); rename(a, b); pick[i] = wait_for(fd, name) - t0;
        usleep(2000);
    }
    qsort(raw, n, sizeof *raw, cmp); qsort(pick, n, sizeof *pick, cmp);
    printf("%.3f %.3f %.3f %.3f\n", pct(raw, n, .5), pct(raw, n, .99), pct(pick, n, .5), pick[(int)(0.99 * (n - 1) + 0.5)]);
    return 0;
}
