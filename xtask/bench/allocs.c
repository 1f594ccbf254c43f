/* An allocation-heavy program for `cargo xtask bench native`: N times,
 * replace a random one of 4096 live blocks by a new one of 16..1040 bytes
 * (a malloc and a free each), touching it. At the end it prints its own
 * CPU time and peak RSS, so the cost of a preloaded sampler on the program
 * itself is measured apart from the recorder's. Usage: allocs N */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 10000000;
    static void *slots[4096];
    unsigned seed = 1;
    unsigned long sum = 0;
    for (long i = 0; i < n; i++) {
        unsigned k = (unsigned)rand_r(&seed) % 4096;
        free(slots[k]);
        size_t size = 16 + (unsigned)rand_r(&seed) % 1025;
        char *p = malloc(size);
        p[0] = (char)i;
        p[size - 1] = (char)k;
        slots[k] = p;
        sum += (unsigned char)p[0];
    }
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("sum %lu\n", sum);
    printf("cpu_us %ld\n", ru.ru_utime.tv_sec * 1000000L + ru.ru_utime.tv_usec +
                               ru.ru_stime.tv_sec * 1000000L + ru.ru_stime.tv_usec);
    printf("maxrss_kib %ld\n", ru.ru_maxrss);
    return 0;
}
