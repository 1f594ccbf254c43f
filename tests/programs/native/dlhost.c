/* Loads a plugin with dlopen after it started, then calls its leaking
 * function every tick. Usage: dlhost PLUGIN.so TICKS   (a tick is 50 ms) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 3) return 2;
    int ticks = atoi(argv[2]);
    usleep(300000); /* a census or more before the plugin exists */
    void *plugin = dlopen(argv[1], RTLD_NOW);
    if (!plugin) {
        fprintf(stderr, "dlopen: %s\n", dlerror());
        return 1;
    }
    size_t (*keep)(void) = (size_t (*)(void))dlsym(plugin, "plugin_keep");
    size_t kept = 0;
    for (int t = 0; t < ticks; t++) {
        kept = keep();
        usleep(50000);
    }
    printf("kept %zu bytes\n", kept);
    return 0;
}
