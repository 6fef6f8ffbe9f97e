/* hf_vq's fused CPU nearest-code search (opt-in: hf_vq.quantizers.nearest.set_cpu_search_kernel("fused")).
 *
 * For each row of L (N x D) the first index of the minimum of L C^T over the K rows of C (K x D), computed without
 * ever storing more than one group of scores: nearest_code passes L = [v, 1] and C = [-2 c, |c|^2], so the score
 * is |c|^2 - 2 v.c; max_inner_product passes L = v and C = -c.
 *
 * Layout (prepared by fused_search.py): L packed as (N / ROWS, D, ROWS), so component j of a block of ROWS rows is
 * ROWS contiguous values; C as (K, D) rows, K a multiple of CODES.
 *
 * Blocking, for the benchmark machine (AVX2 + FMA, 16 vector registers, 32 KiB L1d, 512 KiB L2 per core) and any
 * other with 32-byte vectors:
 *   - register block: CODES codes x ROWS rows = 8 accumulator vectors (float32); for each component j, the block's
 *     two row vectors are loaded once and each code's component is broadcast once: 6 loads per 8 FMAs;
 *   - the scores of GROUP codes are kept (4 KiB, L1) while a running lane-wise minimum is taken, one vminps per
 *     vector; only where a row's group minimum beats its best so far is the group scanned for the first code
 *     equal to it (for random data a row improves about ln(K / GROUP) times, so the index costs almost nothing);
 *   - codes run in blocks of CODE_BLOCK (4,096 x 9 floats, 144 KiB: L2), shared by the ROW_PANEL rows of a panel.
 * Ties: a later group replaces the best only when strictly smaller and a group's first equal score wins, so the
 * result is the first index of the minimum of these (float32 or float64) scores. A row whose scores are all +inf
 * or NaN gets index 0.
 */
#include <math.h>
#include <stdint.h>

#define ROWS 16
#define CODES 4
#define GROUP 64
#define ROW_PANEL 256
#define CODE_BLOCK 4096
#define VECTOR_BYTES 32

/* read by fused_search.py, which packs the rows and pads the codes to these */
const int hf_vq_rows_per_block = ROWS;
const int hf_vq_codes_per_block = CODES;
const int hf_vq_rows_per_panel = ROW_PANEL;

#define UNROLL _Pragma("GCC unroll 16")
#define CONCAT_(a, b) a##b
#define CONCAT(a, b) CONCAT_(a, b)

#ifdef __AVX__
#include <immintrin.h>
#endif

#define REAL float
#define INTEGER int32_t
#define FIRST_ARGMIN hf_vq_first_argmin_float32
#ifdef __AVX__
#define VECTOR_MIN _mm256_min_ps
#endif
#include "first_argmin.h"
#undef REAL
#undef INTEGER
#undef FIRST_ARGMIN
#undef VECTOR_MIN

#define REAL double
#define INTEGER int64_t
#define FIRST_ARGMIN hf_vq_first_argmin_float64
#ifdef __AVX__
#define VECTOR_MIN _mm256_min_pd
#endif
#include "first_argmin.h"
