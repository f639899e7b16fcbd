/* What one `cpuid` instruction costs on this machine: on a virtual machine it traps to the
 * hypervisor. zstd runs three (leaves 0, 1 and 7) in every compression and decompression context
 * it creates, to ask for BMI2 (BENCHMARKS.md, "zstd contexts and cpuid").
 *
 *     cc -O2 bench/cpuid_cost.c -o /tmp/cpuid_cost && /tmp/cpuid_cost
 */
#include <stdio.h>
#include <time.h>

int main(void) {
    enum { N = 10000 };
    struct timespec a, b;
    unsigned sink = 0;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++) {
        unsigned eax = i % 2 ? 1 : 7, ebx, ecx = 0, edx;
        __asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "+c"(ecx), "=d"(edx));
        sink += ebx;
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = (b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec);
    printf("%.2f us per cpuid (%u)\n", ns / N / 1000, sink & 1);
    return 0;
}
