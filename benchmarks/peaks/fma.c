/* FMA peak of one core: `iters` steps of N independent multiply-adds on registers (no loads), so
 * the loop is bound by the FMA ports alone. 12 YMM / 24 ZMM chains: more than ports x latency
 * (2 x 4) on any current x86 core, fewer than the register file. Returns a value of the chains so
 * that the compiler keeps them. A float conv's GMAC/s over (lanes x steps x chains / seconds) is
 * its share of the peak. */
#include <immintrin.h>
#include <stdint.h>

#define CHAINS_AVX2 12
#define CHAINS_AVX512 24

int xi_peak_fma_avx2_chains(void) { return CHAINS_AVX2; }
int xi_peak_fma_avx512_chains(void) { return CHAINS_AVX512; }

__attribute__((target("avx2,fma"))) float xi_peak_fma_avx2(int64_t iters)
{
    __m256 acc[CHAINS_AVX2];
    const __m256 a = _mm256_set1_ps(0.999f), b = _mm256_set1_ps(0.001f);
    for (int i = 0; i < CHAINS_AVX2; ++i)
        acc[i] = _mm256_set1_ps((float)i);
    for (int64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 12
        for (int i = 0; i < CHAINS_AVX2; ++i)
            acc[i] = _mm256_fmadd_ps(acc[i], a, b);
    }
    __m256 s = acc[0];
    for (int i = 1; i < CHAINS_AVX2; ++i)
        s = _mm256_add_ps(s, acc[i]);
    return _mm256_cvtss_f32(s);
}

__attribute__((target("avx512f,fma"))) float xi_peak_fma_avx512(int64_t iters)
{
    __m512 acc[CHAINS_AVX512];
    const __m512 a = _mm512_set1_ps(0.999f), b = _mm512_set1_ps(0.001f);
    for (int i = 0; i < CHAINS_AVX512; ++i)
        acc[i] = _mm512_set1_ps((float)i);
    for (int64_t n = 0; n < iters; ++n) {
#pragma GCC unroll 24
        for (int i = 0; i < CHAINS_AVX512; ++i)
            acc[i] = _mm512_fmadd_ps(acc[i], a, b);
    }
    __m512 s = acc[0];
    for (int i = 1; i < CHAINS_AVX512; ++i)
        s = _mm512_add_ps(s, acc[i]);
    return _mm512_reduce_add_ps(s);
}
