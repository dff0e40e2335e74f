// (gcc -O2 -Wno-format-truncation)
// The floor for the spool overhead: a plain loop doing, per job, the file
// operations mediaspool's durable path does for a first attempt (claim,
// result, events, publish, clean-up), with the same fsyncs, on the same disk. No parsing, no media.
//   floor SPOOLDIR N   -> prints jobs/s
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static void fsync_dir(const char *d) { int fd = open(d, O_RDONLY | O_DIRECTORY | O_CLOEXEC); fsync(fd); close(fd); }
// One line appended to the events log as mediaspool appends it: under a
// flock on events/.lock, the segment stat'ed, opened O_APPEND, one write,
// fdatasync for a terminal event.
static void append_event(const char *dir, const char *line, int terminal) {
    char lock[4096], seg[4096]; struct stat st;
    snprintf(lock, sizeof lock, "%s/.lock", dir); snprintf(seg, sizeof seg, "%s/00000000000000000001.jsonl", dir);
    int lk = open(lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600); flock(lk, LOCK_EX | LOCK_NB);
    stat(seg, &st);
    int fd = open(seg, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0640);
    if (write(fd, line, strlen(line)) < 0) perror("write");
    if (terminal) fdatasync(fd);
    close(fd); close(lk);
}

static void write_durable(const char *dir, const char *name, const char *body) {
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-%d", dir, name, getpid());
    snprintf(dst, sizeof dst, "%s/%s", dir, name);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0664);
    if (write(fd, body, strlen(body)) < 0) perror("write");
    fsync(fd); close(fd);
    rename(tmp, dst);
    fsync_dir(dir);
}

int main(int argc, char **argv) {
    if (argc < 3) { fprintf(stderr, "usage: floor SPOOL N\n"); return 2; }
    const char *root = argv[1]; int n = atoi(argv[2]);
    char d[8][4096]; const char *names[] = {"inbox", "processing", "done", "locks", "state", "events"};
    for (int i = 0; i < 6; i++) { snprintf(d[i], 4096, "%s/%s", root, names[i]); mkdir(d[i], 0775); }
    const char *manifest = "{\"version\":1,\"type\":\"probe\",\"input\":\"a.wav\"}\n";
    for (int i = 0; i < n; i++) {   // producer side, not timed
        char p[4096]; snprintf(p, sizeof p, "%s/j%d.json", d[0], i);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0664); if (write(fd, manifest, strlen(manifest)) < 0) perror("write"); close(fd);
    }
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    char a[4096], b[4096], name[256], buf[4096];
    for (int i = 0; i < n; i++) {
        snprintf(a, sizeof a, "%s/j%d.lock", d[3], i);
        int lk = open(a, O_RDWR | O_CREAT | O_CLOEXEC, 0660);
        flock(lk, LOCK_EX | LOCK_NB);
        struct stat s1, s2; fstat(lk, &s1); stat(a, &s2);
        snprintf(b, sizeof b, "%s/j%d.json", d[2], i); if (access(b, F_OK) == 0) return 1;   // dedup check
        snprintf(a, sizeof a, "%s/j%d.json", d[0], i); snprintf(b, sizeof b, "%s/j%d.json", d[1], i);
        rename(a, b); fsync_dir(d[1]); fsync_dir(d[0]);
        int mf = open(b, O_RDONLY | O_CLOEXEC); if (read(mf, buf, sizeof buf) < 0) perror("read"); close(mf);
        snprintf(a, sizeof a, "%s/j%d.json", d[4], i); unlink(a);   // a first attempt writes no state (a stray one goes)
        append_event(d[5], "{\"attempt\":1,\"event\":\"claimed\",\"id\":\"j\",\"state\":\"processing\",\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"probe\"}\n", 0);
        snprintf(name, sizeof name, "j%d.result.json", i); write_durable(d[2], name, "{\"status\":\"done\"}\n"); // result
        append_event(d[5], "{\"attempt\":1,\"event\":\"done\",\"id\":\"j\",\"outputs\":[],\"state\":\"done\",\"time\":\"2026-01-01T00:00:00.000Z\",\"type\":\"probe\"}\n", 1);
        snprintf(a, sizeof a, "%s/j%d.json", d[2], i); rename(b, a); fsync_dir(d[2]); fsync_dir(d[1]);  // publish
        snprintf(a, sizeof a, "%s/j%d.json", d[4], i); unlink(a);
        snprintf(a, sizeof a, "%s/j%d.lock", d[3], i); unlink(a); close(lk);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("%.1f\n", n / s);
    return 0;
}
