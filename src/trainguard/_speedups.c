/*
 * trainguard._speedups: optional compiled fast paths for the log readers.
 *
 * Why this exists: a metrics CSV of a long run is tens to hundreds of MB of
 * numbers, and issue 14 asks the table reader for >= 150 MB/s. Pure Python
 * and numpy top out near 50 MB/s on such a body (np.loadtxt 52, fromstring
 * 34, float() per cell 29), because every cell becomes a Python object or
 * goes through a general-purpose, locale-aware parser. Here the whole body is
 * parsed in one pass into a float64 buffer.
 *
 * The module is optional: the package installs without a compiler, and every
 * reader keeps a pure-Python path that gives the same result (the tests run
 * both). Functions here only take the plain case and return None for
 * anything else, so that the Python path, with its error messages and notes,
 * decides every unusual input.
 *
 * Numbers are bit-identical to Python's float(): plain decimals with at most
 * 19 significant digits whose value is exactly m * 10^e with m <= 2^53 and
 * |e| <= 22 are computed with one IEEE multiply or divide (Clinger's fast
 * path, exact because both operands are exact and one rounding follows);
 * every other number goes to PyOS_string_to_double, the correctly rounded,
 * locale-independent parser float() itself uses.
 *
 * No numpy headers: results come back as a bytearray of native float64 that
 * numpy.frombuffer wraps without a copy, so the build needs only Python.h.
 */
#define PY_SSIZE_T_CLEAN
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, where the C library has it */
#endif
#include <Python.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "_speedups_tb.h"

/* The one-operation fast path is exact only with IEEE double arithmetic that
 * rounds each operation to double (SSE2, ARM64); x87 extended precision or
 * -ffast-math could round twice, so there every number takes the slow path. */
#ifndef TG_FAST_FLOATS /* -DTG_FAST_FLOATS=0 builds the all-slow variant (the tests of this file use it) */
#if defined(__FAST_MATH__) || (defined(FLT_EVAL_METHOD) && FLT_EVAL_METHOD != 0) || DBL_MANT_DIG != 53
#define TG_FAST_FLOATS 0
#else
#define TG_FAST_FLOATS 1
#endif
#endif

/* 8-byte digit scanning needs GCC/Clang builtins and little-endian loads; elsewhere, byte by byte. */
#if defined(__GNUC__)
#define TG_INLINE static inline __attribute__((always_inline))
#define TG_NOINLINE static __attribute__((noinline))
#else
#define TG_INLINE static inline
#define TG_NOINLINE static
#endif
#ifndef TG_SWAR /* -DTG_SWAR=0 builds the byte-by-byte variant */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define TG_SWAR 1
#else
#define TG_SWAR 0
#endif
#endif

/* Longest number token handed to the slow parser; longer cells are not plain metrics. */
#define TG_MAX_TOKEN 128

#if TG_FAST_FLOATS
static const double POW10[23] = {
    1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
    1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};
#endif
#if TG_FAST_FLOATS || TG_SWAR
static const uint64_t UPOW10[16] = {
    1ULL, 10ULL, 100ULL, 1000ULL, 10000ULL, 100000ULL, 1000000ULL, 10000000ULL,
    100000000ULL, 1000000000ULL, 10000000000ULL, 100000000000ULL, 1000000000000ULL,
    10000000000000ULL, 100000000000000ULL, 1000000000000000ULL,
};
#endif
#define TG_2POW53 (1ULL << 53)

/* float("nan"), read once at import so an empty cell is the same NaN Python makes. */
static double tg_nan;

static inline int is_digit(unsigned char c) { return (unsigned char)(c - '0') < 10; }

static inline int lower_eq(const unsigned char *p, const unsigned char *end, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(end - p) < n) return 0;
    for (size_t i = 0; i < n; i++) {
        if ((p[i] | 0x20) != (unsigned char)word[i]) return 0;
    }
    return 1;
}

/* The slow, always-correct parse of token [p, end): Python's own parser. 0 on success. */
TG_NOINLINE int slow_parse(const unsigned char *p, const unsigned char *end, double *out) {
    char buf[TG_MAX_TOKEN + 1];
    Py_ssize_t n = end - p;
    char *stop = NULL;
    if (n <= 0 || n > TG_MAX_TOKEN) return -1;
    memcpy(buf, p, (size_t)n);
    buf[n] = '\0';
    double v = PyOS_string_to_double(buf, &stop, NULL);
    if (v == -1.0 && PyErr_Occurred()) {
        PyErr_Clear();
        return -1;
    }
    if (stop != buf + n) return -1;
    *out = v;
    return 0;
}

#if TG_SWAR
/* The value of 8 digits already reduced to 0..9 per byte, first digit in the lowest byte. */
TG_INLINE uint64_t eight_digits(uint64_t t) {
    t = (t * 10) + (t >> 8);
    return (((t & 0x000000FF000000FFULL) * (100 + (1000000ULL << 32))) +
            (((t >> 16) & 0x000000FF000000FFULL) * (1 + (10000ULL << 32)))) >> 32;
}
#endif

/*
 * The run of ASCII digits at p, folded into *m (m = m * 10^n + digits; it
 * wraps past 19 digits, which the caller sees from the run lengths). Eight
 * bytes at a time where eight can be read: the run length comes from a bit
 * mask and the value from three multiplies, so short runs cost no
 * mispredicted loop exit per digit.
 */
TG_INLINE const unsigned char *digit_run(const unsigned char *p, const unsigned char *end, uint64_t *m) {
#if TG_SWAR
    while (end - p >= 8) {
        uint64_t x;
        memcpy(&x, p, 8);
        uint64_t t = x ^ 0x3030303030303030ULL; /* digits become bytes 0..9 */
        /* a byte is no digit when its high nibble is set, before or after adding 6; a carry out of
         * a non-digit byte only reaches later bytes, so the first non-digit is always found */
        uint64_t nondigit = (t | (t + 0x0606060606060606ULL)) & 0xF0F0F0F0F0F0F0F0ULL;
        if (nondigit == 0) {
            *m = *m * 100000000ULL + eight_digits(t);
            p += 8;
            continue;
        }
        int n = __builtin_ctzll(nondigit) >> 3;
        if (n) {
            *m = *m * UPOW10[n] + eight_digits(t << (8 * (8 - n)));
            p += n;
        }
        return p;
    }
#endif
    while (p < end && is_digit(*p)) {
        *m = *m * 10 + (uint64_t)(*p - '0');
        p++;
    }
    return p;
}

/* nan, inf, infinity (any case, after an optional sign) at p: Python's parser reads them. */
TG_NOINLINE int parse_special(const unsigned char **pp, const unsigned char *start, const unsigned char *p,
                              const unsigned char *end, double *out) {
    const unsigned char *q;
    if (lower_eq(p, end, "nan")) q = p + 3;
    else if (lower_eq(p, end, "infinity")) q = p + 8;
    else if (lower_eq(p, end, "inf")) q = p + 3;
    else return -1;
    if (slow_parse(start, q, out) != 0) return -1;
    *pp = q;
    return 0;
}

/*
 * One number starting at *pp (no leading blanks), stopping at the first byte
 * that cannot continue it. The grammar is the plain subset of float():
 * [+-]? (digits [. digits?] | . digits) ([eE] [+-]? digits)?, or [+-]? nan |
 * inf | infinity in any case. Returns 0 and advances *pp, or -1 when the
 * token is not in that grammar (underscores, hex, unicode digits: those go
 * to the Python path, which reads them as float() does).
 */
#define TG_DEFERRED 2

/* In defer mode (a thread that holds no GIL), a number only Python's parser can read exactly is left to
 * it: TG_DEFERRED, *pp past the token, when its value is surely finite (|value| < 10^300), else -1 (the
 * caller's Python path decides). PyOS_string_to_double needs the GIL: its big-number pool is not
 * thread-safe. */
TG_INLINE int slow_or_defer(const unsigned char *start, const unsigned char *p, double *out, int defer, Py_ssize_t nd,
                            long long exp10) {
    if (!defer) return slow_parse(start, p, out);
    *out = tg_nan;
    return nd + exp10 <= 300 ? TG_DEFERRED : -1;
}

TG_INLINE int number_at(const unsigned char **pp, const unsigned char *end, double *out, int defer);

TG_INLINE int parse_number(const unsigned char **pp, const unsigned char *end, double *out) {
    return number_at(pp, end, out, 0);
}

TG_INLINE int number_at(const unsigned char **pp, const unsigned char *end, double *out, int defer) {
    const unsigned char *start = *pp, *p = *pp;
    int neg = 0;
    if (p < end && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    uint64_t m = 0;
    const unsigned char *digits = p;
    p = digit_run(p, end, &m);
    Py_ssize_t nd = p - digits;  /* digits in m, leading zeros included (a huge count goes slow) */
    long long exp10 = 0;         /* value = m * 10^exp10 */
    if (p < end && *p == '.') {
        const unsigned char *frac = ++p;
        p = digit_run(p, end, &m);
        nd += p - frac;
        exp10 = -(long long)(p - frac);
    } else if (nd == 0 && p < end && ((*p | 0x20) == 'n' || (*p | 0x20) == 'i')) {
        if (defer) return -1;
        return parse_special(pp, start, p, end, out);
    }
    if (nd == 0) return -1; /* ".", "-", "+.": no digit */
    if (p < end && (*p | 0x20) == 'e') {
        const unsigned char *q = p + 1;
        int eneg = 0, e = 0, edigits = 0;
        if (q < end && (*q == '+' || *q == '-')) {
            eneg = *q == '-';
            q++;
        }
        while (q < end && is_digit(*q)) {
            if (e < 100000) e = e * 10 + (*q - '0');
            edigits++;
            q++;
        }
        if (!edigits) return -1; /* "1e" or "1e+": float() refuses it */
        exp10 += eneg ? -e : e;
        p = q;
    }
    *pp = p;
#if TG_FAST_FLOATS
    if (nd <= 19) { /* m holds every digit */
        if (m == 0) {
            *out = neg ? -0.0 : 0.0;
            return 0;
        }
        if (m <= TG_2POW53) {
            double v = (double)m;
            if (exp10 >= 0 && exp10 <= 22) {
                v *= POW10[exp10];
            } else if (exp10 < 0 && exp10 >= -22) {
                v /= POW10[-exp10];
            } else if (exp10 > 22 && exp10 <= 22 + 15 && m <= TG_2POW53 / UPOW10[exp10 - 22]) {
                v = (double)(m * UPOW10[exp10 - 22]) * 1e22; /* m * 10^k is still exact: one rounding */
            } else {
                return slow_or_defer(start, p, out, defer, nd, exp10);
            }
            *out = neg ? -v : v;
            return 0;
        }
    }
#else
    (void)neg;
#endif
    return slow_or_defer(start, p, out, defer, nd, exp10);
}

static inline int is_blank(unsigned char c, unsigned char delim) {
    return c == ' ' || (c == '\t' && delim != '\t');
}

static inline int is_eol(unsigned char c) { return c == '\n' || c == '\r'; }

/*
 * True when the line starting at p is the last one with content, and it has
 * fewer than `width` fields by a plain delimiter count: the row a writer has
 * not finished (the Python path drops it with a note). Bytes that the csv
 * module or str.splitlines would read differently (quotes, NUL, other control
 * characters, non-ASCII) make it false, so such input takes the Python path.
 */
static int short_last_line(const unsigned char *p, const unsigned char *end, unsigned char delim,
                           Py_ssize_t width) {
    Py_ssize_t fields = 1;
    while (p < end && !is_eol(*p)) {
        unsigned char c = *p++;
        if (c == delim) fields++;
        else if (c == '"' || c >= 0x7f || (c < 0x20 && c != '\t')) return 0;
    }
    if (fields >= width) return 0;
    for (; p < end; p++) {
        if (!(*p == ' ' || *p == '\t' || is_eol(*p))) return 0;
    }
    return 1;
}

#if defined(__linux__)
#include <sys/mman.h>
#endif

/* Ask for transparent huge pages on a large output buffer, as numpy does for its arrays: on
 * Linux a first touch costs a page fault per 4 KiB, a measurable part of reading 100 MB. */
static void advise_huge(void *buf, size_t n) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t huge = (uintptr_t)1 << 21;
    uintptr_t a = ((uintptr_t)buf + huge - 1) & ~(huge - 1), e = ((uintptr_t)buf + n) & ~(huge - 1);
    if (n >= ((size_t)4 << 20) && e > a) (void)madvise((void *)a, e - a, MADV_HUGEPAGE);
#else
    (void)buf;
    (void)n;
#endif
}

/* Grow the column-major buffer `out` from cap to new_cap rows per column, keeping `rows` rows. */
static double *grow_columns(PyObject *out, Py_ssize_t width, Py_ssize_t cap, Py_ssize_t new_cap, Py_ssize_t rows) {
    if (new_cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double) / width) {
        PyErr_NoMemory();
        return NULL;
    }
    if (PyByteArray_Resize(out, new_cap * width * (Py_ssize_t)sizeof(double)) < 0) return NULL;
    double *vals = (double *)PyByteArray_AS_STRING(out);
    advise_huge(vals, (size_t)(new_cap * width) * sizeof(double));
    for (Py_ssize_t c = width - 1; c > 0; c--) { /* last column first: no column overwrites one not yet moved */
        memmove(vals + c * new_cap, vals + c * cap, (size_t)rows * sizeof(double));
    }
    return vals;
}

PyDoc_STRVAR(parse_table_doc,
"parse_table(body, delim, width) -> (values, rows, dropped_last) | None\n\n"
"Parse a delimited table body of numbers (the lines after the header) in one pass.\n\n"
"``body`` is a bytes-like object, ``delim`` the delimiter byte (``ord(',')``, ``ord('\\t')``),\n"
"``width`` the header's column count. Lines end with ``\\n``, ``\\r\\n`` or ``\\r``; lines of only\n"
"spaces and tabs are skipped; an empty cell is NaN; spaces (and tabs, unless tab is the\n"
"delimiter) around a number are ignored. ``values`` is a bytearray of ``width * rows``\n"
"native float64, column after column (``numpy.frombuffer(values).reshape(width, rows)``),\n"
"each bit-identical to ``float(cell)``. ``dropped_last`` is True when the last line had\n"
"fewer fields than ``width`` and was left out (a file still being written). Returns None\n"
"for anything else (a non-numeric or quoted cell, a ragged row, no rows): the caller's\n"
"pure-Python path handles those.");

static PyObject *parse_table(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    int delim_i;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*in:parse_table", &view, &delim_i, &width)) return NULL;
    if (width < 1 || delim_i < 1 || delim_i > 127 || delim_i == '\n' || delim_i == '\r' || delim_i == ' ' ||
        delim_i == '.' || delim_i == '+' || delim_i == '-' || (delim_i >= '0' && delim_i <= '9') ||
        ((delim_i | 0x20) >= 'a' && (delim_i | 0x20) <= 'z')) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "parse_table: width must be >= 1 and delim a punctuation or tab byte");
        return NULL;
    }
    const unsigned char delim = (unsigned char)delim_i;
    const unsigned char *p = (const unsigned char *)view.buf;
    const unsigned char *end = p + view.len;

    /* Columns are written side by side, cap rows apart; the first line's length guesses the
     * row count (a little over), the buffer doubles when short and is packed at the end. */
    const unsigned char *nl = memchr(p, '\n', (size_t)view.len);
    Py_ssize_t line_len = nl ? (nl - p) + 1 : view.len + 1;
    Py_ssize_t cap = view.len / line_len + 16;
    cap += cap / 8;
    if (cap > PY_SSIZE_T_MAX / (Py_ssize_t)sizeof(double) / width) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    PyObject *out = PyByteArray_FromStringAndSize(NULL, cap * width * (Py_ssize_t)sizeof(double));
    if (!out) {
        PyBuffer_Release(&view);
        return NULL;
    }
    double *vals = (double *)PyByteArray_AS_STRING(out);
    advise_huge(vals, (size_t)(cap * width) * sizeof(double));
    Py_ssize_t rows = 0;
    int dropped_last = 0;

    while (p < end) {
        /* skip blank lines and line ends */
        const unsigned char *q = p;
        while (q < end && (*q == ' ' || *q == '\t')) q++;
        if (q == end) break;
        if (is_eol(*q)) {
            p = q + 1;
            continue;
        }
        if (rows == cap) {
            if (cap > PY_SSIZE_T_MAX / 2) goto fail_nomem;
            vals = grow_columns(out, width, cap, 2 * cap, rows);
            if (!vals) goto fail;
            cap *= 2;
        }
        const unsigned char *line = p;
        double *cell = vals + rows;
        Py_ssize_t col = 0;
        for (;;) {
            double v;
            if (p < end && (is_digit(*p) || *p == '-' || *p == '.')) { /* the usual cell: a bare number */
                if (parse_number(&p, end, &v) != 0) goto bad_line;
            } else {
                while (p < end && is_blank(*p, delim)) p++;
                if (p == end || *p == delim || is_eol(*p)) {
                    v = tg_nan; /* empty cell: a missing value */
                } else if (parse_number(&p, end, &v) != 0) {
                    goto bad_line;
                }
            }
            if (col == width) goto bad_line; /* more fields than the header */
            *cell = v;
            cell += cap;
            col++;
            if (p < end && *p == delim) {
                p++;
                continue;
            }
            while (p < end && is_blank(*p, delim)) p++;
            if (p < end && *p == delim) {
                p++;
                continue;
            }
            if (p < end && !is_eol(*p)) goto bad_line; /* junk after a number */
            break; /* end of line or of input */
        }
        if (col != width) goto bad_line;
        rows++;
        if (p < end) p++; /* the line end */
        continue;
    bad_line:
        if (short_last_line(line, end, delim, width)) {
            dropped_last = 1;
            break;
        }
        goto none;
    }
    if (rows == 0) goto none;
    for (Py_ssize_t c = 1; c < width; c++) { /* pack: column c moves down from c * cap to c * rows */
        memmove(vals + c * rows, vals + c * cap, (size_t)rows * sizeof(double));
    }
    if (PyByteArray_Resize(out, rows * width * (Py_ssize_t)sizeof(double)) < 0) goto fail;
    PyBuffer_Release(&view);
    return Py_BuildValue("(NnO)", out, rows, dropped_last ? Py_True : Py_False);

none:
    Py_DECREF(out);
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
fail_nomem:
    PyErr_NoMemory();
fail:
    Py_DECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

PyDoc_STRVAR(parse_float_doc,
"parse_float(token) -> float | None\n\n"
"One number as parse_table reads a cell (surrounding spaces allowed; empty is NaN), or None\n"
"when the cell is outside the plain grammar. For tests: it must equal float(token).");

static PyObject *parse_float(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *p = (const unsigned char *)view.buf, *end = p + view.len;
    double v = tg_nan;
    while (p < end && *p == ' ') p++;
    if (p < end) {
        if (parse_number(&p, end, &v) != 0) goto none;
        while (p < end && *p == ' ') p++;
        if (p != end) goto none;
    }
    PyBuffer_Release(&view);
    return PyFloat_FromDouble(v);
none:
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* -- HF Trainer stdout: the dict scanner ------------------------------------------------ */

/*
 * hf_scan is _hf_scan.scan_exact in one pass: the same loop over the "{"
 * positions, the same rules, the same result. Why: in a tqdm-heavy log the
 * Python-level work per dict (a find, a regex over the bar after it) is what
 * costs; here the whole buffer is one memchr walk. The constants and the bar
 * grammar below are copies of MAX_DICT, BAR_WINDOW, _METRICISH,
 * _CLEAN_BEFORE, _REJECT_BEFORE and _BAR_AFTER: change them together (the
 * tests compare this function with scan_exact on fixtures and fuzz).
 */
#define TG_MAX_DICT 16384
#define TG_BAR_WINDOW 2048
#define TG_BAR_BODY 1600
#define TG_MAX_COUNT_DIGITS 18 /* a longer tqdm count may not fit int64: Python reads it with the regex */

static inline int is_blank4(unsigned char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }
static inline int is_space2(unsigned char c) { return c == ' ' || c == '\t'; }

/* A run of digits at *pp (advanced past it): its length, its value in *v when it has <= 18 digits. */
static Py_ssize_t count_digits(const unsigned char **pp, const unsigned char *end, int64_t *v) {
    const unsigned char *p = *pp, *d = p;
    int64_t x = 0;
    while (p < end && is_digit(*p)) {
        if (p - d < TG_MAX_COUNT_DIGITS) x = x * 10 + (*p - '0');
        p++;
    }
    *pp = p;
    *v = x;
    return p - d;
}

/*
 * _BAR_AFTER.match(buf, p - buf, end - buf):
 *   [ \t\r\n]*(?:\x1b\[A[ \t\r\n]*)*(?:\[rank\d+\]:[ \t]*)?[ \t]*\d{1,3}%\|[^|\n]{0,1600}\|[ \t]*(\d+)/(\d+)[ \t]*\[
 * Every part ends where the next must begin (blanks never start an escape, a
 * "[rank" prefix or a digit; a digit run is followed by what is not a digit;
 * the bar body stops at the first "|"), so the regex has at most one way to
 * match and reading left to right without backtracking decides it.
 * Returns 0 (no match), 1 (match: *n, *total), 2 (match, but a count has
 * more than 18 digits: the caller asks the regex for the values).
 */
static int bar_after(const unsigned char *p, const unsigned char *end, int64_t *n, int64_t *total) {
    while (p < end && is_blank4(*p)) p++;
    while (end - p >= 3 && p[0] == 0x1b && p[1] == '[' && p[2] == 'A') {
        p += 3;
        while (p < end && is_blank4(*p)) p++;
    }
    if (end - p >= 5 && memcmp(p, "[rank", 5) == 0) {
        const unsigned char *q = p + 5;
        int64_t ignored;
        if (count_digits(&q, end, &ignored) == 0) return 0;
        if (end - q < 2 || q[0] != ']' || q[1] != ':') return 0;
        p = q + 2;
    }
    while (p < end && is_space2(*p)) p++;
    int64_t pct;
    Py_ssize_t k = count_digits(&p, end, &pct);
    if (k < 1 || k > 3) return 0;
    if (end - p < 2 || p[0] != '%' || p[1] != '|') return 0;
    p += 2;
    const unsigned char *lim = (end - p > TG_BAR_BODY + 1) ? p + TG_BAR_BODY + 1 : end;
    while (p < lim && *p != '|' && *p != '\n') p++;
    if (p == lim || *p != '|') return 0;
    p++;
    while (p < end && is_space2(*p)) p++;
    Py_ssize_t k1 = count_digits(&p, end, n);
    if (k1 < 1 || p == end || *p != '/') return 0;
    p++;
    Py_ssize_t k2 = count_digits(&p, end, total);
    if (k2 < 1) return 0;
    while (p < end && is_space2(*p)) p++;
    if (p == end || *p != '[') return 0;
    return (k1 > TG_MAX_COUNT_DIGITS || k2 > TG_MAX_COUNT_DIGITS) ? 2 : 1;
}

/* The first `c` in [from, to) (clamped to the buffer), as bytes.find gives it; -1 when none. */
static inline Py_ssize_t find_byte(const unsigned char *b, Py_ssize_t n, unsigned char c, Py_ssize_t from, Py_ssize_t to) {
    if (to > n) to = n;
    if (from < 0) from = 0;
    if (from >= to) return -1;
    const unsigned char *h = memchr(b + from, c, (size_t)(to - from));
    return h ? h - b : -1;
}

/* buf.startswith(_METRICISH, i) */
static int metricish(const unsigned char *b, Py_ssize_t n, Py_ssize_t i) {
    static const char *const heads[] = {"{'loss'", "{'eval_", "{'train_", "{'learning_rate'", "{'grad_norm'", "{'epoch'"};
    for (size_t h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        size_t len = strlen(heads[h]);
        if ((size_t)(n - i) >= len && memcmp(b + i, heads[h], len) == 0) return 1;
    }
    return 0;
}

/* _echo: the dict at i follows "=", "(" or "," (up to 7 blanks between): an echo, not a log line. */
static int echo_before(const unsigned char *b, Py_ssize_t i) {
    Py_ssize_t k = i - 1, stop = i - 8 > 0 ? i - 8 : 0;
    while (k >= stop && (b[k] == ' ' || b[k] == '\t')) k--;
    return k >= 0 && (b[k] == '=' || b[k] == '(' || b[k] == ',');
}

static inline int clean_before(unsigned char c) { return c == '\r' || c == '\n' || c == ']' || c == 'A' || c == ':'; }

/* A growable array of 8-byte items (int64 or double) on the C heap: the scan and pair cores below
 * never touch Python objects, so each entry point decides what to build from their results.
 * `mapped` ones (the prefetch's) live in their own memory mappings instead: freeing a big block that
 * malloc mapped makes glibc raise its mapping threshold, and the columns allocated after it then stay
 * on a heap that does not shrink (a 1 GB log peaked 5 MB higher). */
typedef struct {
    char *p;
    Py_ssize_t n, cap; /* items */
    int mapped;
} tg_vec;

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#define TG_MMAP 1
static size_t map_bytes(Py_ssize_t items) {
    size_t page = 1 << 16; /* a multiple of every page size in use */
    return ((size_t)items * 8 + page - 1) / page * page;
}
#else
#define TG_MMAP 0
#endif

/* Room for `cap` items (cap > v->cap); 0, or -1 when out of memory. */
static int vec_resize(tg_vec *v, Py_ssize_t cap) {
    if (cap > PY_SSIZE_T_MAX / 16) return -1;
#if TG_MMAP
    if (v->mapped) {
#if defined(__linux__) && defined(MREMAP_MAYMOVE)
        if (v->p) { /* the kernel moves the pages: no copy, and what was written is not faulted in again */
            void *q = mremap(v->p, map_bytes(v->cap), map_bytes(cap), MREMAP_MAYMOVE);
            if (q == MAP_FAILED) return -1;
            v->p = q;
            v->cap = cap;
            return 0;
        }
#endif
        void *q = mmap(NULL, map_bytes(cap), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (q == MAP_FAILED) return -1;
        if (v->p) {
            memcpy(q, v->p, (size_t)v->n * 8);
            munmap(v->p, map_bytes(v->cap));
        }
        v->p = q;
        v->cap = cap;
        return 0;
    }
#endif
    char *q = PyMem_RawRealloc(v->p, (size_t)cap * 8); /* Raw: the prefetch thread holds no GIL */
    if (!q) return -1;
    v->p = q;
    v->cap = cap;
    return 0;
}

static int vec_grow(tg_vec *v) { return vec_resize(v, v->cap ? v->cap * 2 : 256); }

static inline int vec_push(tg_vec *v, const void *item) {
    if (v->n == v->cap && vec_grow(v) < 0) return -1;
    memcpy(v->p + v->n * 8, item, 8);
    v->n++;
    return 0;
}

static void vec_free(tg_vec *v) {
#if TG_MMAP
    if (v->mapped) {
        if (v->p) munmap(v->p, map_bytes(v->cap));
    } else
#endif
        PyMem_RawFree(v->p);
    v->p = NULL;
    v->n = v->cap = 0;
}

static PyObject *vec_bytes(const tg_vec *v) { return PyByteArray_FromStringAndSize(v->n ? v->p : NULL, v->n * 8); }

/* _hf_scan.scan_exact over b[0:n] from `start`: four int64 per kept dict in `rows` (offset of "{",
 * offset of "}", bar n, bar total; see hf_scan's doc). 0, or -1 when out of memory. */
static int scan_rows(const unsigned char *b, Py_ssize_t n, Py_ssize_t start, int final, tg_vec *rows,
                     Py_ssize_t *used_out, Py_ssize_t *skipped_out) {
    Py_ssize_t skipped = 0, used = n;
    Py_ssize_t i = find_byte(b, n, '{', start, n);
    while (i >= 0) {
        if (i + 1 >= n) {
            used = final ? n : i;
            goto done;
        }
        if (b[i + 1] != '\'') {
            i = find_byte(b, n, '{', i + 1, n);
            continue;
        }
        Py_ssize_t c = find_byte(b, n, '}', i + 2, i + TG_MAX_DICT);
        if (c < 0) {
            if (!final && n - i < TG_MAX_DICT) {
                used = i; /* may complete with the next chunk */
                goto done;
            }
            if (metricish(b, n, i)) skipped++;
            i = find_byte(b, n, '{', i + 2, n);
            continue;
        }
        if (memchr(b + i + 1, '\n', (size_t)(c - i - 1)) || memchr(b + i + 1, '{', (size_t)(c - i - 1))) {
            if (metricish(b, n, i)) skipped++; /* a dict cut by a newline or by another dict */
            Py_ssize_t j = find_byte(b, n, '{', i + 2, c);
            i = j >= 0 ? j : find_byte(b, n, '{', i + 2, n);
            continue;
        }
        int64_t bn = -1, bt = -1;
        Py_ssize_t wend = (n - (c + 1) > TG_BAR_WINDOW) ? c + 1 + TG_BAR_WINDOW : n;
        int m = bar_after(b + c + 1, b + wend, &bn, &bt);
        if (m == 0 && !final && n - (c + 1) < TG_BAR_WINDOW && find_byte(b, n, '{', c + 1, n) < 0) {
            used = i; /* the bar that tqdm redraws after the dict may still be on its way */
            goto done;
        }
        if (i && !clean_before(b[i - 1]) && echo_before(b, i)) {
            i = find_byte(b, n, '{', c + 1, n);
            continue;
        }
        if (m == 0) {
            bn = bt = -1;
        } else if (m == 2) {
            bn = -2;
            bt = -2;
        }
        int64_t r[4] = {i, c, bn, bt};
        for (int k = 0; k < 4; k++)
            if (vec_push(rows, &r[k]) < 0) return -1;
        i = find_byte(b, n, '{', c + 1, n);
    }
    if (!final && n && b[n - 1] == '{') used = n - 1;
done:
    *used_out = used;
    *skipped_out = skipped;
    return 0;
}

/* Check and clamp hf_scan/hf_chunk's arguments; 0, or -1 with an exception set. */
static int scan_args(PyObject *obj, Py_buffer *view, Py_ssize_t start, Py_ssize_t end, const char *who, Py_ssize_t *n) {
    if (PyUnicode_Check(obj)) {
        PyErr_Format(PyExc_TypeError, "%s: buf must be bytes-like, not str", who);
        return -1;
    }
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) return -1;
    if (start < 0) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: start must be >= 0", who);
        return -1;
    }
    *n = (end >= 0 && end < view->len) ? end : view->len;
    return 0;
}

/* The bodies of the rows as buf[open + 1:close] slices: bytes, or bytearray from a bytearray; None for
 * a memoryview (whose slices are views: the caller slices). */
static PyObject *row_bodies(PyObject *obj, const unsigned char *b, const tg_vec *rows) {
    if (PyMemoryView_Check(obj)) Py_RETURN_NONE;
    int ba = PyByteArray_Check(obj);
    Py_ssize_t m = rows->n / 4;
    PyObject *bodies = PyList_New(m);
    if (!bodies) return NULL;
    const int64_t *r = (const int64_t *)rows->p;
    for (Py_ssize_t k = 0; k < m; k++) {
        const char *s = (const char *)b + r[4 * k] + 1;
        Py_ssize_t len = (Py_ssize_t)(r[4 * k + 1] - r[4 * k] - 1);
        PyObject *x = ba ? PyByteArray_FromStringAndSize(s, len) : PyBytes_FromStringAndSize(s, len);
        if (!x) {
            Py_DECREF(bodies);
            return NULL;
        }
        PyList_SET_ITEM(bodies, k, x);
    }
    return bodies;
}

PyDoc_STRVAR(hf_scan_doc,
"hf_scan(buf, start, final[, end]) -> (used, skipped, rows, bodies)\n\n"
"_hf_scan.scan_exact over a bytes-like ``buf`` from ``start``: ``used`` and ``skipped`` as it\n"
"gives them (over ``buf[:end]`` when ``end`` is given: a reused read buffer holds more bytes than were read),\n"
"and one row per dict kept, in file order, in ``rows``: a bytearray of native\n"
"int64, four per dict (offset of \"{\", offset of \"}\", bar n, bar total; -1 -1 when no bar\n"
"follows; bar n is -2 when a count has more than 18 digits and the caller must read both\n"
"with _BAR_AFTER). Offsets are relative to ``buf``. ``bodies``: the list of ``buf[open + 1:close]``\n"
"(bytearrays from a bytearray, else bytes), or None when ``buf`` is a memoryview.");

static PyObject *hf_scan(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj;
    Py_buffer view;
    Py_ssize_t start, end = -1, n, used, skipped;
    int final;
    if (!PyArg_ParseTuple(args, "Onp|n:hf_scan", &obj, &start, &final, &end)) return NULL;
    if (scan_args(obj, &view, start, end, "hf_scan", &n) < 0) return NULL;
    const unsigned char *b = (const unsigned char *)view.buf;
    tg_vec rows = {0};
    PyObject *out = NULL, *bodies = NULL;
    if (scan_rows(b, n, start, final, &rows, &used, &skipped) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    out = vec_bytes(&rows);
    if (!out) goto fail;
    bodies = row_bodies(obj, b, &rows);
    if (!bodies) goto fail;
    vec_free(&rows);
    PyBuffer_Release(&view);
    return Py_BuildValue("(nnNN)", used, skipped, out, bodies);
fail:
    Py_XDECREF(out);
    vec_free(&rows);
    PyBuffer_Release(&view);
    return NULL;
}

/* -- HF Trainer stdout: the numeric pairs of the dict bodies ---------------------------- */

#define TG_MAX_KEYS 1024
#define TG_KEY_W 48 /* _hf_bodies._KEY_W: a longer key goes to the Python path, which drops it */
#define TG_MAX_VALUE 64

typedef struct {
    const unsigned char *p;
    Py_ssize_t n;
    Py_ssize_t stamp; /* the last body holding it: a key twice in one body is left to Python */
} tg_key;

/* The keys of one call, in first-seen order, with a guess per position (dict lines repeat their keys). */
typedef struct {
    tg_key keys[TG_MAX_KEYS];
    Py_ssize_t n;
    Py_ssize_t guess[64];
} tg_keys;

/* A JSON number at *pp: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; sets *is_int; -1 when not one. */
static int json_number(const unsigned char **pp, const unsigned char *end, int *is_int) {
    const unsigned char *p = *pp;
    if (p < end && *p == '-') p++;
    if (p == end || !is_digit(*p)) return -1;
    if (*p == '0') {
        p++;
    } else {
        while (p < end && is_digit(*p)) p++;
    }
    *is_int = 1;
    if (p < end && *p == '.') {
        p++;
        if (p == end || !is_digit(*p)) return -1;
        while (p < end && is_digit(*p)) p++;
        *is_int = 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        if (p == end || !is_digit(*p)) return -1;
        while (p < end && is_digit(*p)) p++;
        *is_int = 0;
    }
    *pp = p;
    return 0;
}

/*
 * The pairs of body number `d` (p..end, without its braces) appended to di/ki/va: 0, 1 when the body is
 * not in the plain shape (the Python parsers decide it), -1 when out of memory. The shape, and the
 * numbers, are _hf_bodies._parse_json's: ``'key': number`` or ``'key': 'number'`` joined by ", ".
 */
/* Numbers parse_plain left to Python's parser (defer mode, no GIL): per number, its pair's index in
 * `va` and its token, at `off` in `tok`. */
typedef struct {
    tg_vec at; /* three int64 per number: pair index, token offset, token length */
    char *tok;
    Py_ssize_t tn, tcap;
} tg_defer;

static int defer_push(tg_defer *df, Py_ssize_t pair, const unsigned char *t, Py_ssize_t len) {
    if (df->tn + len > df->tcap) {
        Py_ssize_t cap = df->tcap ? df->tcap * 2 : 4096;
        while (cap < df->tn + len) cap *= 2;
        char *q = PyMem_RawRealloc(df->tok, (size_t)cap);
        if (!q) return -1;
        df->tok = q;
        df->tcap = cap;
    }
    memcpy(df->tok + df->tn, t, (size_t)len);
    int64_t r[3] = {pair, df->tn, len};
    df->tn += len;
    for (int k = 0; k < 3; k++)
        if (vec_push(&df->at, &r[k]) < 0) return -1;
    return 0;
}

static void defer_free(tg_defer *df) {
    vec_free(&df->at);
    PyMem_RawFree(df->tok);
    df->tok = NULL;
    df->tn = df->tcap = 0;
}

/* `df` NULL: every number is read here (with the GIL). Otherwise (no GIL) the numbers only Python's
 * parser reads exactly are appended as NaN and listed in `df`, for the caller to read once it holds
 * the GIL. */
static int parse_plain(const unsigned char *p, const unsigned char *end, Py_ssize_t d, tg_keys *kt, tg_vec *di,
                       tg_vec *ki, tg_vec *va, tg_defer *df) {
    if (p == end) return 1;
    for (int pos = 0;; pos++) {
        if (*p != '\'') return 1;
        const unsigned char *k = ++p;
        while (p < end && *p != '\'') {
            if (*p < 0x20 || *p > 0x7e || *p == '"' || *p == '\\') return 1;
            p++;
        }
        Py_ssize_t kn = p - k;
        if (p == end || kn == 0 || kn > TG_KEY_W) return 1;
        p++;
        if (end - p < 2 || p[0] != ':' || p[1] != ' ') return 1;
        p += 2;
        int quoted = p < end && *p == '\'';
        if (quoted) p++;
        const unsigned char *t = p;
        int is_int;
        if (json_number(&p, end, &is_int) != 0 || p - t > TG_MAX_VALUE) return 1;
        const unsigned char *tend = p;
        if (quoted) {
            if (p == end || *p != '\'') return 1;
            p++;
        }
        double v;
        if (is_int) { /* orjson gives an int (so "-0" is 0), numpy then rounds it once to float64 */
            const unsigned char *q = t;
            int neg = *q == '-';
            q += neg;
            if (tend - q > 18) return 1;
            int64_t x = 0;
            while (q < tend) x = x * 10 + (*q++ - '0');
            v = (double)(neg ? -x : x);
        } else {
            const unsigned char *q = t;
            int r = number_at(&q, tend, &v, df != NULL);
            if ((r != 0 && r != TG_DEFERRED) || q != tend) return 1;
            if (r == 0 && v - v != 0) return 1; /* inf: orjson refuses it, the byte parser decides */
            if (r == TG_DEFERRED && defer_push(df, va->n, t, tend - t) < 0) return -1;
        }
        Py_ssize_t id = -1;
        Py_ssize_t g = pos < 64 ? kt->guess[pos] : -1;
        if (g >= 0 && kt->keys[g].n == kn && memcmp(kt->keys[g].p, k, (size_t)kn) == 0) {
            id = g;
        } else {
            for (Py_ssize_t j = 0; j < kt->n; j++) {
                if (kt->keys[j].n == kn && memcmp(kt->keys[j].p, k, (size_t)kn) == 0) {
                    id = j;
                    break;
                }
            }
            if (id < 0) {
                if (kt->n == TG_MAX_KEYS) return 1;
                id = kt->n++;
                kt->keys[id].p = k;
                kt->keys[id].n = kn;
                kt->keys[id].stamp = -1;
            }
            if (pos < 64) kt->guess[pos] = id;
        }
        if (kt->keys[id].stamp == d) return 1; /* a key twice in one body: orjson keeps the last */
        kt->keys[id].stamp = d;
        int64_t d64 = d, id64 = id;
        if (vec_push(di, &d64) < 0 || vec_push(ki, &id64) < 0 || vec_push(va, &v) < 0) return -1;
        if (p == end) return 0;
        if (end - p < 3 || p[0] != ',' || p[1] != ' ' || p[2] != '\'') return 1;
        p += 2;
    }
}

static tg_keys *keys_new(void) {
    tg_keys *kt = PyMem_RawMalloc(sizeof(tg_keys));
    if (!kt) return NULL;
    kt->n = 0;
    for (int g = 0; g < 64; g++) kt->guess[g] = -1;
    return kt;
}

/* The key names of `kt`, in first-seen order (printable ASCII: parse_plain checked every byte). */
static PyObject *key_names(const tg_keys *kt) {
    PyObject *names = PyList_New(kt->n);
    if (!names) return NULL;
    for (Py_ssize_t j = 0; j < kt->n; j++) {
        PyObject *s = PyUnicode_DecodeASCII((const char *)kt->keys[j].p, kt->keys[j].n, NULL);
        if (!s) {
            Py_DECREF(names);
            return NULL;
        }
        PyList_SET_ITEM(names, j, s);
    }
    return names;
}

PyDoc_STRVAR(hf_pairs_doc,
"hf_pairs(bodies) -> (dict_idx, key_id, value, keys) | None\n\n"
"_hf_bodies.parse_bodies for a list of bytes/bytearray dict bodies that are all in the plain\n"
"shape ``'key': number, 'key': 'number'`` (JSON numbers, printable ASCII keys of 1..48 bytes\n"
"without quotes or backslashes, each key once per body): the same pairs, in the same order,\n"
"as bytearrays of native int64, int64 and float64 (an integer token as int -> float, others\n"
"bit-identical to float()), and the key names in first-seen order. None for anything else\n"
"(the Python parsers decide those).");

static PyObject *hf_pairs(PyObject *self, PyObject *arg) {
    (void)self;
    if (!PyList_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "hf_pairs: bodies must be a list");
        return NULL;
    }
    Py_ssize_t m = PyList_GET_SIZE(arg);
    if (m == 0) Py_RETURN_NONE;
    tg_vec di = {0}, ki = {0}, va = {0};
    PyObject *res = NULL;
    tg_keys *kt = keys_new();
    if (!kt) return PyErr_NoMemory();
    for (Py_ssize_t d = 0; d < m; d++) {
        PyObject *item = PyList_GET_ITEM(arg, d);
        const unsigned char *p, *end;
        if (PyBytes_CheckExact(item)) {
            p = (const unsigned char *)PyBytes_AS_STRING(item);
            end = p + PyBytes_GET_SIZE(item);
        } else if (PyByteArray_CheckExact(item)) {
            p = (const unsigned char *)PyByteArray_AS_STRING(item);
            end = p + PyByteArray_GET_SIZE(item);
        } else {
            goto none;
        }
        int r = parse_plain(p, end, d, kt, &di, &ki, &va, NULL);
        if (r < 0) {
            PyErr_NoMemory();
            goto done;
        }
        if (r > 0) goto none;
    }
    {
        PyObject *names = key_names(kt);
        if (names) res = Py_BuildValue("(NNNN)", vec_bytes(&di), vec_bytes(&ki), vec_bytes(&va), names);
    }
    goto done;
none:
    res = Py_None;
    Py_INCREF(res);
done:
    PyMem_RawFree(kt);
    vec_free(&di);
    vec_free(&ki);
    vec_free(&va);
    return res;
}

/* -- HF Trainer stdout: scan, pairs and records of one buffer in one call ------------------ */

PyDoc_STRVAR(hf_chunk_doc,
"hf_chunk(buf, base, start, final, end, key_info, kind_of_prio, epoch_prio) -> (used, skipped, rows, bodies, got)\n\n"
"hf_scan and hf_pairs of one buffer, and what StreamParser._ingest makes of them, in one pass\n"
"without a Python object per dict (issue 14: on a 200 MB log the bodies, the pair arrays and the\n"
"numpy bookkeeping between them cost more than the scan). ``key_info(name) -> (id, prio, skip)``\n"
"is called once per distinct key name of the buffer. A dict's prio is the highest of its keys',\n"
"its kind ``kind_of_prio[prio]``; prio 0 drops the dict; its epoch is the value of its key of prio\n"
"``epoch_prio`` (NaN when none).\n\n"
"When every dict is in hf_pairs's plain shape and every bar count fits int64, ``rows`` and\n"
"``bodies`` are None and ``got`` is (pos, kind, epoch, bar_n, bar_total, rec, key, value,\n"
"summaries): per kept dict in file order, bytearrays of int64 offsets (plus ``base``), int8 kinds,\n"
"float64 epochs and int64 bar counts; per pair of a kept dict whose key is not ``skip``, the dict's\n"
"index among the kept ones, the key's id and the value (int64, int64, float64); and for each dict\n"
"of the highest prio, ``len(kind_of_prio) - 1`` (the run summary), a tuple (index, [(id, value), ...])\n"
"of all its pairs. Otherwise ``got`` is None and ``rows`` and ``bodies`` are hf_scan's, for the Python\n"
"parsers.");

/*
 * What StreamParser._ingest makes of m dicts and their pairs (hf_chunk's doc says what), as hf_chunk's
 * ``got`` tuple; NULL with an exception set. Dict d's offset is rows[stride * d + pos_col] + base, its
 * bar counts rows[stride * d + bar_col] and the next item; pairs are grouped by dict, in order, their
 * key ids index `keys`. Shared by hf_chunk (one buffer) and HFPrefetch.take (what the thread read).
 */
/* What take() hands over: a vector's own memory behind the buffer protocol (numpy.frombuffer wraps it,
 * nothing is copied), unmapped when the last view goes. */
typedef struct {
    PyObject_HEAD
    tg_vec v;
    Py_ssize_t len; /* bytes */
} tg_block;

static int block_getbuffer(tg_block *b, Py_buffer *view, int flags) {
    return PyBuffer_FillInfo(view, (PyObject *)b, b->v.p, b->len, 1, flags);
}

static void block_dealloc(tg_block *b) {
    vec_free(&b->v);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

static PyBufferProcs block_as_buffer = {(getbufferproc)block_getbuffer, NULL};

static PyTypeObject BlockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trainguard._speedups.Block",
    .tp_basicsize = sizeof(tg_block),
    .tp_dealloc = (destructor)block_dealloc,
    .tp_as_buffer = &block_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Read-only bytes of an HFPrefetch result (the buffer protocol only).",
};

/* `v` as a Block (its memory moves into it; `v` is left empty); b"" when empty. */
static PyObject *block_of(tg_vec *v) {
    if (v->n == 0) {
        vec_free(v);
        return PyBytes_FromStringAndSize(NULL, 0);
    }
    Py_ssize_t len = v->n * 8;
    tg_block *b = PyObject_New(tg_block, &BlockType);
    if (!b) return NULL;
    b->v = *v;
    b->len = len;
    v->p = NULL;
    v->n = v->cap = 0;
    return (PyObject *)b;
}

static PyObject *build_got(Py_ssize_t m, const int64_t *r, int stride, int pos_col, int bar_col, int64_t base,
                           const tg_vec *di, const tg_vec *ki, const tg_vec *va, const tg_key *keys, Py_ssize_t nkeys,
                           PyObject *key_info, const unsigned char *kind_of, Py_ssize_t nprio, int epoch_prio, int blocks) {
    tg_vec pos = {0}, ep = {0}, bn = {0}, bt = {0}, prec = {0}, pkey = {0}, pval = {0};
    tg_vec *outs[7] = {&pos, &ep, &bn, &bt, &prec, &pkey, &pval};
    char *kinds = NULL;
    int64_t *gid = NULL;
    unsigned char *prio = NULL, *skip = NULL;
    PyObject *res = NULL, *summaries = NULL;
    for (int k = 0; k < 7; k++) {
        outs[k]->mapped = blocks && TG_MMAP;
        /* Blocks are big (a whole prefetch): each column mapped once at its most, not doubled into place */
        if (blocks && vec_resize(outs[k], (k < 4 ? m : di->n) + 1) < 0) goto nomem;
    }
    /* each key: its id, its prio and whether it is ever a point, from key_info */
    gid = PyMem_Malloc(sizeof(int64_t) * (size_t)(nkeys + 1));
    prio = PyMem_Malloc((size_t)nkeys + 1);
    skip = PyMem_Malloc((size_t)nkeys + 1);
    if (!gid || !prio || !skip) goto nomem;
    for (Py_ssize_t j = 0; j < nkeys; j++) {
        PyObject *name = PyUnicode_DecodeASCII((const char *)keys[j].p, keys[j].n, NULL);
        if (!name) goto done;
        PyObject *info = PyObject_CallOneArg(key_info, name);
        Py_DECREF(name);
        if (!info) goto done;
        long long g;
        int pr, sk;
        int ok = PyArg_ParseTuple(info, "Lip", &g, &pr, &sk);
        Py_DECREF(info);
        if (!ok) goto done;
        if (pr < 0 || pr >= nprio) {
            PyErr_SetString(PyExc_ValueError, "hf_chunk: key_info gave a prio outside kind_of_prio");
            goto done;
        }
        gid[j] = g;
        prio[j] = (unsigned char)pr;
        skip[j] = (unsigned char)sk;
    }
    /* per dict: its strongest key and its epoch; pairs are grouped by dict, in order */
    kinds = PyMem_Malloc((size_t)m + 1);
    if (!kinds) goto nomem;
    summaries = PyList_New(0);
    if (!summaries) goto done;
    const int64_t *pd = (const int64_t *)di->p, *pk = (const int64_t *)ki->p;
    const double *pv = (const double *)va->p;
    Py_ssize_t kept = 0, a = 0, npairs = di->n;
    for (Py_ssize_t d = 0; d < m; d++) {
        Py_ssize_t z = a;
        int best = 0;
        double epoch = tg_nan;
        while (z < npairs && pd[z] == d) {
            int pr = prio[pk[z]];
            if (pr > best) best = pr;
            if (pr == epoch_prio) epoch = pv[z];
            z++;
        }
        if (best == 0) { /* no key that makes it a record */
            a = z;
            continue;
        }
        const int64_t *row = r + (Py_ssize_t)stride * d;
        int64_t at = row[pos_col] + base, k64 = kept;
        kinds[kept] = (char)kind_of[best];
        if (vec_push(&pos, &at) < 0 || vec_push(&ep, &epoch) < 0 || vec_push(&bn, &row[bar_col]) < 0 ||
            vec_push(&bt, &row[bar_col + 1]) < 0)
            goto nomem;
        for (Py_ssize_t q = a; q < z; q++) {
            if (skip[pk[q]]) continue;
            if (vec_push(&prec, &k64) < 0 || vec_push(&pkey, &gid[pk[q]]) < 0 || vec_push(&pval, &pv[q]) < 0) goto nomem;
        }
        if (best == nprio - 1) { /* the highest prio is the run summary's: every pair, meta keys too */
            PyObject *kv = PyList_New(z - a);
            if (!kv) goto done;
            for (Py_ssize_t q = a; q < z; q++) {
                PyObject *t = Py_BuildValue("(Ld)", (long long)gid[pk[q]], pv[q]);
                if (!t) {
                    Py_DECREF(kv);
                    goto done;
                }
                PyList_SET_ITEM(kv, q - a, t);
            }
            PyObject *item = Py_BuildValue("(nN)", kept, kv);
            if (!item || PyList_Append(summaries, item) < 0) {
                Py_XDECREF(item);
                goto done;
            }
            Py_DECREF(item);
        }
        kept++;
        a = z;
    }
    {
        PyObject *o[7] = {NULL};
        for (int k = 0; k < 7; k++) {
            o[k] = blocks ? block_of(outs[k]) : vec_bytes(outs[k]);
            if (!o[k]) {
                for (int j = 0; j < k; j++) Py_DECREF(o[j]);
                goto done;
            }
        }
        PyObject *kb = PyByteArray_FromStringAndSize(kept ? kinds : NULL, kept);
        res = kb ? Py_BuildValue("(NNNNNNNNO)", o[0], kb, o[1], o[2], o[3], o[4], o[5], o[6], summaries) : NULL;
        if (!kb)
            for (int j = 0; j < 7; j++) Py_DECREF(o[j]);
    }
    goto done;
nomem:
    PyErr_NoMemory();
done:
    Py_XDECREF(summaries);
    PyMem_Free(gid);
    PyMem_Free(prio);
    PyMem_Free(skip);
    PyMem_Free(kinds);
    vec_free(&pos);
    vec_free(&ep);
    vec_free(&bn);
    vec_free(&bt);
    vec_free(&prec);
    vec_free(&pkey);
    vec_free(&pval);
    return res;
}

static PyObject *hf_chunk(PyObject *self, PyObject *args) {
    (void)self;
    PyObject *obj, *key_info;
    Py_buffer view, kop;
    Py_ssize_t base, start, end, n, used, skipped;
    int final, epoch_prio;
    if (!PyArg_ParseTuple(args, "OnnpnOy*i:hf_chunk", &obj, &base, &start, &final, &end, &key_info, &kop, &epoch_prio))
        return NULL;
    if (scan_args(obj, &view, start, end, "hf_chunk", &n) < 0) {
        PyBuffer_Release(&kop);
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    const Py_ssize_t nprio = kop.len;
    tg_vec rows = {0}, di = {0}, ki = {0}, va = {0};
    PyObject *res = NULL;
    tg_keys *kt = NULL;
    if (scan_rows(b, n, start, final, &rows, &used, &skipped) < 0) goto nomem;
    Py_ssize_t m = rows.n / 4;
    const int64_t *r = (const int64_t *)rows.p;
    int plain = nprio > 0 && nprio <= 256;
    if (plain) {
        kt = keys_new();
        if (!kt) goto nomem;
    }
    for (Py_ssize_t d = 0; plain && d < m; d++) {
        if (r[4 * d + 2] == -2) {
            plain = 0; /* a count past int64: the regex reads it, on the Python path */
            break;
        }
        int x = parse_plain(b + r[4 * d] + 1, b + r[4 * d + 1], d, kt, &di, &ki, &va, NULL);
        if (x < 0) goto nomem;
        if (x > 0) plain = 0;
    }
    if (!plain) { /* hf_scan's result, for the Python parsers */
        PyObject *raw = vec_bytes(&rows);
        PyObject *bodies = raw ? row_bodies(obj, b, &rows) : NULL;
        if (bodies) res = Py_BuildValue("(nnNNO)", used, skipped, raw, bodies, Py_None);
        else Py_XDECREF(raw);
        goto done;
    }
    {
        PyObject *got = build_got(m, r, 4, 0, 2, base, &di, &ki, &va, kt->keys, kt->n, key_info,
                                  (const unsigned char *)kop.buf, nprio, epoch_prio, 0);
        if (got) res = Py_BuildValue("(nnOON)", used, skipped, Py_None, Py_None, got);
    }
    goto done;
nomem:
    PyErr_NoMemory();
done:
    PyMem_RawFree(kt);
    vec_free(&rows);
    vec_free(&di);
    vec_free(&ki);
    vec_free(&va);
    PyBuffer_Release(&kop);
    PyBuffer_Release(&view);
    return res;
}

/* -- free text: rows of one line shape ------------------------------------------------- */

static inline int is_numbyte(unsigned char c) {
    return is_digit(c) || c == '.' || c == '+' || c == '-' || c == 'e' || c == 'E';
}

PyDoc_STRVAR(text_rows_doc,
"text_rows(data, start, lines, gaps, lits) -> (count, values)\n\n"
"_text_block._check for the lines of ``data`` from offset ``start`` (at most ``lines`` of them,\n"
"each ending in a newline and already known to have the shape's skeleton): how many lines from\n"
"the first on have exactly ``len(gaps)`` runs of 0-9.+-eE bytes, run i after gaps[i] other bytes\n"
"of its line, run i equal to lits[i] where lits[i] is bytes (a run inside a literal) and a JSON\n"
"number where it is None, read bit-identical to float() (finite, at most 128 bytes). values:\n"
"a bytearray of native float64, count rows of the number runs in order.");

static PyObject *text_rows(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    Py_ssize_t start, lines;
    PyObject *gaps_o, *lits_o;
    if (!PyArg_ParseTuple(args, "y*nnO!O!", &view, &start, &lines, &PyList_Type, &gaps_o, &PyList_Type, &lits_o))
        return NULL;
    Py_ssize_t t = PyList_GET_SIZE(gaps_o), k = 0;
    Py_ssize_t *gaps = NULL;
    const unsigned char **lit = NULL;
    Py_ssize_t *litn = NULL;
    PyObject *vals = NULL;
    if (PyList_GET_SIZE(lits_o) != t || t == 0 || start < 0 || start > view.len || lines < 0) {
        PyErr_SetString(PyExc_ValueError, "text_rows: bad arguments");
        goto fail;
    }
    gaps = PyMem_Malloc(sizeof(Py_ssize_t) * t);
    lit = PyMem_Malloc(sizeof(*lit) * t);
    litn = PyMem_Malloc(sizeof(Py_ssize_t) * t);
    if (!gaps || !lit || !litn) {
        PyErr_NoMemory();
        goto fail;
    }
    for (Py_ssize_t i = 0; i < t; i++) {
        gaps[i] = PyLong_AsSsize_t(PyList_GET_ITEM(gaps_o, i));
        if (gaps[i] == -1 && PyErr_Occurred()) goto fail;
        PyObject *l = PyList_GET_ITEM(lits_o, i);
        if (l == Py_None) {
            lit[i] = NULL;
            litn[i] = 0;
            k++;
        } else if (PyBytes_Check(l)) {
            lit[i] = (const unsigned char *)PyBytes_AS_STRING(l);
            litn[i] = PyBytes_GET_SIZE(l);
        } else {
            PyErr_SetString(PyExc_TypeError, "text_rows: lits must be bytes or None");
            goto fail;
        }
    }
    if (k == 0 || lines > PY_SSIZE_T_MAX / 8 / k) {
        PyErr_SetString(PyExc_ValueError, "text_rows: bad arguments");
        goto fail;
    }
    vals = PyByteArray_FromStringAndSize(NULL, lines * k * 8);
    if (!vals) goto fail;
    double *out = (double *)PyByteArray_AS_STRING(vals);
    const unsigned char *base = (const unsigned char *)view.buf, *end = base + view.len;
    const unsigned char *p = base + start;
    Py_ssize_t f = 0;
    while (f < lines) {
        const unsigned char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) break;
        const unsigned char *ls = p;
        Py_ssize_t tok = 0, e_before = 0;
        double *row = out + f * k;
        Py_ssize_t slot = 0;
        int ok = 1;
        while (p < nl) {
            if (!is_numbyte(*p)) {
                p++;
                continue;
            }
            const unsigned char *a = p;
            while (p < nl && is_numbyte(*p)) p++;
            Py_ssize_t len = p - a;
            if (tok >= t || (a - ls) - e_before != gaps[tok]) {
                ok = 0;
                break;
            }
            if (lit[tok]) {
                if (len != litn[tok] || memcmp(a, lit[tok], (size_t)len) != 0) {
                    ok = 0;
                    break;
                }
            } else {
                const unsigned char *q = a;
                int is_int;
                double v;
                if (len > TG_MAX_TOKEN || json_number(&q, p, &is_int) != 0 || q != p) {
                    ok = 0;
                    break;
                }
                q = a;
                if (parse_number(&q, p, &v) != 0 || q != p || !isfinite(v)) {
                    ok = 0;
                    break;
                }
                row[slot++] = v;
            }
            e_before += len;
            tok++;
        }
        if (!ok || tok != t) break;
        p = nl + 1;
        f++;
    }
    PyMem_Free(gaps);
    PyMem_Free(lit);
    PyMem_Free(litn);
    PyBuffer_Release(&view);
    if (PyByteArray_Resize(vals, f * k * 8) < 0) {
        Py_DECREF(vals);
        return NULL;
    }
    PyObject *res = Py_BuildValue("nN", f, vals);
    return res;
fail:
    PyMem_Free(gaps);
    PyMem_Free(lit);
    PyMem_Free(litn);
    Py_XDECREF(vals);
    PyBuffer_Release(&view);
    return NULL;
}

/* -- launcher and banner lines: every keyword's first lines in one pass ------------------ */

PyDoc_STRVAR(lines_with_doc,
"lines_with(buf, needles, limits) -> list of lists of (start, end)\n\n"
"For each needle, its first ``limits[k]`` lines in ``buf`` as _hf_scan._lines_with finds them:\n"
"a match, the line around it (from after the last \\n or \\r before it to the next \\n or the end),\n"
"then the next match at or after that line's end. One pass over ``buf`` for all needles (at most 64,\n"
"each non-empty) instead of one memmem pass each: the banner scan of an 8 MB head looks for 17.");

static PyObject *lines_with(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer view;
    PyObject *needles, *limits, *out = NULL;
    if (!PyArg_ParseTuple(args, "y*O!O!:lines_with", &view, &PyTuple_Type, &needles, &PyTuple_Type, &limits)) return NULL;
    Py_ssize_t k = PyTuple_GET_SIZE(needles);
    const unsigned char *nd[64];
    Py_ssize_t nl[64], lim[64], cnt[64], next_ok[64];
    uint64_t table[256];
    memset(table, 0, sizeof(table));
    if (k > 64 || PyTuple_GET_SIZE(limits) != k) {
        PyErr_SetString(PyExc_ValueError, "lines_with: at most 64 needles, one limit each");
        goto fail;
    }
    Py_ssize_t todo = 0;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *s = PyTuple_GET_ITEM(needles, j);
        if (!PyBytes_Check(s) || PyBytes_GET_SIZE(s) == 0) {
            PyErr_SetString(PyExc_TypeError, "lines_with: needles must be non-empty bytes");
            goto fail;
        }
        nd[j] = (const unsigned char *)PyBytes_AS_STRING(s);
        nl[j] = PyBytes_GET_SIZE(s);
        lim[j] = PyLong_AsSsize_t(PyTuple_GET_ITEM(limits, j));
        if (lim[j] == -1 && PyErr_Occurred()) goto fail;
        cnt[j] = 0;
        next_ok[j] = 0;
        if (lim[j] > 0) {
            table[nd[j][0]] |= (uint64_t)1 << j;
            todo++;
        }
    }
    out = PyList_New(k);
    if (!out) goto fail;
    for (Py_ssize_t j = 0; j < k; j++) {
        PyObject *l = PyList_New(0);
        if (!l) goto fail;
        PyList_SET_ITEM(out, j, l);
    }
    const unsigned char *b = (const unsigned char *)view.buf;
    const Py_ssize_t n = view.len;
    for (Py_ssize_t i = 0; i < n && todo > 0; i++) {
        while (n - i >= 8 && !(table[b[i]] | table[b[i + 1]] | table[b[i + 2]] | table[b[i + 3]] | table[b[i + 4]] |
                               table[b[i + 5]] | table[b[i + 6]] | table[b[i + 7]]))
            i += 8; /* eight bytes that start no needle: one branch, not eight */
        if (i >= n) break;
        uint64_t m = table[b[i]];
        while (m) {
            int j = 0;
            while (!(m & ((uint64_t)1 << j))) j++;
            m &= m - 1;
            if (i < next_ok[j] || n - i < nl[j] || memcmp(b + i, nd[j], (size_t)nl[j]) != 0) continue;
            Py_ssize_t a = i;
            while (a > 0 && b[a - 1] != '\n' && b[a - 1] != '\r') a--;
            const unsigned char *e = memchr(b + i, '\n', (size_t)(n - i));
            Py_ssize_t end = e ? e - b : n;
            PyObject *t = Py_BuildValue("(nn)", a, end);
            if (!t || PyList_Append(PyList_GET_ITEM(out, j), t) < 0) {
                Py_XDECREF(t);
                goto fail;
            }
            Py_DECREF(t);
            next_ok[j] = end;
            if (++cnt[j] == lim[j]) {
                table[nd[j][0]] &= ~((uint64_t)1 << j);
                todo--;
            }
        }
    }
    PyBuffer_Release(&view);
    return out;
fail:
    Py_XDECREF(out);
    PyBuffer_Release(&view);
    return NULL;
}

/* -- substring search ------------------------------------------------------------------ */

/* The first needle in [from, to) of hay by memchr on its first byte and a compare: where that byte is
 * rare (the save head's "S" in a Trainer log) memchr runs at several times memmem's speed; also the
 * fallback where the C library has no memmem. */
static Py_ssize_t find_rare_first(const unsigned char *h, Py_ssize_t from, Py_ssize_t to, const unsigned char *nd, Py_ssize_t k) {
    Py_ssize_t last = to - k;
    for (Py_ssize_t i = from; i <= last;) {
        const unsigned char *r = memchr(h + i, nd[0], (size_t)(last - i + 1));
        if (!r) return -1;
        i = r - h;
        if (memcmp(r, nd, (size_t)k) == 0) return i;
        i++;
    }
    return -1;
}

/* The first needle in [from, to) of hay: the C library's memmem where there is one, else memchr on the
 * needle's first byte and a compare. */
static Py_ssize_t find_bytes(const unsigned char *h, Py_ssize_t from, Py_ssize_t to, const unsigned char *nd, Py_ssize_t k) {
    if (k == 0) return from <= to ? from : -1;
    if (to - from < k) return -1;
#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__) || defined(__OpenBSD__) || defined(__NetBSD__)
    const unsigned char *r = memmem(h + from, (size_t)(to - from), nd, (size_t)k);
    return r ? r - h : -1;
#else
    return find_rare_first(h, from, to, nd, k);
#endif
}

PyDoc_STRVAR(find_doc,
"find(buf, needle, start, end) -> int\\n\\n"
"``buf.find(needle, start, end)`` for any bytes-like ``buf`` (0 <= start, end clamped to its length):\\n"
"the C library's memmem, about 3x faster than bytes.find's two-way search on a tqdm-heavy log, where\\n"
"the HF reader looks for checkpoint saves and banner lines in every byte. The GIL is released.");

static PyObject *find(PyObject *self, PyObject *args) {
    (void)self;
    Py_buffer hay, nd;
    Py_ssize_t start, end;
    if (!PyArg_ParseTuple(args, "y*y*nn:find", &hay, &nd, &start, &end)) return NULL;
    Py_ssize_t r = -1;
    if (start < 0 || end < 0) {
        PyBuffer_Release(&hay);
        PyBuffer_Release(&nd);
        PyErr_SetString(PyExc_ValueError, "find: start and end must be >= 0");
        return NULL;
    }
    if (end > hay.len) end = hay.len;
    if (start <= end) {
        const unsigned char *h = (const unsigned char *)hay.buf, *k = (const unsigned char *)nd.buf;
        Py_ssize_t kn = nd.len;
        Py_BEGIN_ALLOW_THREADS
        r = find_bytes(h, start, end, k, kn);
        Py_END_ALLOW_THREADS
    }
    PyBuffer_Release(&hay);
    PyBuffer_Release(&nd);
    return PyLong_FromSsize_t(r);
}

/* -- HF Trainer stdout: a big log read on another core while Python is still importing -------- */

#if defined(__unix__) || defined(__APPLE__)
#define TG_PREFETCH 1
#include <errno.h>
#include <unistd.h>

/*
 * Why: `trainguard analyze big.log` spends its first ~0.15 s importing numpy and the diagnosis, on
 * one core, before the reader reads a byte; reading a 200 MB log takes about as long again. This
 * object starts a thread that needs no GIL (no Python object, raw allocators, the numbers only
 * Python's parser reads exactly left for later), so the reading runs on the other core meanwhile.
 * The thread does what StreamParser.feed_file and hf_chunk would do to each chunk, with the same
 * chunking rules: scan, plain pairs, the offsets of checkpoint saves. It stops at the first chunk
 * that is not plain (the Python parsers decide those), when told to, or at its memory budget, and
 * leaves a state (offset, context, carry) from which the Python parser goes on as if it had read
 * those bytes itself.
 */
typedef struct {
    PyObject_HEAD
    int fd; /* owned until the thread ends */
    Py_ssize_t chunk, context, limit, budget;
    unsigned char save_head[64];
    Py_ssize_t save_n;
    PyThread_type_lock done; /* held while the thread runs */
    int started, joined, stop;
    /* the results, file-wide */
    tg_vec rows;                 /* three int64 per dict: absolute offset of "{", bar n, bar total */
    tg_vec di, ki, va;           /* pairs: dict index, key id (file-wide), value */
    tg_defer df;                 /* values left for Python's parser */
    tg_vec saves;                /* absolute offsets of save_head */
    char names[TG_MAX_KEYS][TG_KEY_W];
    Py_ssize_t name_n[TG_MAX_KEYS], nkeys;
    Py_ssize_t ndicts, skipped, offset, ctx, read_to;
    tg_vec bufv;        /* the read buffer (mapped); bytes 0..pending are the carry the Python parser starts from */
    unsigned char *buf; /* bufv.p */
    Py_ssize_t pending;
    const char *why; /* why the thread stopped, for tests and --debug */
} tg_prefetch;

static int pf_stopped(tg_prefetch *pf) {
#if defined(__GNUC__)
    return __atomic_load_n(&pf->stop, __ATOMIC_ACQUIRE);
#else
    return *(volatile int *)&pf->stop;
#endif
}

static Py_ssize_t pf_bytes(const tg_prefetch *pf) {
    return 8 * (pf->rows.n + pf->di.n + pf->ki.n + pf->va.n + pf->df.at.n + pf->saves.n) + pf->df.tn;
}

/* The file-wide id of key `j` of the chunk's table; -1 when the table is full. */
static Py_ssize_t pf_key(tg_prefetch *pf, const tg_key *k) {
    for (Py_ssize_t g = 0; g < pf->nkeys; g++)
        if (pf->name_n[g] == k->n && memcmp(pf->names[g], k->p, (size_t)k->n) == 0) return g;
    if (pf->nkeys == TG_MAX_KEYS) return -1;
    memcpy(pf->names[pf->nkeys], k->p, (size_t)k->n);
    pf->name_n[pf->nkeys] = k->n;
    return pf->nkeys++;
}

/* The save_head occurrences that start in [from, n) of buf (absolute base `abs`), after `last`. */
static int pf_saves(tg_prefetch *pf, const unsigned char *b, Py_ssize_t from, Py_ssize_t n, int64_t abs) {
    Py_ssize_t i = from;
    while ((i = find_rare_first(b, i, n, pf->save_head, pf->save_n)) >= 0) {
        int64_t at = abs + i, last = pf->saves.n ? ((int64_t *)pf->saves.p)[pf->saves.n - 1] : -1;
        if (at > last && vec_push(&pf->saves, &at) < 0) return -1;
        i++;
    }
    return 0;
}

/* One chunk, buf[0:n] from pf->ctx: 1 committed, 0 not plain (nothing kept), -1 out of memory. */
static int pf_chunk(tg_prefetch *pf, tg_keys *kt, Py_ssize_t n, Py_ssize_t *used) {
    const unsigned char *b = pf->buf;
    tg_vec rows = {0};
    Py_ssize_t skipped, n_di = pf->di.n, n_df = pf->df.at.n, n_tok = pf->df.tn, n_rows = pf->rows.n;
    if (scan_rows(b, n, pf->ctx, 0, &rows, used, &skipped) < 0) goto nomem;
    Py_ssize_t m = rows.n / 4;
    const int64_t *r = (const int64_t *)rows.p;
    kt->n = 0;
    for (int g = 0; g < 64; g++) kt->guess[g] = -1;
    for (Py_ssize_t d = 0; d < m; d++) {
        if (r[4 * d + 2] == -2) goto not_plain; /* a bar count past int64: the regex reads it */
        int x = parse_plain(b + r[4 * d] + 1, b + r[4 * d + 1], pf->ndicts + d, kt, &pf->di, &pf->ki, &pf->va, &pf->df);
        if (x < 0) goto nomem;
        if (x > 0) goto not_plain;
    }
    Py_ssize_t gid[TG_MAX_KEYS];
    for (Py_ssize_t j = 0; j < kt->n; j++)
        if ((gid[j] = pf_key(pf, &kt->keys[j])) < 0) goto not_plain;
    int64_t *k = (int64_t *)pf->ki.p;
    for (Py_ssize_t q = n_di; q < pf->ki.n; q++) k[q] = gid[k[q]];
    for (Py_ssize_t d = 0; d < m; d++) {
        int64_t row[3] = {r[4 * d] + pf->offset, r[4 * d + 2], r[4 * d + 3]};
        for (int c = 0; c < 3; c++)
            if (vec_push(&pf->rows, &row[c]) < 0) goto nomem;
    }
    pf->ndicts += m;
    pf->skipped += skipped;
    vec_free(&rows);
    return 1;
not_plain:
    pf->di.n = pf->ki.n = pf->va.n = n_di;
    pf->df.at.n = n_df;
    pf->df.tn = n_tok;
    vec_free(&rows);
    return 0;
nomem:
    pf->rows.n = n_rows;
    pf->di.n = pf->ki.n = pf->va.n = n_di;
    pf->df.at.n = n_df;
    pf->df.tn = n_tok;
    vec_free(&rows);
    return -1;
}

/* The thread: chunks as StreamParser.feed_file reads them, until the end, a stop, or a chunk it leaves. */
static void pf_run(void *arg) {
    tg_prefetch *pf = arg;
    tg_keys *kt = keys_new();
    unsigned char tail[64], tmp[128];
    Py_ssize_t tl = 0, c = 0, w = pf->save_n - 1;
    if (!kt) {
        pf->why = "out of memory";
        goto end;
    }
    for (;;) {
        if (pf_stopped(pf)) {
            pf->why = "stopped";
            break;
        }
        if (pf_bytes(pf) > pf->budget) {
            pf->why = "memory budget";
            break;
        }
        Py_ssize_t want = pf->chunk;
        if (pf->limit >= 0 && pf->limit - pf->read_to < want) want = pf->limit - pf->read_to;
        if (want <= 0) {
            pf->why = "limit";
            break;
        }
        while (pf->bufv.cap * 8 < c + want) {
            pf->bufv.n = (c + 7) / 8; /* what the growth copies */
            if (vec_grow(&pf->bufv) < 0) break;
        }
        pf->buf = (unsigned char *)pf->bufv.p;
        if (pf->bufv.cap * 8 < c + want) {
            pf->why = "out of memory";
            break;
        }
        Py_ssize_t got = 0;
        int failed = 0;
        while (got < want) {
            ssize_t k = read(pf->fd, pf->buf + c + got, (size_t)(want - got));
            if (k < 0 && errno == EINTR) continue;
            if (k < 0) failed = 1;
            if (k <= 0) break;
            got += k;
        }
        Py_ssize_t n = c + got;
        pf->read_to += got;
        pf->pending = n; /* until the chunk is taken, all of it is left to the Python parser */
        if (failed) { /* the Python parser reads on and reports it */
            pf->why = "read error";
            break;
        }
        if (!got) {
            pf->why = "end of file";
            break;
        }
        Py_ssize_t nsaves = pf->saves.n;
        if (tl) { /* a save line cut by the last buffer's end */
            Py_ssize_t h = n < w ? n : w;
            memcpy(tmp, tail, (size_t)tl);
            memcpy(tmp + tl, pf->buf, (size_t)h);
            if (pf_saves(pf, tmp, 0, tl + h, pf->offset - tl) < 0) goto nomem;
        }
        if (pf_saves(pf, pf->buf, 0, n, pf->offset) < 0) goto nomem;
        Py_ssize_t used;
        int x = pf_chunk(pf, kt, n, &used);
        if (x <= 0) {
            pf->saves.n = nsaves;
            pf->why = x < 0 ? "out of memory" : "a chunk the Python parsers read";
            break;
        }
        Py_ssize_t keep = used - pf->context;
        if (keep < 0) keep = 0;
        if (keep >= w) { /* the bytes just before the next buffer */
            memcpy(tail, pf->buf + keep - w, (size_t)w);
            tl = w;
        } else if (keep) {
            memcpy(tmp, tail, (size_t)tl);
            memcpy(tmp + tl, pf->buf, (size_t)keep);
            Py_ssize_t t = tl + keep, from = t > w ? t - w : 0;
            memcpy(tail, tmp + from, (size_t)(t - from));
            tl = t - from;
        }
        memmove(pf->buf, pf->buf + keep, (size_t)(n - keep));
        c = n - keep;
        pf->ctx = used - keep;
        pf->offset += keep;
        pf->pending = c;
        continue;
    nomem:
        pf->saves.n = nsaves;
        pf->why = "out of memory";
        break;
    }
end:
    PyMem_RawFree(kt);
    close(pf->fd);
    pf->fd = -1;
    PyThread_release_lock(pf->done);
}

/* Wait for the thread to end: after its current chunk when `stop`, else wherever it stops by itself. */
static void pf_join(tg_prefetch *pf, int stop) {
    if (!pf->started || pf->joined) return;
    if (stop) {
#if defined(__GNUC__)
        __atomic_store_n(&pf->stop, 1, __ATOMIC_RELEASE);
#else
        *(volatile int *)&pf->stop = 1;
#endif
    }
    Py_BEGIN_ALLOW_THREADS
    PyThread_acquire_lock(pf->done, WAIT_LOCK);
    Py_END_ALLOW_THREADS
    PyThread_release_lock(pf->done);
    pf->joined = 1;
}

static void pf_free(tg_prefetch *pf) {
    vec_free(&pf->rows);
    vec_free(&pf->di);
    vec_free(&pf->ki);
    vec_free(&pf->va);
    vec_free(&pf->saves);
    defer_free(&pf->df);
    vec_free(&pf->bufv);
    pf->buf = NULL;
    pf->pending = 0;
}

static void pf_dealloc(tg_prefetch *pf) {
    pf_join(pf, 1);
    if (pf->fd >= 0) close(pf->fd); /* never started */
    pf_free(pf);
    if (pf->done) PyThread_free_lock(pf->done);
    Py_TYPE(pf)->tp_free((PyObject *)pf);
}

static PyObject *pf_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"fd", "chunk", "context", "save_head", "limit", "budget", NULL};
    int fd;
    Py_ssize_t chunk, context, limit = -1, budget = 64 << 20;
    Py_buffer head;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "inny*|nn:HFPrefetch", kw, &fd, &chunk, &context, &head, &limit, &budget))
        return NULL;
    if (fd < 0 || chunk <= 0 || context < 0 || head.len < 1 || head.len >= 64) {
        PyBuffer_Release(&head);
        PyErr_SetString(PyExc_ValueError, "HFPrefetch: fd >= 0, chunk > 0, context >= 0 and a save_head of 1..63 bytes");
        return NULL;
    }
    tg_prefetch *pf = (tg_prefetch *)type->tp_alloc(type, 0);
    if (!pf) {
        PyBuffer_Release(&head);
        return NULL;
    }
    pf->fd = -1;
    pf->rows.mapped = pf->di.mapped = pf->ki.mapped = pf->va.mapped = pf->saves.mapped = pf->df.at.mapped = pf->bufv.mapped = 1;
    memcpy(pf->save_head, head.buf, (size_t)head.len);
    pf->save_n = head.len;
    PyBuffer_Release(&head);
    pf->chunk = chunk;
    pf->context = context;
    pf->limit = limit;
    pf->budget = budget;
    pf->why = "running";
    pf->done = PyThread_allocate_lock();
    if (!pf->done) {
        Py_DECREF(pf);
        return PyErr_NoMemory();
    }
    int dup_fd = dup(fd); /* the caller keeps its own: the thread closes this one when it ends */
    if (dup_fd < 0) {
        Py_DECREF(pf);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    pf->fd = dup_fd;
    PyThread_acquire_lock(pf->done, WAIT_LOCK);
    if (PyThread_start_new_thread(pf_run, pf) == PYTHREAD_INVALID_THREAD_ID) {
        PyThread_release_lock(pf->done);
        Py_DECREF(pf);
        PyErr_SetString(PyExc_RuntimeError, "HFPrefetch: cannot start a thread");
        return NULL;
    }
    pf->started = 1;
    return (PyObject *)pf;
}

PyDoc_STRVAR(pf_take_doc,
"take(key_info, kind_of_prio, epoch_prio, *, wait=False) -> (got, skipped, saves, offset, ctx, pending, read_to, why) | None\n\n"
"Stop the thread after its current chunk (with ``wait``, let it run until it stops by itself) and\n"
"hand over what it read: ``got`` is hf_chunk's, for every dict it read (its columns are Blocks:\n"
"numpy.frombuffer wraps them without a copy), ``skipped`` the scan's count, ``saves`` the int64\n"
"offsets of ``save_head`` (the thread cannot run the save regex), and the state to go on from:\n"
"``offset`` of ``pending`` (the carry, bytes), its first ``ctx`` bytes already scanned, and\n"
"``read_to`` (= offset + len(pending)), where the file's reading goes on. ``why`` says why the\n"
"thread stopped. None once taken.");

static PyObject *pf_take(tg_prefetch *pf, PyObject *args, PyObject *kwds) {
    static char *kw[] = {"key_info", "kind_of_prio", "epoch_prio", "wait", NULL};
    PyObject *key_info;
    Py_buffer kop;
    int epoch_prio, wait = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "Oy*i|$p:take", kw, &key_info, &kop, &epoch_prio, &wait)) return NULL;
    PyObject *res = NULL, *got = NULL, *saves = NULL, *pending = NULL;
    tg_key *keys = NULL;
    if (pf->joined || kop.len < 1 || kop.len > 256) {
        if (!pf->joined) PyErr_SetString(PyExc_ValueError, "take: kind_of_prio must hold 1..256 kinds");
        else res = Py_NewRef(Py_None);
        goto done;
    }
    pf_join(pf, !wait);
    /* the numbers left for Python's parser */
    const int64_t *at = (const int64_t *)pf->df.at.p;
    double *va = (double *)pf->va.p;
    for (Py_ssize_t q = 0; q < pf->df.at.n; q += 3) {
        double v;
        const unsigned char *t = (const unsigned char *)pf->df.tok + at[q + 1];
        if (slow_parse(t, t + at[q + 2], &v) != 0 || v - v != 0) { /* cannot happen: then none of it is used */
            res = Py_NewRef(Py_None);
            goto done;
        }
        va[at[q]] = v;
    }
    keys = PyMem_Malloc(sizeof(tg_key) * (size_t)(pf->nkeys + 1));
    if (!keys) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t g = 0; g < pf->nkeys; g++) {
        keys[g].p = (const unsigned char *)pf->names[g];
        keys[g].n = pf->name_n[g];
    }
    got = build_got(pf->ndicts, (const int64_t *)pf->rows.p, 3, 0, 1, 0, &pf->di, &pf->ki, &pf->va, keys, pf->nkeys, key_info,
                    (const unsigned char *)kop.buf, kop.len, epoch_prio, 1);
    if (!got) goto done;
    saves = block_of(&pf->saves);
    pending = saves ? PyBytes_FromStringAndSize((const char *)pf->buf, pf->pending) : NULL;
    if (pending)
        res = Py_BuildValue("(OnOnnOns)", got, pf->skipped, saves, pf->offset, pf->ctx, pending, pf->read_to, pf->why);
done:
    Py_XDECREF(got);
    Py_XDECREF(saves);
    Py_XDECREF(pending);
    PyMem_Free(keys);
    if (pf->joined) pf_free(pf);
    PyBuffer_Release(&kop);
    return res;
}

PyDoc_STRVAR(pf_cancel_doc, "cancel() -> None\n\nStop the thread after its current chunk and drop what it read.");

static PyObject *pf_cancel(tg_prefetch *pf, PyObject *unused) {
    (void)unused;
    pf_join(pf, 1);
    pf_free(pf);
    Py_RETURN_NONE;
}

static PyMethodDef pf_methods[] = {
    {"take", (PyCFunction)(void (*)(void))pf_take, METH_VARARGS | METH_KEYWORDS, pf_take_doc},
    {"cancel", (PyCFunction)pf_cancel, METH_NOARGS, pf_cancel_doc},
    {NULL, NULL, 0, NULL},
};

PyDoc_STRVAR(pf_doc,
"HFPrefetch(fd, chunk, context, save_head, limit=-1, budget=64 MiB)\n\n"
"Read the HF Trainer log open at ``fd`` (from its current position; the descriptor is duplicated)\n"
"on a thread of its own that holds no GIL, as StreamParser.feed_file would with reads of ``chunk``\n"
"bytes and ``context`` bytes kept before an unconsumed dict, until ``take()``, the end of the file,\n"
"a chunk that is not plain, ``limit`` bytes read, or ``budget`` bytes of results.");

static PyTypeObject PrefetchType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "trainguard._speedups.HFPrefetch",
    .tp_basicsize = sizeof(tg_prefetch),
    .tp_dealloc = (destructor)pf_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = pf_doc,
    .tp_methods = pf_methods,
    .tp_new = pf_new,
};
#else
#define TG_PREFETCH 0
#endif

static PyMethodDef methods[] = {
    {"parse_table", parse_table, METH_VARARGS, parse_table_doc},
    {"parse_float", parse_float, METH_O, parse_float_doc},
    {"hf_scan", hf_scan, METH_VARARGS, hf_scan_doc},
    {"hf_pairs", hf_pairs, METH_O, hf_pairs_doc},
    {"hf_chunk", hf_chunk, METH_VARARGS, hf_chunk_doc},
    {"text_rows", text_rows, METH_VARARGS, text_rows_doc},
    {"find", find, METH_VARARGS, find_doc},
    {"lines_with", lines_with, METH_VARARGS, lines_with_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT,
    "trainguard._speedups",
    "Optional compiled fast paths for the readers (see _speedups.c for why); pure-Python fallbacks exist.",
    -1,
    methods,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC PyInit__speedups(void) {
    tg_nan = PyOS_string_to_double("nan", NULL, NULL);
    if (tg_nan == -1.0 && PyErr_Occurred()) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (!m) return NULL;
    tb_init();
    if (PyModule_AddIntConstant(m, "FAST_FLOATS", TG_FAST_FLOATS) < 0 || PyModule_AddFunctions(m, tb_methods) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#if TG_PREFETCH
    if (PyType_Ready(&BlockType) < 0 || PyType_Ready(&PrefetchType) < 0 || PyModule_AddObjectRef(m, "HFPrefetch", (PyObject *)&PrefetchType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
#endif
    return m;
}
