/* Per-ISA builds of the binary convolution's epilogue (see bconv_epilogue.h). */
#include "bconv_epilogue.h"

#include <stddef.h>

#include "isa.h"

#define XI_SUFFIX scalar
#define XI_TARGET
#include "bconv_epilogue_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define XI_EPILOGUE_X86 1
#define XI_SUFFIX avx2
#define XI_TARGET __attribute__((target("avx2")))
#include "bconv_epilogue_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET
#define XI_SUFFIX avx512
#define XI_TARGET __attribute__((target("avx512f")))
#include "bconv_epilogue_impl.h"
#undef XI_SUFFIX
#undef XI_TARGET
#endif

xi_epilogue_fn xi_epilogue_for(int isa)
{
#ifdef XI_EPILOGUE_X86
    if (isa == XI_ISA_AVX512)
        return epilogue_avx512;
    if (isa == XI_ISA_AVX2)
        return epilogue_avx2;
#else
    (void)isa;
#endif
    return epilogue_scalar;
}
