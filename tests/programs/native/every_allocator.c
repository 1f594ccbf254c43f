/* Every allocation function the sampler interposes, with the checks a
 * program relies on: contents kept by realloc and reallocarray, calloc's
 * zeroes, alignment of memalign, aligned_alloc, posix_memalign, valloc and
 * pvalloc, malloc_usable_size at least the size asked, invalid alignments
 * refused as glibc refuses them, and sampling going on after them. Run at
 * a tiny rate, nearly every block is sampled (and carries the sampler's
 * header). Prints "bad N" and "sampled-rounds N". Usage: every_allocator */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static unsigned long bad;
#define CHECK(c) do { if (!(c)) { bad++; fprintf(stderr, "line %d: %s\n", __LINE__, #c); } } while (0)

int main(void) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    volatile size_t huge = (size_t)-1; /* volatile: no compile-time warning */
    for (int i = 0; i < 20000; i++) {
        size_t n = 16 + (size_t)(i % 5000);
        char *p = malloc(n);
        CHECK(p != NULL);
        memset(p, 7, n);
        CHECK(malloc_usable_size(p) >= n);
        p = reallocarray(p, 2, n);
        CHECK(p && p[0] == 7 && p[n - 1] == 7);
        p = realloc(p, 3);
        CHECK(p && p[2] == 7);
        char *c = calloc(10, 100 + (size_t)(i % 100));
        CHECK(c != NULL);
        for (size_t k = 0; c && k < 1000; k++) if (c[k]) { CHECK(c[k] == 0); break; }
        void *a = aligned_alloc(64, 128 + (size_t)(i % 512));
        CHECK(a && (size_t)a % 64 == 0);
        void *m = memalign(4096, 100);
        CHECK(m && (size_t)m % 4096 == 0);
        void *v = valloc(100);
        CHECK(v && (size_t)v % page == 0);
        void *pv = pvalloc(1 + (size_t)(i % 9000));
        CHECK(pv && (size_t)pv % page == 0 && malloc_usable_size(pv) >= 1 + (size_t)(i % 9000));
        void *q = NULL;
        CHECK(posix_memalign(&q, 256, 1000) == 0 && (size_t)q % 256 == 0);
        void *r = NULL;
        CHECK(posix_memalign(&r, 3, 10) != 0); /* not a power of two: EINVAL */
        CHECK(reallocarray(NULL, huge, 16) == NULL);
        free(p); free(c); free(a); free(m); free(v); free(pv); free(q);
        free(realloc(NULL, 10));
        free(NULL);
    }
    printf("bad %lu\n", bad);
    return bad != 0;
}
