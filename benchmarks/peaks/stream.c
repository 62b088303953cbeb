/* Streaming read of n floats (a multiple of 64 is not needed): their sum, 4 independent vector
 * chains of adds so that the adds never limit a read from memory. The reference for a dense
 * layer at batch 1, which reads each weight once: its time over this loop's on the same bytes,
 * caches flushed the same way before both. */
#include <immintrin.h>
#include <stdint.h>

__attribute__((target("avx2"))) float xi_stream_avx2(const float *p, int64_t n)
{
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        a0 = _mm256_add_ps(a0, _mm256_loadu_ps(p + i));
        a1 = _mm256_add_ps(a1, _mm256_loadu_ps(p + i + 8));
        a2 = _mm256_add_ps(a2, _mm256_loadu_ps(p + i + 16));
        a3 = _mm256_add_ps(a3, _mm256_loadu_ps(p + i + 24));
    }
    float s = 0.0f;
    for (; i < n; ++i)
        s += p[i];
    __m256 t = _mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3));
    float lanes[8];
    _mm256_storeu_ps(lanes, t);
    for (int l = 0; l < 8; ++l)
        s += lanes[l];
    return s;
}

__attribute__((target("avx512f"))) float xi_stream_avx512(const float *p, int64_t n)
{
    __m512 a0 = _mm512_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    int64_t i = 0;
    for (; i + 64 <= n; i += 64) {
        a0 = _mm512_add_ps(a0, _mm512_loadu_ps(p + i));
        a1 = _mm512_add_ps(a1, _mm512_loadu_ps(p + i + 16));
        a2 = _mm512_add_ps(a2, _mm512_loadu_ps(p + i + 32));
        a3 = _mm512_add_ps(a3, _mm512_loadu_ps(p + i + 48));
    }
    float s = 0.0f;
    for (; i < n; ++i)
        s += p[i];
    return s + _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
}
