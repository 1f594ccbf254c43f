// A C++ leak behind a class method, for memtrail's `run --native` tests:
// Registry::remember grows a std::map of std::vectors and never forgets.
// Usage: registry TICKS   (a tick is 50 ms)
#include <cstdio>
#include <cstdlib>
#include <map>
#include <unistd.h>
#include <vector>

class Registry {
public:
    __attribute__((noinline)) void remember(int key) {
        entries_[key].assign(1024, static_cast<char>(key));
    }
    std::size_t bytes() const { return entries_.size() * 1024; }

private:
    std::map<int, std::vector<char>> entries_;
};

int main(int argc, char **argv) {
    int ticks = argc > 1 ? std::atoi(argv[1]) : 40;
    Registry registry;
    int key = 0;
    for (int t = 0; t < ticks; t++) {
        for (int i = 0; i < 32; i++) registry.remember(key++);
        usleep(50000);
    }
    std::printf("kept %zu bytes\n", registry.bytes());
    return 0;
}
