/* The binary convolution's epilogue: int32 popcounts of a tile of output rows -> float outputs
 * (scale, bias, residual, RPReLU) and, when asked, the next layer's packed signs. Compiled per
 * instruction set (bconv_epilogue_impl.h); kernels.c lists the builds. */
#ifndef XNORINFER_BCONV_EPILOGUE_H
#define XNORINFER_BCONV_EPILOGUE_H

#include <stdint.h>

#include "bconv.h"

/* Output channels [oc0, oc0 + count) of `rows` rows from their popcounts c (rows of ldc); see
 * the definition for the details. Returns nonzero if a packed value was NaN. */
typedef int64_t xi_epilogue_kernel(const xi_bconv_geom *g, const xi_epilogue *ep, const int32_t *c, int ldc,
                                   int rows, const int *valid_taps, int64_t res_row0, int64_t out_row0, int oc0,
                                   int count, float *out, float *scratch);

/* The most rows an epilogue call takes at once on its fastest path (more run row by row). */
#define XI_EPILOGUE_MAX_ROWS 64

#endif
