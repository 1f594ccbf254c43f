/* A program with an allocator of its own under the standard names (as a
 * program linking jemalloc or tcmalloc statically has): memtrail's
 * preloaded sampler cannot see its allocations and must say so.
 * Usage: own_malloc TICKS   (a tick is 50 ms) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char arena[64 << 20];
static size_t used;

void *malloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (used + n + 16 > sizeof arena) return NULL;
    char *p = arena + used + 16;
    *(size_t *)(p - 16) = n;
    used += n + 16;
    return p;
}
void free(void *p) { (void)p; }
void *calloc(size_t a, size_t b) {
    void *p = malloc(a * b);
    if (p) memset(p, 0, a * b);
    return p;
}
void *realloc(void *old, size_t n) {
    void *p = malloc(n);
    if (p && old) {
        size_t was = *(size_t *)((char *)old - 16);
        memcpy(p, old, was < n ? was : n);
    }
    return p;
}

int main(int argc, char **argv) {
    int ticks = argc > 1 ? atoi(argv[1]) : 10;
    for (int t = 0; t < ticks; t++) {
        memset(malloc(4096), 1, 4096);
        usleep(50000);
    }
    printf("done\n");
    return 0;
}
