/* Native allocation sites for memtrail's `run --native` tests.
 *
 * Usage: keeper MODE TICKS   (a tick is 50 ms)
 *   keep     keep_bytes() keeps 64 blocks of 512 bytes a tick; use_and_drop()
 *            allocates as many bytes and frees them. Prints what was kept.
 *   steady   allocation-heavy, nothing kept: 20000 blocks of varied sizes
 *            allocated and freed every tick.
 *   threads  8 threads allocate and free 2000 blocks a tick each, and each
 *            keeps 16 blocks of 512 bytes a tick in hoard(). Prints the total.
 *   fork     a forked child keeps blocks in forked_keeps(); another child
 *            execs `keeper keep TICKS`; the parent only churns.
 * Every block is written, so the memory is resident.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE 512
static volatile size_t sink;

struct kept { void **blocks; size_t n, cap; };

static void push(struct kept *k, void *p) {
    if (k->n == k->cap) {
        k->cap = k->cap ? k->cap * 2 : 1024;
        k->blocks = realloc(k->blocks, k->cap * sizeof *k->blocks);
    }
    k->blocks[k->n++] = p;
}

static struct kept main_kept;

__attribute__((noinline)) void keep_bytes(void) {
    char *p = malloc(SIZE);
    memset(p, 1, SIZE);
    push(&main_kept, p);
}

__attribute__((noinline)) void use_and_drop(void) {
    char *p = malloc(SIZE);
    memset(p, 2, SIZE);
    sink += p[SIZE / 2];
    free(p);
}

__attribute__((noinline)) void tick(void) {
    for (int i = 0; i < 64; i++) {
        keep_bytes();
        use_and_drop();
    }
}

static void mode_keep(int ticks) {
    for (int t = 0; t < ticks; t++) {
        tick();
        usleep(50000);
    }
    printf("kept %zu bytes\n", main_kept.n * SIZE);
}

__attribute__((noinline)) void churn_all(void **slots, int n, unsigned *seed) {
    for (int i = 0; i < n; i++) {
        size_t size = 16 + (rand_r(seed) % 2048);
        slots[i] = malloc(size);
        memset(slots[i], 3, size < 64 ? size : 64);
    }
    for (int i = 0; i < n; i++) free(slots[i]);
}

static void mode_steady(int ticks) {
    static void *slots[20000];
    unsigned seed = 1;
    for (int t = 0; t < ticks; t++) {
        churn_all(slots, 20000, &seed);
        usleep(50000);
    }
    printf("kept 0 bytes\n");
}

static int thread_ticks;

__attribute__((noinline)) void hoard(struct kept *k) {
    for (int i = 0; i < 16; i++) {
        char *p = malloc(SIZE);
        memset(p, 4, SIZE);
        push(k, p);
    }
}

static void *thread_main(void *arg) {
    struct kept *k = arg;
    void *slots[2000];
    unsigned seed = (unsigned)(size_t)arg;
    for (int t = 0; t < thread_ticks; t++) {
        churn_all(slots, 2000, &seed);
        hoard(k);
        usleep(50000);
    }
    return NULL;
}

static void mode_threads(int ticks) {
    pthread_t threads[8];
    struct kept kept[8];
    memset(kept, 0, sizeof kept);
    thread_ticks = ticks;
    for (int i = 0; i < 8; i++) pthread_create(&threads[i], NULL, thread_main, &kept[i]);
    size_t total = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(threads[i], NULL);
        total += kept[i].n * SIZE;
    }
    printf("kept %zu bytes\n", total);
}

__attribute__((noinline)) void forked_keeps(void) {
    for (int i = 0; i < 64; i++) {
        char *p = malloc(SIZE);
        memset(p, 5, SIZE);
        push(&main_kept, p);
    }
}

static void mode_fork(const char *self, int ticks) {
    char arg[16];
    snprintf(arg, sizeof arg, "%d", ticks);
    pid_t forked = fork();
    if (forked == 0) {
        for (int t = 0; t < ticks; t++) {
            forked_keeps();
            usleep(50000);
        }
        printf("forked child %d kept %zu bytes\n", (int)getpid(), main_kept.n * SIZE);
        exit(0);
    }
    pid_t execed = fork();
    if (execed == 0) {
        execl(self, self, "keep", arg, (char *)NULL);
        _exit(127);
    }
    for (int t = 0; t < ticks; t++) {
        for (int i = 0; i < 64; i++) use_and_drop();
        usleep(50000);
    }
    int status;
    waitpid(forked, &status, 0);
    waitpid(execed, &status, 0);
    printf("parent done\n");
}

int main(int argc, char **argv) {
    if (argc != 3) {
        fprintf(stderr, "usage: keeper keep|steady|threads|fork TICKS\n");
        return 2;
    }
    int ticks = atoi(argv[2]);
    if (!strcmp(argv[1], "keep")) mode_keep(ticks);
    else if (!strcmp(argv[1], "steady")) mode_steady(ticks);
    else if (!strcmp(argv[1], "threads")) mode_threads(ticks);
    else if (!strcmp(argv[1], "fork")) mode_fork(argv[0], ticks);
    else return 2;
    fflush(stdout);
    return 0;
}
