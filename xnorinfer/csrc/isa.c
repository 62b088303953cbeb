#include "isa.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_X86 1
#endif
#if defined(__aarch64__) && defined(__ARM_NEON)
#define XI_NEON 1
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
    if (isa == XI_ISA_NEON) /* Advanced SIMD is part of every ARMv8-A CPU */
        return 1;
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
