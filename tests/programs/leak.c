/* Native leaks for memtrail's analyzer tests.
 *
 * Usage: leak MODE SECONDS
 *   malloc  16 x 64 KiB malloc'd blocks every 100 ms, never freed: the brk
 *           heap ([heap]) grows.
 *   mmap    one new 1 MiB anonymous mapping every 100 ms, never unmapped;
 *           its last page is PROT_NONE so the kernel cannot merge it with
 *           its neighbours: the leak shows as new regions.
 * Every page is written, so the memory is resident.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: leak malloc|mmap SECONDS\n");
        return 2;
    }
    const char *mode = argv[1];
    double seconds = atof(argv[2]);
    double start = now();
    long page = sysconf(_SC_PAGESIZE);
    for (int i = 0; now() - start < seconds; i++) {
        if (strcmp(mode, "malloc") == 0) {
            for (int j = 0; j < 16; j++) {
                char *p = malloc(64 * 1024);
                if (!p) return 1;
                memset(p, i + j, 64 * 1024);
            }
        } else if (strcmp(mode, "mmap") == 0) {
            size_t size = 1 << 20;
            char *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) return 1;
            memset(p, 1, size - page);
            mprotect(p + size - page, page, PROT_NONE);
        } else {
            fprintf(stderr, "unknown mode %s\n", mode);
            return 2;
        }
        double next = start + (i + 1) * 0.1;
        double wait = next - now();
        if (wait > 0) usleep((useconds_t)(wait * 1e6));
    }
    return 0;
}
