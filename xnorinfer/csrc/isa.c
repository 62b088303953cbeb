#include "isa.h"

#include <stddef.h>

#include "arch.h"
#include "kernels.h"

#if defined(XI_NEON) && defined(__linux__)
#include <sys/auxv.h>
/* The kernel's feature bits (uapi asm/hwcap.h), spelt out so that no kernel header is needed. */
#if defined(__aarch64__)
#define XI_HWCAP_NEON (1ul << 1) /* HWCAP_ASIMD */
#else
#define XI_HWCAP_NEON (1ul << 12) /* HWCAP_NEON */
#endif
#endif

/* Linux says whether the CPU has Advanced SIMD in AT_HWCAP; elsewhere (macOS, Windows on ARM)
 * only aarch64 builds get here, where it is part of the base ISA. aarch64's dotprod (UDOT could
 * sum byte counts) and SVE are not used yet. */
static unsigned detect(void)
{
    unsigned f = 0;
#ifdef XI_X86
    /* libgcc's and compiler-rt's detection also checks XCR0, i.e. that the OS saves the YMM/ZMM
     * state, not only the CPUID feature bits. */
    __builtin_cpu_init();
    f |= __builtin_cpu_supports("popcnt") ? XI_CPU_POPCNT : 0;
    f |= __builtin_cpu_supports("avx2") ? XI_CPU_AVX2 : 0;
    f |= __builtin_cpu_supports("fma") ? XI_CPU_FMA : 0;
    f |= __builtin_cpu_supports("avx512f") ? XI_CPU_AVX512F : 0;
    f |= __builtin_cpu_supports("avx512bw") ? XI_CPU_AVX512BW : 0;
    f |= __builtin_cpu_supports("avx512vpopcntdq") ? XI_CPU_AVX512VPOPCNTDQ : 0;
#endif
#if defined(XI_NEON) && defined(__linux__)
    f |= (getauxval(AT_HWCAP) & XI_HWCAP_NEON) ? XI_CPU_NEON : 0;
#elif defined(XI_NEON) && defined(__aarch64__)
    f |= XI_CPU_NEON;
#endif
    return f;
}

/* Detection is idempotent, so threads racing on the first call store the same value. */
static volatile unsigned features_cache, features_known;

unsigned xi_cpu_features(void)
{
    if (!features_known) {
        features_cache = detect();
        features_known = 1;
    }
    return features_cache;
}

static const char *const feature_names[XI_CPU_FEATURE_COUNT] = {
    "popcnt", "avx2", "fma", "avx512f", "avx512bw", "avx512_vpopcntdq", "neon",
};

const char *xi_cpu_feature_name(int i)
{
    return (i >= 0 && i < XI_CPU_FEATURE_COUNT) ? feature_names[i] : "unknown";
}

static const char *const names[XI_ISA_COUNT] = {"scalar", "avx2", "avx512bw", "avx512", "neon"};

static const unsigned requires[XI_ISA_COUNT] = {
    [XI_ISA_SCALAR] = 0,
    [XI_ISA_AVX2] = XI_CPU_AVX2 | XI_CPU_FMA,
    [XI_ISA_AVX512BW] = XI_CPU_AVX2 | XI_CPU_FMA | XI_CPU_AVX512F | XI_CPU_AVX512BW,
    [XI_ISA_AVX512] = XI_CPU_AVX2 | XI_CPU_FMA | XI_CPU_AVX512F | XI_CPU_AVX512VPOPCNTDQ,
    [XI_ISA_NEON] = XI_CPU_NEON,
};

const char *xi_isa_name(xi_isa isa)
{
    return (isa >= 0 && isa < XI_ISA_COUNT) ? names[isa] : "unknown";
}

unsigned xi_isa_requires(xi_isa isa)
{
    return (isa >= 0 && isa < XI_ISA_COUNT) ? requires[isa] : ~0u;
}

int xi_isa_compiled(xi_isa isa) { return xi_kernels_for(isa) != NULL; }

int xi_isa_supported(xi_isa isa)
{
    return xi_isa_compiled(isa) && (xi_cpu_features() & xi_isa_requires(isa)) == xi_isa_requires(isa);
}

xi_isa xi_isa_best(void)
{
    for (int isa = XI_ISA_COUNT - 1; isa > XI_ISA_SCALAR; --isa)
        if (xi_isa_supported((xi_isa)isa))
            return (xi_isa)isa;
    return XI_ISA_SCALAR;
}

static int current_isa = -1;

xi_isa xi_isa_get(void)
{
    if (current_isa < 0)
        current_isa = (int)xi_isa_best();
    return (xi_isa)current_isa;
}

int xi_isa_set(xi_isa isa)
{
    if (!xi_isa_supported(isa))
        return -1;
    current_isa = (int)isa;
    return 0;
}
