/* A process with N separate anonymous mappings, for `cargo xtask bench`.
 *
 * usage: memtrail-bench-mappings N [CHILDREN [CHURN_MS]]
 *
 * Maps one region of 2*N pages, writes the first page of every two-page
 * slot, then makes every other slot read-only: adjacent slots differ in
 * their protection, so the kernel cannot merge them and /proc/PID/smaps
 * lists N regions (plus the program's own), each with one resident page.
 *
 * CHILDREN: also fork that many sleeping children (a tree to record).
 * CHURN_MS: every CHURN_MS milliseconds, change 1% of the regions (at least
 * one): fault in, or give back, the second page of writable slots in turn.
 *
 * Prints "ready" once everything exists, then runs until killed. */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s N [CHILDREN [CHURN_MS]]\n", argv[0]);
        return 2;
    }
    long n = atol(argv[1]);
    long children = argc > 2 ? atol(argv[2]) : 0;
    long churn_ms = argc > 3 ? atol(argv[3]) : 0;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t slot = 2 * page;
    char *base = NULL;
    if (n > 0) {
        base = mmap(NULL, (size_t)n * slot, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (base == MAP_FAILED) {
            perror("mmap");
            return 1;
        }
        for (long i = 0; i < n; i++) {
            base[i * slot] = 1;
        }
        for (long i = 1; i < n; i += 2) {
            if (mprotect(base + i * slot, slot, PROT_READ) != 0) {
                perror("mprotect (is vm.max_map_count too low?)");
                return 1;
            }
        }
    }
    for (long i = 0; i < children; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("fork");
            return 1;
        }
        if (pid == 0) {
            for (;;) {
                pause();
            }
        }
    }
    printf("ready\n");
    fflush(stdout);
    if (churn_ms <= 0 || n < 2) {
        for (;;) {
            pause();
        }
    }
    long writable = (n + 1) / 2;
    long per_tick = n / 100 > 0 ? n / 100 : 1;
    long next = 0;
    struct timespec tick = {churn_ms / 1000, (churn_ms % 1000) * 1000000L};
    for (unsigned long round = 0;; round++) {
        for (long k = 0; k < per_tick; k++) {
            char *second = base + (2 * (next % writable)) * slot + page;
            if ((round / ((writable + per_tick - 1) / per_tick)) % 2 == 0) {
                second[0] = 1;
            } else {
                madvise(second, page, MADV_DONTNEED);
            }
            next++;
        }
        nanosleep(&tick, NULL);
    }
}
