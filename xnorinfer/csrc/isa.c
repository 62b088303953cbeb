#include "isa.h"

#include "neon.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_X86 1
#endif

#if defined(XI_NEON) && defined(__linux__)
#include <sys/auxv.h>
/* The kernel's feature bits (uapi asm/hwcap.h), spelt out so that no kernel header is needed. */
#if defined(__aarch64__)
#define XI_HWCAP_NEON (1ul << 1) /* HWCAP_ASIMD */
#else
#define XI_HWCAP_NEON (1ul << 12) /* HWCAP_NEON */
#endif
#endif

/* 1 if the CPU has Advanced SIMD. Linux says so in AT_HWCAP; elsewhere (macOS, Windows on ARM)
 * only aarch64 builds get here, where it is part of the base ISA. aarch64's dotprod (HWCAP_ASIMDDP,
 * UDOT could sum byte counts) and SVE are not used yet. */
#ifdef XI_NEON
static int cpu_has_neon(void)
{
#if defined(__linux__)
    return (getauxval(AT_HWCAP) & XI_HWCAP_NEON) != 0;
#elif defined(__aarch64__)
    return 1;
#else
    return 0;
#endif
}
#endif

static const char *const isa_names[XI_ISA_COUNT] = {"scalar", "avx2", "avx512", "neon"};

const char *xi_isa_name(xi_isa isa)
{
    return (isa >= 0 && isa < XI_ISA_COUNT) ? isa_names[isa] : "unknown";
}

int xi_isa_compiled(xi_isa isa)
{
    switch (isa) {
    case XI_ISA_SCALAR:
        return 1;
#ifdef XI_X86
    case XI_ISA_AVX2:
    case XI_ISA_AVX512:
        return 1;
#endif
#ifdef XI_NEON
    case XI_ISA_NEON:
        return 1;
#endif
    default:
        return 0;
    }
}

int xi_cpu_has_popcnt(void)
{
#ifdef XI_X86
    __builtin_cpu_init();
    return __builtin_cpu_supports("popcnt") != 0;
#else
    return 0;
#endif
}

int xi_isa_supported(xi_isa isa)
{
    if (!xi_isa_compiled(isa))
        return 0;
#ifdef XI_X86
    /* libgcc's and compiler-rt's detection also checks XCR0, i.e. that the OS saves the
     * YMM/ZMM state, not only the CPUID feature bits. */
    __builtin_cpu_init();
    switch (isa) {
    case XI_ISA_AVX2: /* the float kernels of this level use FMA too */
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    case XI_ISA_AVX512:
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vpopcntdq") &&
               __builtin_cpu_supports("fma");
    default:
        break;
    }
#endif
#ifdef XI_NEON
    if (isa == XI_ISA_NEON)
        return cpu_has_neon();
#endif
    return isa == XI_ISA_SCALAR;
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
