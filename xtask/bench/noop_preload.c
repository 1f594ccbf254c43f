/* The floor of LD_PRELOAD interposition, for `cargo xtask bench native`:
 * malloc, calloc, realloc and free that call glibc's straight through
 * (resolved once with dlsym(RTLD_NEXT) at load), nothing else. What a
 * program pays under it is what any preloaded allocator wrapper pays;
 * what `run --native` costs beyond it is memtrail's own.
 * Build: gcc -O2 -shared -fPIC -o noop_preload.so noop_preload.c -ldl */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stddef.h>

static void *(*real_malloc)(size_t);
static void (*real_free)(void *);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);

/* dlsym may calloc before calloc is known: those blocks come from here. */
static _Alignas(16) char arena[65536];
static size_t arena_used;

static int in_arena(void *p) {
    return (char *)p >= arena && (char *)p < arena + sizeof arena;
}

__attribute__((constructor)) static void resolve(void) {
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_free = dlsym(RTLD_NEXT, "free");
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
}

void *malloc(size_t n) {
    if (!real_malloc) resolve();
    return real_malloc(n);
}

void free(void *p) {
    if (in_arena(p)) return;
    if (!real_free) resolve();
    real_free(p);
}

void *calloc(size_t a, size_t b) {
    if (!real_calloc) {
        size_t n = (a * b + 15) & ~(size_t)15;
        if (arena_used + n > sizeof arena) return NULL;
        void *p = arena + arena_used;
        arena_used += n;
        return p;
    }
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n) {
    if (!real_realloc) resolve();
    if (in_arena(p)) {
        void *q = real_malloc(n);
        char *d = q, *s = p;
        for (size_t i = 0; q && i < n && s + i < arena + sizeof arena; i++) d[i] = s[i];
        return q;
    }
    return real_realloc(p, n);
}
