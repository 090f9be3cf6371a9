/*
 * trainguard._speedups, TensorBoard part: the TFRecord framing, the add_scalar events and their
 * checksums of one event file, in one pass.
 *
 * Why: a scalar event is about 40 bytes, so a 16 MB event file is 300,000 records. In Python the
 * framing walk alone is one unpack per record, and the numpy decoding of the records that
 * SummaryWriter.add_scalar writes runs some forty array passes over all of them, plus a table CRC
 * down the columns: about 0.26 s for 300,000 scalars. Here the same work is one loop.
 *
 * What it decides is exactly what readers/_tb_proto.py's numpy path decides (the tests compare the
 * two on every event file they build): which records have the add_scalar shape
 *     0x09 wall(f64) 0x10 step(varint) 0x2A len [0x0A len [0x0A taglen tag 0x15 value(f32)]]
 * with every length a single byte and every part ending where the record ends, and, for those,
 * whether both masked CRC-32C checksums match. Every other record is left to the general decoder
 * in Python, which merges them back in file order.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

#include "_speedups_tb.h"

static uint32_t crc_tab[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1; /* CRC-32C, reflected */
        crc_tab[0][i] = c;
    }
    for (int i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++) crc_tab[k][i] = (crc_tab[k - 1][i] >> 8) ^ crc_tab[0][crc_tab[k - 1][i] & 0xFF];
}

/* CRC-32C by eight tables, eight bytes a step (about 2 GB/s; the bytes are assembled portably). */
static uint32_t crc32c(const unsigned char *p, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    while (n >= 8) {
        uint32_t lo = c ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24);
        uint32_t hi = (uint32_t)p[4] | (uint32_t)p[5] << 8 | (uint32_t)p[6] << 16 | (uint32_t)p[7] << 24;
        c = crc_tab[7][lo & 0xFF] ^ crc_tab[6][(lo >> 8) & 0xFF] ^ crc_tab[5][(lo >> 16) & 0xFF] ^ crc_tab[4][lo >> 24] ^
            crc_tab[3][hi & 0xFF] ^ crc_tab[2][(hi >> 8) & 0xFF] ^ crc_tab[1][(hi >> 16) & 0xFF] ^ crc_tab[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = crc_tab[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
    return c ^ 0xFFFFFFFFu;
}

static inline uint32_t masked(uint32_t c) { return ((c >> 15) | (c << 17)) + 0xA282EAD8u; }

static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* The distinct tags of the fast records, numbered in order of first appearance (open addressing; raw
 * allocations: the loop that fills it holds no GIL). */
typedef struct {
    Py_ssize_t *slot; /* cap entries: index into off/len, or -1 */
    Py_ssize_t cap;
    Py_ssize_t n;
    Py_ssize_t *off, *len, *first; /* per tag: where its bytes are, how many, the first record holding it */
    Py_ssize_t room;
} tg_tags;

static int tags_init(tg_tags *t) {
    memset(t, 0, sizeof *t);
    t->cap = 64;
    t->slot = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)t->cap);
    if (!t->slot) return -1;
    for (Py_ssize_t i = 0; i < t->cap; i++) t->slot[i] = -1;
    return 0;
}

static void tags_free(tg_tags *t) {
    PyMem_RawFree(t->slot);
    PyMem_RawFree(t->off);
    PyMem_RawFree(t->len);
    PyMem_RawFree(t->first);
}

static inline uint64_t tag_hash(const unsigned char *p, Py_ssize_t n) {
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n; /* FNV-1a */
    for (Py_ssize_t i = 0; i < n; i++) h = (h ^ p[i]) * 1099511628211ull;
    return h;
}

/* The id of tag b[off:off+n], numbered if new; -1 when out of memory. */
static Py_ssize_t tag_id(tg_tags *t, const unsigned char *b, Py_ssize_t off, Py_ssize_t n, Py_ssize_t rec) {
    Py_ssize_t mask = t->cap - 1, i = (Py_ssize_t)(tag_hash(b + off, n) & (uint64_t)mask);
    for (;; i = (i + 1) & mask) {
        Py_ssize_t s = t->slot[i];
        if (s < 0) break;
        if (t->len[s] == n && memcmp(b + t->off[s], b + off, (size_t)n) == 0) return s;
    }
    if (t->n == t->room) {
        Py_ssize_t room = t->room ? t->room * 2 : 16;
        Py_ssize_t *o = PyMem_RawRealloc(t->off, sizeof(Py_ssize_t) * (size_t)room);
        if (!o) return -1;
        t->off = o;
        Py_ssize_t *l = PyMem_RawRealloc(t->len, sizeof(Py_ssize_t) * (size_t)room);
        if (!l) return -1;
        t->len = l;
        Py_ssize_t *f = PyMem_RawRealloc(t->first, sizeof(Py_ssize_t) * (size_t)room);
        if (!f) return -1;
        t->first = f;
        t->room = room;
    }
    Py_ssize_t id = t->n++;
    t->off[id] = off;
    t->len[id] = n;
    t->first[id] = rec;
    t->slot[i] = id;
    if (t->n * 2 > t->cap) { /* rehash at half full */
        Py_ssize_t cap = t->cap * 2;
        Py_ssize_t *slot = PyMem_RawMalloc(sizeof(Py_ssize_t) * (size_t)cap);
        if (!slot) return -1;
        for (Py_ssize_t k = 0; k < cap; k++) slot[k] = -1;
        for (Py_ssize_t k = 0; k < t->n; k++) {
            Py_ssize_t j = (Py_ssize_t)(tag_hash(b + t->off[k], t->len[k]) & (uint64_t)(cap - 1));
            while (slot[j] >= 0) j = (j + 1) & (cap - 1);
            slot[j] = k;
        }
        PyMem_RawFree(t->slot);
        t->slot = slot;
        t->cap = cap;
    }
    return id;
}

/* Is record b[s:e] an add_scalar event? Then its step, wall time, value and tag span. Every byte read
 * lies inside [s, e): a record that would need one past e is not of this shape. */
static int scalar_event(const unsigned char *b, Py_ssize_t s, Py_ssize_t e, uint64_t *step, double *wall, double *val,
                        Py_ssize_t *tag_off, Py_ssize_t *tag_len) {
    if (e - s < 16 || b[s] != 0x09 || b[s + 9] != 0x10) return 0;
    uint64_t x = 0;
    Py_ssize_t k = 0;
    int cont = 1;
    for (; k < 10 && cont; k++) { /* the step varint: at most ten bytes, as the numpy path reads it */
        if (s + 10 + k >= e) return 0;
        unsigned char c = b[s + 10 + k];
        x |= (uint64_t)(c & 0x7F) << (7 * k);
        cont = c >= 0x80;
    }
    Py_ssize_t q = s + 10 + k;
    if (q + 5 >= e) return 0;
    Py_ssize_t l1 = b[q + 1], l2 = b[q + 3], tl = b[q + 5], v = q + 6 + tl;
    if (b[q] != 0x2A || l1 >= 0x80 || q + 2 + l1 != e || b[q + 2] != 0x0A || l2 >= 0x80 || q + 4 + l2 != e ||
        b[q + 4] != 0x0A || tl >= 0x80 || v + 5 != e || b[v] != 0x15)
        return 0;
    uint64_t w = le64(b + s + 1);
    uint32_t f = le32(b + v + 1);
    float fv;
    memcpy(wall, &w, 8);
    memcpy(&fv, &f, 4);
    *val = (double)fv;
    *step = x;
    *tag_off = q + 6;
    *tag_len = tl;
    return 1;
}

static PyObject *new_column(Py_ssize_t n) { return PyByteArray_FromStringAndSize(NULL, n * 8); }

PyDoc_STRVAR(tb_scan_doc,
"tb_scan(buf) -> (starts, end, torn, fast, steps, walls, values, local, ok, tags, first)\n\n"
"One TensorBoard event file's bytes. starts: int64 payload offset of each complete record; end: the\n"
"offset after the last complete record; torn: the offset of a last record that runs past the end\n"
"(or -1). For the records of the add_scalar shape, in file order: fast (record index), steps (int64),\n"
"walls, values (float64), local (tag id, numbered by first appearance), ok (one byte: both checksums\n"
"match). tags: each tag's bytes; first: the record index where each tag first appears. The int64 and\n"
"float64 columns are native-endian bytearrays for numpy.frombuffer.");

PyObject *tb_scan(PyObject *self, PyObject *arg) {
    (void)self;
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const unsigned char *b = view.buf;
    Py_ssize_t n = view.len, pos = 0, nrec = 0, torn = -1;
    while (pos < n) { /* count the complete records */
        Py_ssize_t rem = n - pos;
        if (rem < 8) {
            torn = pos;
            break;
        }
        uint64_t len = le64(b + pos);
        if (len > (uint64_t)rem || (uint64_t)rem - len < 16) {
            torn = pos;
            break;
        }
        pos += (Py_ssize_t)len + 16;
        nrec++;
    }
    Py_ssize_t end = torn >= 0 ? torn : pos;
    PyObject *starts = new_column(nrec), *fast = new_column(nrec), *steps = new_column(nrec), *walls = new_column(nrec),
             *vals = new_column(nrec), *local = new_column(nrec), *ok = PyByteArray_FromStringAndSize(NULL, nrec),
             *tags = NULL, *first = NULL, *res = NULL;
    tg_tags tt;
    int tags_ok = tags_init(&tt) == 0;
    if (!starts || !fast || !steps || !walls || !vals || !local || !ok || !tags_ok) {
        if (!tags_ok) PyErr_NoMemory();
        goto done;
    }
    int64_t *st = (int64_t *)PyByteArray_AS_STRING(starts), *fi = (int64_t *)PyByteArray_AS_STRING(fast),
            *sp = (int64_t *)PyByteArray_AS_STRING(steps), *lo = (int64_t *)PyByteArray_AS_STRING(local);
    double *wa = (double *)PyByteArray_AS_STRING(walls), *va = (double *)PyByteArray_AS_STRING(vals);
    char *okp = PyByteArray_AS_STRING(ok);
    Py_ssize_t m = 0;
    int nomem = 0;
    Py_BEGIN_ALLOW_THREADS
    pos = 0;
    for (Py_ssize_t r = 0; r < nrec; r++) {
        Py_ssize_t s = pos + 12, e = s + (Py_ssize_t)le64(b + pos);
        st[r] = s;
        uint64_t step;
        double wall, val;
        Py_ssize_t toff, tlen;
        if (scalar_event(b, s, e, &step, &wall, &val, &toff, &tlen)) {
            Py_ssize_t id = tag_id(&tt, b, toff, tlen, r);
            if (id < 0) {
                nomem = 1;
                break;
            }
            fi[m] = r;
            memcpy(&sp[m], &step, 8);
            wa[m] = wall;
            va[m] = val;
            lo[m] = id;
            okp[m] = masked(crc32c(b + pos, 8)) == le32(b + pos + 8) && masked(crc32c(b + s, (size_t)(e - s))) == le32(b + e);
            m++;
        }
        pos = e + 4;
    }
    Py_END_ALLOW_THREADS
    if (nomem) {
        PyErr_NoMemory();
        goto done;
    }
    if (PyByteArray_Resize(fast, m * 8) < 0 || PyByteArray_Resize(steps, m * 8) < 0 || PyByteArray_Resize(walls, m * 8) < 0 ||
        PyByteArray_Resize(vals, m * 8) < 0 || PyByteArray_Resize(local, m * 8) < 0 || PyByteArray_Resize(ok, m) < 0)
        goto done;
    tags = PyList_New(tt.n);
    first = new_column(tt.n);
    if (!tags || !first) goto done;
    for (Py_ssize_t i = 0; i < tt.n; i++) {
        PyObject *t = PyBytes_FromStringAndSize((const char *)b + tt.off[i], tt.len[i]);
        if (!t) goto done;
        PyList_SET_ITEM(tags, i, t);
        ((int64_t *)PyByteArray_AS_STRING(first))[i] = tt.first[i];
    }
    res = Py_BuildValue("(OnnOOOOOOOO)", starts, end, torn, fast, steps, walls, vals, local, ok, tags, first);
done:
    if (tags_ok) tags_free(&tt);
    Py_XDECREF(starts);
    Py_XDECREF(fast);
    Py_XDECREF(steps);
    Py_XDECREF(walls);
    Py_XDECREF(vals);
    Py_XDECREF(local);
    Py_XDECREF(ok);
    Py_XDECREF(tags);
    Py_XDECREF(first);
    PyBuffer_Release(&view);
    return res;
}

PyMethodDef tb_methods[] = {
    {"tb_scan", tb_scan, METH_O, tb_scan_doc},
    {NULL, NULL, 0, NULL},
};

void tb_init(void) { crc_init(); }
