/* Instruction-set selection. The CPU's features are detected once; each ISA level names the
 * features its kernels need (kernels.c holds the kernels, one row per level), and the best level
 * the CPU supports runs unless one is forced (xi_isa_set, XNORINFER_ISA in Python). */
#ifndef XNORINFER_ISA_H
#define XNORINFER_ISA_H

#ifdef __cplusplus
extern "C" {
#endif

/* In order of preference within an architecture, best last. */
typedef enum {
    XI_ISA_SCALAR = 0,   /* portable C; uses the popcnt instruction where the CPU has it */
    XI_ISA_AVX2 = 1,     /* x86-64 AVX2 + FMA: nibble-table popcount (no vector popcount) */
    XI_ISA_AVX512BW = 2, /* x86-64 AVX-512F + BW + FMA without VPOPCNTDQ (Skylake-SP, Cascade Lake) */
    XI_ISA_AVX512 = 3,   /* x86-64 AVX-512F + VPOPCNTDQ + FMA (Ice Lake server and later, Zen 4) */
    XI_ISA_NEON = 4,     /* Advanced SIMD, aarch64 or ARMv7 with NEON: byte popcount (CNT) */
    XI_ISA_COUNT = 5
} xi_isa;

/* CPU (and OS) features, one bit each: an x86 AVX feature counts only where the OS saves the
 * registers it needs (XCR0). */
enum {
    XI_CPU_POPCNT = 1u << 0,
    XI_CPU_AVX2 = 1u << 1,
    XI_CPU_FMA = 1u << 2,
    XI_CPU_AVX512F = 1u << 3,
    XI_CPU_AVX512BW = 1u << 4,
    XI_CPU_AVX512VPOPCNTDQ = 1u << 5,
    XI_CPU_NEON = 1u << 6,
};

#define XI_CPU_FEATURE_COUNT 7

/* This CPU's XI_CPU_* bits, detected on the first call. */
unsigned xi_cpu_features(void);
/* The name of feature bit i (XI_CPU_* = 1 << i), as /proc/cpuinfo spells it. */
const char *xi_cpu_feature_name(int i);
/* The XI_CPU_* bits an ISA's kernels need. */
unsigned xi_isa_requires(xi_isa isa);

const char *xi_isa_name(xi_isa isa);
/* 1 if this build has kernels for `isa`. */
int xi_isa_compiled(xi_isa isa);
/* 1 if the kernels are compiled and this CPU (and OS) can run them. */
int xi_isa_supported(xi_isa isa);
/* The best supported ISA. */
xi_isa xi_isa_best(void);
/* The ISA the kernels use now; starts as xi_isa_best(). */
xi_isa xi_isa_get(void);
/* Force an ISA; returns 0 on success, -1 if it is not supported here (nothing changes then). */
int xi_isa_set(xi_isa isa);

#ifdef __cplusplus
}
#endif
#endif
