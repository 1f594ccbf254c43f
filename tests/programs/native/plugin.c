/* A plugin loaded with dlopen by dlhost.c: plugin_keep() keeps 64 blocks
 * of 512 bytes a call. */
#include <stdlib.h>
#include <string.h>

static void **kept;
static size_t n, cap;

__attribute__((noinline)) size_t plugin_keep(void) {
    for (int i = 0; i < 64; i++) {
        if (n == cap) {
            cap = cap ? cap * 2 : 1024;
            kept = realloc(kept, cap * sizeof *kept);
        }
        kept[n] = malloc(512);
        memset(kept[n], 6, 512);
        n++;
    }
    return n * 512;
}
