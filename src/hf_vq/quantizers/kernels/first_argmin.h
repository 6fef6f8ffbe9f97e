/* One instantiation of the fused search for the floating-point type REAL (see nearest_code.c, which
 * includes this file once per type with REAL, INTEGER, VECTOR_MIN and FIRST_ARGMIN defined). */

typedef REAL CONCAT(vector_, REAL) __attribute__((vector_size(VECTOR_BYTES)));
typedef INTEGER CONCAT(mask_, REAL) __attribute__((vector_size(VECTOR_BYTES)));
#define vector CONCAT(vector_, REAL)
#define mask CONCAT(mask_, REAL)
enum { CONCAT(LANES_, REAL) = VECTOR_BYTES / sizeof(REAL) };
#define LANES CONCAT(LANES_, REAL)
#define VECTORS (ROWS / LANES) /* vectors per column of a row block */

/* Lane-wise a < b ? a : b (b where either is NaN, as x86's minps); portable select where there is
 * no instruction for it. */
static inline vector CONCAT(lane_min_, REAL)(vector a, vector b)
{
#ifdef VECTOR_MIN
    return VECTOR_MIN(a, b);
#else
    const mask less = a < b;
    return (vector)(((mask)a & less) | ((mask)b & ~less));
#endif
}

/* Codes [first, end) against one block of ROWS rows: updates best (the row's smallest score so far)
 * and best_index (the first code that reached it). */
static void CONCAT(scan_codes_, REAL)(const REAL *rows, const REAL *codes, int64_t first, int64_t end,
                                      int64_t dim, REAL *best, int64_t *best_index)
{
    REAL scores[GROUP][ROWS] __attribute__((aligned(VECTOR_BYTES))); /* one group's scores: 4 KiB of float32 */
    for (int64_t group = first; group < end; group += GROUP) {
        const int64_t count = end - group < GROUP ? end - group : GROUP; /* a multiple of CODES */
        vector group_min[VECTORS];
        UNROLL
        for (int v = 0; v < VECTORS; v++)
            group_min[v] = (vector){0} + (REAL)INFINITY;
        for (int64_t c = 0; c < count; c += CODES) {
            const REAL *code = codes + (group + c) * dim;
            vector acc[CODES][VECTORS];
            UNROLL
            for (int k = 0; k < CODES; k++)
                UNROLL
                for (int v = 0; v < VECTORS; v++)
                    acc[k][v] = (vector){0};
            /* the register block: CODES x ROWS scores, each row vector loaded once per component and
             * each code component broadcast once */
            for (int64_t j = 0; j < dim; j++) {
                vector row[VECTORS];
                UNROLL
                for (int v = 0; v < VECTORS; v++)
                    __builtin_memcpy(&row[v], rows + j * ROWS + v * LANES, sizeof(vector));
                UNROLL
                for (int k = 0; k < CODES; k++) {
                    const REAL component = code[k * dim + j];
                    UNROLL
                    for (int v = 0; v < VECTORS; v++)
                        acc[k][v] += row[v] * component;
                }
            }
            UNROLL
            for (int k = 0; k < CODES; k++)
                UNROLL
                for (int v = 0; v < VECTORS; v++) {
                    __builtin_memcpy(scores[c + k] + v * LANES, &acc[k][v], sizeof(vector));
                    group_min[v] = CONCAT(lane_min_, REAL)(acc[k][v], group_min[v]);
                }
        }
        /* Rarely true once a few groups are done (a random row's minimum improves about ln(K / GROUP)
         * times), so the first index is looked up in the stored scores only then: an earlier group
         * keeps a tie (strict <), the first equal score wins inside the group. */
        REAL minima[ROWS];
        __builtin_memcpy(minima, group_min, sizeof(minima));
        for (int r = 0; r < ROWS; r++)
            if (minima[r] < best[r]) {
                best[r] = minima[r];
                for (int64_t c = 0; c < count; c++)
                    if (scores[c][r] == minima[r]) {
                        best_index[r] = group + c;
                        break;
                    }
            }
    }
}

void FIRST_ARGMIN(const REAL *packed_rows, const REAL *codes, int64_t num_rows, int64_t num_codes, int64_t dim,
                  int64_t *out)
{
    for (int64_t panel = 0; panel < num_rows; panel += ROW_PANEL) {
        const int64_t panel_rows = num_rows - panel < ROW_PANEL ? num_rows - panel : ROW_PANEL;
        const int64_t blocks = (panel_rows + ROWS - 1) / ROWS;
        REAL best[ROW_PANEL];
        int64_t best_index[ROW_PANEL];
        for (int r = 0; r < ROW_PANEL; r++) {
            best[r] = (REAL)INFINITY;
            best_index[r] = 0; /* kept when every score is +inf or NaN */
        }
        for (int64_t start = 0; start < num_codes; start += CODE_BLOCK) {
            const int64_t end = num_codes - start < CODE_BLOCK ? num_codes : start + CODE_BLOCK;
            for (int64_t b = 0; b < blocks; b++)
                CONCAT(scan_codes_, REAL)(packed_rows + (panel / ROWS + b) * dim * ROWS, codes, start, end, dim,
                                          best + b * ROWS, best_index + b * ROWS);
        }
        for (int64_t r = 0; r < panel_rows; r++)
            out[panel + r] = best_index[r];
    }
}

#undef vector
#undef mask
#undef LANES
#undef VECTORS
