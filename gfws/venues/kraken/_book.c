/* Kraken v2 books in integer ticks and lots, compiled (the top-level module _gfws_book).
 *
 * Why: a book update is most of what a Kraken feed receives, and doing its
 * work as Python objects (Decimals, quantize, checksum text, sorting) cost
 * several microseconds a message.  Here a level is kept as the digits of its
 * price in ticks and its size in lots (the pair's precision applied, leading
 * zeros gone): that text *is* what the venue's CRC32 reads, and digit strings
 * compare like the integers they spell, so nothing is formatted or rounded.
 * The (Decimal, Decimal) pair a consumer sees is made once per level, only
 * when it enters the published top of the book.
 *
 * Two entry points:
 *   Book     one symbol's book; the same methods as the pure-Python book in
 *            book.py (which gives identical results where this is not built).
 *   Updates  the venue's usual book update frame, parsed, applied and verified
 *            in one pass, and its usual trade update turned into events.  It
 *            takes only what it can prove the general path (msgspec, then the
 *            Python handlers) would accept unchanged: compact JSON of exactly
 *            the usual shape, plain non-negative numbers within the pair's
 *            precision, a live book, a subscribed pair.  Anything else is left
 *            untouched for the general path, which explains what is wrong; what
 *            it takes but cannot finish alone (a venue time out of the usual,
 *            a crossed book, a checksum mismatch) it hands back for the same
 *            Python checks.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>
#include <time.h>
#include <structmember.h>

#define MAX_DIGITS 56        /* 30 integer digits (MAX_ADJUSTED_EXPONENT) + 18 decimals fit */
#define MAX_INT_DIGITS 30
#define MAX_DECIMALS 18
#define CHECKSUM_LEVELS 10
#define MAX_FRAME_LEVELS 4096 /* more levels in one update: the general path takes it */
#define KNOWN_SYMBOLS 32      /* trade symbols remembered by their text (more: a str made each time) */
#define KNOWN_SYMBOL_LEN 32

/* -- CRC32 (the venue's checksum: zlib's polynomial) ------------------------------ */

/* Eight tables: eight bytes a step (a byte a step cost ~0.9 us a book on the development machine). */
static uint32_t crc_tables[8][256];

static void crc_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        crc_tables[0][i] = c;
    }
    for (int t = 1; t < 8; t++)
        for (int i = 0; i < 256; i++)
            crc_tables[t][i] = (crc_tables[t - 1][i] >> 8) ^ crc_tables[0][crc_tables[t - 1][i] & 0xFF];
}

static inline uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint32_t crc_update(uint32_t crc, const char *text, Py_ssize_t n) {
    const unsigned char *p = (const unsigned char *)text;
    for (; n >= 8; p += 8, n -= 8) {
        uint32_t a = le32(p) ^ crc, b = le32(p + 4);
        crc = crc_tables[7][a & 0xFF] ^ crc_tables[6][(a >> 8) & 0xFF] ^ crc_tables[5][(a >> 16) & 0xFF] ^
              crc_tables[4][a >> 24] ^ crc_tables[3][b & 0xFF] ^ crc_tables[2][(b >> 8) & 0xFF] ^
              crc_tables[1][(b >> 16) & 0xFF] ^ crc_tables[0][b >> 24];
    }
    for (; n > 0; p++, n--) crc = crc_tables[0][(crc ^ *p) & 0xFF] ^ (crc >> 8);
    return crc;
}

/* The same CRC by carry-less multiplication (x86-64 with PCLMULQDQ, checked at import), 16 bytes a step:
 * the register is folded forward over each block (multiplied by x**128 and x**192 modulo the polynomial,
 * in bit-reflected form), then reduced from 128 bits to 64, to 32, and to the remainder by Barrett
 * reduction (Intel's "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ", with its published
 * constants for this polynomial).  ~0.5 instructions a byte where the tables take ~2.5; a book's checksum
 * text is ~300 bytes.  Takes n >= 16; the bytes past the last whole block are the tables'. */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define CRC_FOLDING 1
static int crc_folds; /* the CPU has PCLMULQDQ and SSE4.1 */

__attribute__((target("pclmul,sse4.1")))
static uint32_t crc_fold(uint32_t crc, const unsigned char *p, Py_ssize_t n) {
    const __m128i x128 = _mm_set_epi64x(0x00ccaa009eLL, 0x01751997d0LL); /* low: x**192, high: x**128 */
    const __m128i x64 = _mm_set_epi64x(0, 0x0163cd6124LL);
    const __m128i barrett = _mm_set_epi64x(0x01f7011641LL, 0x01db710641LL); /* low: the polynomial, high: mu */
    const __m128i low32 = _mm_setr_epi32(-1, 0, -1, 0);
    __m128i x = _mm_xor_si128(_mm_loadu_si128((const __m128i *)p), _mm_cvtsi32_si128((int)crc));
    for (p += 16, n -= 16; n >= 16; p += 16, n -= 16) {
        __m128i folded = _mm_xor_si128(_mm_clmulepi64_si128(x, x128, 0x00), _mm_clmulepi64_si128(x, x128, 0x11));
        x = _mm_xor_si128(folded, _mm_loadu_si128((const __m128i *)p));
    }
    x = _mm_xor_si128(_mm_srli_si128(x, 8), _mm_clmulepi64_si128(x, x128, 0x10));       /* 128 -> 64 bits */
    x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, low32), x64, 0x00), _mm_srli_si128(x, 4)); /* -> 32 */
    __m128i q = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x, low32), barrett, 0x10), low32);
    x = _mm_xor_si128(x, _mm_clmulepi64_si128(q, barrett, 0x00));
    return (uint32_t)_mm_extract_epi32(x, 1);
}
#endif

/* The register after `text`, folding where the CPU can. */
static uint32_t crc_text(uint32_t crc, const char *text, Py_ssize_t n) {
#ifdef CRC_FOLDING
    if (crc_folds && n >= 16) {
        Py_ssize_t whole = n & ~(Py_ssize_t)15;
        crc = crc_fold(crc, (const unsigned char *)text, whole);
        text += whole;
        n -= whole;
    }
#endif
    return crc_update(crc, text, n);
}

static PyObject *module_crc32(PyObject *unused, PyObject *data) {
    if (!PyBytes_Check(data)) {
        PyErr_SetString(PyExc_TypeError, "crc32(bytes)");
        return NULL;
    }
    return PyLong_FromUnsignedLong(crc_text(0xFFFFFFFFu, PyBytes_AS_STRING(data), PyBytes_GET_SIZE(data)) ^ 0xFFFFFFFFu);
}

/* -- levels and sides ------------------------------------------------------------- */

typedef struct {
    unsigned char plen, qlen;
    char price[MAX_DIGITS]; /* ticks, no leading zero, never empty (a price is > 0) */
    char qty[MAX_DIGITS];   /* lots, no leading zero, never empty in a book (zero deletes) */
    PyObject *pair;         /* (Decimal, Decimal) at the pair's precision, made when first published */
    PyObject *price_object; /* its Decimal price, kept while only the size changes */
} Level;

typedef struct {
    Level **levels; /* best first */
    Py_ssize_t len, cap;
    int asks;       /* asks: ascending prices; bids: descending */
    PyObject *top;  /* cached tuple of the top `depth` pairs, NULL when the top changed */
} Side;

static inline int digits_cmp(const char *a, int alen, const char *b, int blen) {
    if (alen != blen) return alen < blen ? -1 : 1;
    return memcmp(a, b, (size_t)alen);
}

/* Index of the first level not better than `price`; *found says it has that price. */
static Py_ssize_t side_find(Side *s, const char *price, int plen, int *found) {
    Py_ssize_t lo = 0, hi = s->len;
    while (lo < hi) {
        Py_ssize_t mid = (lo + hi) / 2;
        Level *l = s->levels[mid];
        int c = digits_cmp(l->price, l->plen, price, plen);
        int better = s->asks ? c < 0 : c > 0;
        if (better) lo = mid + 1; else hi = mid;
    }
    *found = lo < s->len && digits_cmp(s->levels[lo]->price, s->levels[lo]->plen, price, plen) == 0;
    return lo;
}

static void side_changed(Side *s) { Py_CLEAR(s->top); }

static void level_free(Level *l) {
    Py_XDECREF(l->pair);
    Py_XDECREF(l->price_object);
    PyMem_Free(l);
}

static void side_clear(Side *s) {
    for (Py_ssize_t i = 0; i < s->len; i++) level_free(s->levels[i]);
    s->len = 0;
    side_changed(s);
}

/* Set one level (qlen 0 deletes it).  `pair` (borrowed, may be NULL) is the level's published pair. */
static int side_set(Side *s, const char *price, int plen, const char *qty, int qlen, PyObject *pair) {
    int found;
    Py_ssize_t at = side_find(s, price, plen, &found);
    side_changed(s);
    if (qlen == 0) {
        if (found) {
            level_free(s->levels[at]);
            memmove(&s->levels[at], &s->levels[at + 1], (size_t)(s->len - at - 1) * sizeof(Level *));
            s->len--;
        }
        return 0;
    }
    Level *l;
    if (found) {
        l = s->levels[at];
        Py_CLEAR(l->pair);
    } else {
        if (s->len == s->cap) {
            Py_ssize_t cap = s->cap ? s->cap * 2 : 16;
            Level **grown = PyMem_Realloc(s->levels, (size_t)cap * sizeof(Level *));
            if (grown == NULL) { PyErr_NoMemory(); return -1; }
            s->levels = grown;
            s->cap = cap;
        }
        l = PyMem_Malloc(sizeof(Level));
        if (l == NULL) { PyErr_NoMemory(); return -1; }
        l->pair = l->price_object = NULL;
        l->plen = (unsigned char)plen;
        memcpy(l->price, price, (size_t)plen);
        memmove(&s->levels[at + 1], &s->levels[at], (size_t)(s->len - at) * sizeof(Level *));
        s->levels[at] = l;
        s->len++;
    }
    l->qlen = (unsigned char)qlen;
    memcpy(l->qty, qty, (size_t)qlen);
    if (pair != NULL) {
        l->pair = Py_NewRef(pair);
        Py_XSETREF(l->price_object, Py_NewRef(PyTuple_GET_ITEM(pair, 0)));
    }
    return 0;
}

static void side_truncate(Side *s, Py_ssize_t depth) {
    while (s->len > depth) level_free(s->levels[--s->len]); /* beyond the top: the published tuple holds */
}

/* -- the book --------------------------------------------------------------------- */

static PyObject *Decimal; /* decimal.Decimal */

typedef struct {
    PyObject_HEAD
    PyObject *symbol;
    Py_ssize_t depth;
    int price_decimals, qty_decimals; /* -1: not known yet */
    int live;
    Side bids, asks;
} BookObject;

/* A Decimal spelled from digits in units of 10**-decimals (exactly what quantize gives), through its
 * constructor: Decimal(text) parses its arguments and the text again, ~2,500 instructions a Decimal. */
static PyObject *decimal_parsed(const char *digits, int n, int decimals) {
    char text[MAX_DIGITS + 24];
    int k = 0;
    if (decimals == 0) {
        memcpy(text, digits, (size_t)n);
        k = n;
    } else if (n > decimals) {
        memcpy(text, digits, (size_t)(n - decimals));
        k = n - decimals;
        text[k++] = '.';
        memcpy(text + k, digits + n - decimals, (size_t)decimals);
        k += decimals;
    } else {
        text[k++] = '0';
        text[k++] = '.';
        memset(text + k, '0', (size_t)(decimals - n));
        k += decimals - n;
        memcpy(text + k, digits, (size_t)n);
        k += n;
    }
    PyObject *s = PyUnicode_FromStringAndSize(text, k);
    if (s == NULL) return NULL;
    PyObject *d = PyObject_CallOneArg(Decimal, s);
    Py_DECREF(s);
    return d;
}

/* The same Decimal made in place, ~150 instructions: CPython's C decimal object is a header, a hash and
 * an mpd_t whose coefficient (base 10**19 words, least significant first) fits in four words kept inside
 * the object; the digits are already checked, so there is nothing to parse.  Used only where that layout
 * is this one: 64-bit CPython 3.9-3.11 (whose _decimal source gives it), the type's size and flags as
 * expected, and a self-test at import against the constructor over every digit count and precision
 * (decimal_check); anywhere else decimal_parsed, which gives the same values. */
#if SIZEOF_VOID_P == 8 && PY_VERSION_HEX >= 0x03090000 && PY_VERSION_HEX < 0x030C0000
#define DIRECT_DECIMALS_BUILT 1
#endif
typedef struct {
    uint8_t flags;
    int64_t exp, digits, len, alloc;
    uint64_t *data;
} MpdLayout;
typedef struct {
    PyObject_HEAD
    Py_hash_t hash;
    MpdLayout dec;
    uint64_t data[4];
} DecimalLayout;
#define MPD_STATIC_FLAGS 48 /* MPD_STATIC | MPD_STATIC_DATA: object and coefficient inside the object */
#define MPD_WORD_DIGITS 19

static int direct_decimals; /* 1 once decimal_check passed */

static PyObject *decimal_direct(const char *digits, int n, int decimals) {
    while (n > 1 && *digits == '0') digits++, n--;
    DecimalLayout *d = PyObject_New(DecimalLayout, (PyTypeObject *)Decimal);
    if (d == NULL) return NULL;
    d->hash = -1;
    int64_t len = 0;
    for (int end = n; end > 0; end -= MPD_WORD_DIGITS) {
        int start = end > MPD_WORD_DIGITS ? end - MPD_WORD_DIGITS : 0;
        uint64_t w = 0;
        for (int i = start; i < end; i++) w = w * 10 + (uint64_t)(digits[i] - '0');
        d->data[len++] = w;
    }
    d->dec.flags = MPD_STATIC_FLAGS;
    d->dec.exp = -decimals;
    d->dec.digits = n;
    d->dec.len = len;
    d->dec.alloc = 4;
    d->dec.data = d->data;
    return (PyObject *)d;
}

static PyObject *decimal_of(const char *digits, int n, int decimals) {
    if (direct_decimals && n >= 1 && n <= 4 * MPD_WORD_DIGITS) return decimal_direct(digits, n, decimals);
    return decimal_parsed(digits, n, decimals);
}

/* Whether decimal_direct gives what the constructor gives (value and exponent: equal and the same
 * text), for every digit count up to MAX_DIGITS at precisions across 0-18, with word-boundary,
 * leading-zero and zero patterns (~2 ms at import, before the first book); -1 only for an error of
 * Python's. */
static int decimal_check(void) {
#ifdef DIRECT_DECIMALS_BUILT
    PyTypeObject *t = (PyTypeObject *)Decimal;
    if (!PyType_Check(Decimal) || t->tp_basicsize != (Py_ssize_t)sizeof(DecimalLayout) ||
        PyType_HasFeature(t, Py_TPFLAGS_HAVE_GC) || strcmp(t->tp_name, "decimal.Decimal") != 0)
        return 0;
    char digits[MAX_DIGITS];
    static const int precisions[] = {0, 1, 2, 5, 8, 10, 18};
    for (size_t p = 0; p < sizeof precisions / sizeof *precisions; p++) {
        int decimals = precisions[p];
        for (int n = 1; n <= MAX_DIGITS; n++) {
            for (int pattern = 0; pattern < 5; pattern++) {
                for (int i = 0; i < n; i++)
                    digits[i] = pattern == 0 ? (char)('1' + (i * 7 + n) % 9) : pattern == 1 ? '9'
                              : pattern == 2 ? (i == 0 ? '1' : '0') : pattern == 3 ? (i == n - 1 ? '7' : '0') : '0';
                PyObject *a = decimal_direct(digits, n, decimals);
                PyObject *b = a ? decimal_parsed(digits, n, decimals) : NULL;
                PyObject *sa = b ? PyObject_Str(a) : NULL, *sb = sa ? PyObject_Str(b) : NULL;
                int same = sb ? PyObject_RichCompareBool(a, b, Py_EQ) : -1;
                if (same == 1) same = PyUnicode_Compare(sa, sb) == 0;
                Py_XDECREF(a); Py_XDECREF(b); Py_XDECREF(sa); Py_XDECREF(sb);
                if (same < 0 || PyErr_Occurred()) return -1;
                if (!same) return 0;
            }
        }
    }
    return 1;
#else
    return 0;
#endif
}

static PyObject *side_top(BookObject *b, Side *s) {
    if (s->top != NULL) return Py_NewRef(s->top);
    Py_ssize_t n = s->len < b->depth ? s->len : b->depth;
    PyObject *top = PyTuple_New(n);
    if (top == NULL) return NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        Level *l = s->levels[i];
        if (l->pair == NULL) {
            if (l->price_object == NULL &&
                (l->price_object = decimal_of(l->price, l->plen, b->price_decimals)) == NULL) {
                Py_DECREF(top);
                return NULL;
            }
            PyObject *q = decimal_of(l->qty, l->qlen, b->qty_decimals);
            if (q == NULL) { Py_DECREF(top); return NULL; }
            l->pair = PyTuple_Pack(2, l->price_object, q);
            Py_DECREF(q);
            if (l->pair == NULL) { Py_DECREF(top); return NULL; }
        }
        PyTuple_SET_ITEM(top, i, Py_NewRef(l->pair));
    }
    s->top = top;
    return Py_NewRef(top);
}

static uint32_t book_crc(BookObject *b) {
    char text[2 * CHECKSUM_LEVELS * 2 * MAX_DIGITS + 16]; /* + 16: a short level's text is copied 16 bytes whole */
    Py_ssize_t k = 0;
    Side *sides[2] = {&b->asks, &b->bids};
    for (int j = 0; j < 2; j++) {
        Side *s = sides[j];
        Py_ssize_t n = s->len < CHECKSUM_LEVELS ? s->len : CHECKSUM_LEVELS;
        for (Py_ssize_t i = 0; i < n; i++) {
            Level *l = s->levels[i];
            /* Up to 16 digits (nearly always) in one fixed 16-byte copy; what lands past them is overwritten. */
            if (l->plen <= 16) memcpy(text + k, l->price, 16); else memcpy(text + k, l->price, l->plen);
            k += l->plen;
            if (l->qlen <= 16) memcpy(text + k, l->qty, 16); else memcpy(text + k, l->qty, l->qlen);
            k += l->qlen;
        }
    }
    return crc_text(0xFFFFFFFFu, text, k) ^ 0xFFFFFFFFu;
}

static PyObject *Book_new(PyTypeObject *type, PyObject *args, PyObject *kw) {
    BookObject *self = (BookObject *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->symbol = PyUnicode_FromString(""); /* a usable book even before __init__ */
    if (self->symbol == NULL) { Py_DECREF(self); return NULL; }
    self->depth = 1;
    self->price_decimals = self->qty_decimals = -1;
    self->asks.asks = 1;
    return (PyObject *)self;
}

static int Book_init(BookObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"symbol", "depth", NULL};
    PyObject *symbol;
    Py_ssize_t depth;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "Un", names, &symbol, &depth)) return -1;
    if (depth < 1) { PyErr_SetString(PyExc_ValueError, "depth must be >= 1"); return -1; }
    Py_INCREF(symbol);
    /* A book's symbol is a subscribed one (a bounded set), interned as the dicts' keys are: found by identity. */
    if (PyUnicode_CheckExact(symbol)) PyUnicode_InternInPlace(&symbol);
    Py_XSETREF(self->symbol, symbol);
    self->depth = depth;
    self->price_decimals = self->qty_decimals = -1;
    self->live = 0;
    side_clear(&self->bids);
    side_clear(&self->asks);
    self->asks.asks = 1;
    self->bids.asks = 0;
    return 0;
}

static void Book_dealloc(BookObject *self) {
    side_clear(&self->bids);
    side_clear(&self->asks);
    PyMem_Free(self->bids.levels);
    PyMem_Free(self->asks.levels);
    Py_XDECREF(self->symbol);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Book_clear(BookObject *self, PyObject *unused) {
    side_clear(&self->bids);
    side_clear(&self->asks);
    Py_RETURN_NONE;
}

static PyObject *Book_set_precision(BookObject *self, PyObject *args) {
    int price_decimals, qty_decimals;
    if (!PyArg_ParseTuple(args, "ii", &price_decimals, &qty_decimals)) return NULL;
    if (price_decimals < 0 || qty_decimals < 0 || price_decimals > MAX_DECIMALS || qty_decimals > MAX_DECIMALS) {
        PyErr_SetString(PyExc_ValueError, "decimals must be 0..18");
        return NULL;
    }
    if (price_decimals != self->price_decimals || qty_decimals != self->qty_decimals) {
        side_clear(&self->bids); /* levels in the old units mean nothing now */
        side_clear(&self->asks);
        self->price_decimals = price_decimals;
        self->qty_decimals = qty_decimals;
    }
    Py_RETURN_NONE;
}

/* The digits of a Decimal already at the pair's precision, in units of its last place (none for zero,
 * minus zero included); *places is how many decimals it has, which must be `decimals` when that is known
 * (units of different sizes would not compare). */
static int units_of(PyObject *value, int decimals, char *out, int *n, int *places) {
    static PyObject *fixed = NULL;
    if (fixed == NULL && (fixed = PyUnicode_InternFromString("f")) == NULL) return -1;
    PyObject *text = PyObject_Format(value, fixed);
    if (text == NULL) return -1;
    Py_ssize_t len;
    const char *s = PyUnicode_AsUTF8AndSize(text, &len);
    if (s == NULL) { Py_DECREF(text); return -1; }
    const char *point = memchr(s, '.', (size_t)len);
    *places = point ? (int)(len - (point - s) - 1) : 0;
    if (*places > MAX_DECIMALS) { /* set_precision's limit, for a first level that fixes the units too */
        PyErr_Format(PyExc_ValueError, "%U has more than %d decimals", text, MAX_DECIMALS);
        Py_DECREF(text);
        return -1;
    }
    if (decimals >= 0 && *places != decimals) {
        PyErr_Format(PyExc_ValueError, "%U is not at the pair's %d decimals", text, decimals);
        Py_DECREF(text);
        return -1;
    }
    int k = 0, negative = len > 0 && s[0] == '-';
    for (Py_ssize_t i = negative; i < len; i++) {
        char c = s[i];
        if (c == '.') continue;
        if (c < '0' || c > '9') break;
        if (k == 0 && c == '0') continue;
        if (k == MAX_DIGITS) {
            PyErr_Format(PyExc_ValueError, "%U has too many digits", text);
            Py_DECREF(text);
            return -1;
        }
        out[k++] = c;
    }
    for (Py_ssize_t i = negative; i < len; i++) {
        if (s[i] != '.' && (s[i] < '0' || s[i] > '9')) k = -1;
    }
    if (k < 0 || (negative && k > 0)) { /* -0 is zero, as the pure book reads it */
        PyErr_Format(PyExc_ValueError, "%U is not a non-negative number", text);
        Py_DECREF(text);
        return -1;
    }
    Py_DECREF(text);
    *n = k;
    return 0;
}

typedef struct {
    unsigned char plen, qlen;
    char price[MAX_DIGITS];
    char qty[MAX_DIGITS];
    PyObject *pair; /* borrowed from the caller's levels, kept alive by `copies` */
} Given;

/* Apply (price, qty) levels, bids then asks.  Every level is read and checked before the book changes:
 * a bad one raises and leaves the book as it was.  Before set_precision(), the first level fixes the units. */
static PyObject *Book_apply(BookObject *self, PyObject *args) {
    PyObject *bids, *asks, *copies[2] = {NULL, NULL}, *result = NULL;
    Given *given = NULL;
    if (!PyArg_ParseTuple(args, "OO", &bids, &asks)) return NULL;
    if ((copies[0] = PySequence_Tuple(bids)) == NULL || (copies[1] = PySequence_Tuple(asks)) == NULL) goto done;
    Py_ssize_t counts[2] = {PyTuple_GET_SIZE(copies[0]), PyTuple_GET_SIZE(copies[1])};
    given = PyMem_Calloc((size_t)(counts[0] + counts[1]) + 1, sizeof(Given));
    if (given == NULL) { PyErr_NoMemory(); goto done; }
    int pd = self->price_decimals, qd = self->qty_decimals;
    Py_ssize_t k = 0;
    for (int j = 0; j < 2; j++) {
        for (Py_ssize_t i = 0; i < counts[j]; i++, k++) {
            PyObject *pair = PyTuple_GET_ITEM(copies[j], i);
            if (!PyTuple_Check(pair) || PyTuple_GET_SIZE(pair) != 2) {
                PyErr_SetString(PyExc_TypeError, "a level is a (price, qty) tuple");
                goto done;
            }
            int plen, qlen, pplaces, qplaces;
            if (units_of(PyTuple_GET_ITEM(pair, 0), pd, given[k].price, &plen, &pplaces) < 0 ||
                units_of(PyTuple_GET_ITEM(pair, 1), qd, given[k].qty, &qlen, &qplaces) < 0)
                goto done;
            pd = pplaces;
            qd = qplaces;
            given[k].plen = (unsigned char)plen;
            given[k].qlen = (unsigned char)qlen;
            given[k].pair = pair;
        }
    }
    if (k > 0) {
        self->price_decimals = pd;
        self->qty_decimals = qd;
    }
    Side *sides[2] = {&self->bids, &self->asks};
    k = 0;
    for (int j = 0; j < 2; j++) {
        for (Py_ssize_t i = 0; i < counts[j]; i++, k++) {
            Given *g = &given[k];
            if (side_set(sides[j], g->price, g->plen, g->qty, g->qlen, g->qlen ? g->pair : NULL) < 0) goto done;
        }
        side_truncate(sides[j], self->depth);
    }
    result = Py_NewRef(Py_None);
done:
    PyMem_Free(given);
    Py_XDECREF(copies[0]);
    Py_XDECREF(copies[1]);
    return result;
}

static PyObject *Book_top_bids(BookObject *self, PyObject *unused) { return side_top(self, &self->bids); }
static PyObject *Book_top_asks(BookObject *self, PyObject *unused) { return side_top(self, &self->asks); }

static PyObject *Book_checksum(BookObject *self, PyObject *unused) {
    return PyLong_FromUnsignedLong(book_crc(self));
}

static PyObject *Book_checksum_text(BookObject *self, PyObject *unused) {
    PyObject *parts = PyList_New(0);
    if (parts == NULL) return NULL;
    Side *sides[2] = {&self->asks, &self->bids};
    for (int k = 0; k < 2; k++) {
        Side *s = sides[k];
        Py_ssize_t n = s->len < CHECKSUM_LEVELS ? s->len : CHECKSUM_LEVELS;
        for (Py_ssize_t i = 0; i < n; i++) {
            Level *l = s->levels[i];
            PyObject *p = PyUnicode_FromStringAndSize(l->price, l->plen);
            PyObject *q = PyUnicode_FromStringAndSize(l->qty, l->qlen);
            if (p == NULL || q == NULL || PyList_Append(parts, p) < 0 || PyList_Append(parts, q) < 0) {
                Py_XDECREF(p); Py_XDECREF(q); Py_DECREF(parts);
                return NULL;
            }
            Py_DECREF(p);
            Py_DECREF(q);
        }
    }
    PyObject *empty = PyUnicode_FromString("");
    PyObject *text = empty ? PyUnicode_Join(empty, parts) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(parts);
    return text;
}

static Py_ssize_t Book_len(BookObject *self) { return self->bids.len + self->asks.len; }

static PyObject *Book_get_live(BookObject *self, void *c) { return PyBool_FromLong(self->live); }
static int Book_set_live(BookObject *self, PyObject *v, void *c) {
    int t = v ? PyObject_IsTrue(v) : 0;
    if (t < 0) return -1;
    self->live = t;
    return 0;
}
static PyObject *Book_get_symbol(BookObject *self, void *c) { return Py_NewRef(self->symbol); }
static PyObject *Book_get_depth(BookObject *self, void *c) { return PyLong_FromSsize_t(self->depth); }

static PyMethodDef Book_methods[] = {
    {"clear", (PyCFunction)Book_clear, METH_NOARGS, "Forget every level."},
    {"set_precision", (PyCFunction)Book_set_precision, METH_VARARGS,
     "The pair's decimals (price, qty); a change clears the book."},
    {"apply", (PyCFunction)Book_apply, METH_VARARGS,
     "Apply (price, qty) levels at the pair's precision, bids then asks, in order; then truncate to depth."},
    {"top_bids", (PyCFunction)Book_top_bids, METH_NOARGS, "The best `depth` bids as (price, qty) pairs."},
    {"top_asks", (PyCFunction)Book_top_asks, METH_NOARGS, "The best `depth` asks as (price, qty) pairs."},
    {"checksum", (PyCFunction)Book_checksum, METH_NOARGS, "The venue's CRC32 of this book."},
    {"checksum_text", (PyCFunction)Book_checksum_text, METH_NOARGS, "The text the venue's CRC32 reads."},
    {NULL}
};

static PyGetSetDef Book_getset[] = {
    {"live", (getter)Book_get_live, (setter)Book_set_live, "Verified since its snapshot.", NULL},
    {"symbol", (getter)Book_get_symbol, NULL, NULL, NULL},
    {"depth", (getter)Book_get_depth, NULL, NULL, NULL},
    {NULL}
};

static PySequenceMethods Book_as_sequence = {.sq_length = (lenfunc)Book_len};

static PyTypeObject BookType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gfws_book.Book",
    .tp_doc = "One symbol's book in ticks and lots, with the venue's checksum.",
    .tp_basicsize = sizeof(BookObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = Book_new,
    .tp_init = (initproc)Book_init,
    .tp_dealloc = (destructor)Book_dealloc,
    .tp_methods = Book_methods,
    .tp_getset = Book_getset,
    .tp_as_sequence = &Book_as_sequence,
};

/* -- the duplicate window ----------------------------------------------------------- */

/* The frame gate's memory of recent frame digests (the twin of gfws.integrity.dedup.RecentKeys, with the
 * same rules: a digest is forgotten once `capacity` newer ones are held or once older than `max_age`
 * seconds), kept in C so that the usual update's whole way (parse, resend check, count, apply, verify,
 * event) is one call.  A frame's digest is 64 bits of its bytes (frame_digest; 0 marks an empty slot of
 * an open-addressing table at most half full); a ring keeps them oldest first with their times. */
/* 64 bits of a frame, mixed eight bytes a step (xxHash64's rounds and final mix, one lane): ~1 instruction
 * a byte where hash(bytes) (SipHash) costs ~3.5.  Two different frames share a digest with odds of about
 * 2**-64 each (the window holds 100,000: a legitimate frame taken for a resend about once in 10**14). */
static inline uint64_t rotl64(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }

static uint64_t frame_digest(const char *text, Py_ssize_t n) {
    const uint64_t P1 = 0x9E3779B185EBCA87ULL, P2 = 0xC2B2AE3D27D4EB4FULL, P3 = 0x165667B19E3779F9ULL,
                   P4 = 0x85EBCA77C2B2AE63ULL, P5 = 0x27D4EB2F165667C5ULL;
    const unsigned char *p = (const unsigned char *)text;
    uint64_t h = P5 + (uint64_t)n;
    for (; n >= 8; p += 8, n -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h ^= rotl64(w * P2, 31) * P1;
        h = rotl64(h, 27) * P1 + P4;
    }
    for (; n > 0; p++, n--) h = rotl64(h ^ (*p * P5), 11) * P1;
    h ^= h >> 33;
    h *= P2;
    h ^= h >> 29;
    h *= P3;
    h ^= h >> 32;
    return h != 0 ? h : 1; /* 0 marks an empty slot */
}

typedef struct {
    PyObject_HEAD
    Py_ssize_t capacity, count, head;
    double max_age;
    uint64_t *ring_keys;
    double *ring_times;
    uint64_t *table;
    size_t mask;
    Py_ssize_t duplicates;
} DigestsObject;

static inline size_t digests_slot(DigestsObject *d, uint64_t stored, int *found) {
    size_t i = (size_t)(stored ^ (stored >> 29)) & d->mask;
    while (d->table[i] != 0) {
        if (d->table[i] == stored) { *found = 1; return i; }
        i = (i + 1) & d->mask;
    }
    *found = 0;
    return i;
}

static void digests_forget_oldest(DigestsObject *d) {
    uint64_t stored = d->ring_keys[d->head];
    d->head = d->head + 1 == d->capacity ? 0 : d->head + 1;
    d->count--;
    int found;
    size_t i = digests_slot(d, stored, &found), j = i;
    if (!found) return;
    /* Backward-shift deletion: later keys of the same run move up, so no probe ever stops short. */
    for (;;) {
        j = (j + 1) & d->mask;
        uint64_t k = d->table[j];
        if (k == 0) break;
        size_t home = (size_t)(k ^ (k >> 29)) & d->mask;
        int stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) { d->table[i] = k; i = j; }
    }
    d->table[i] = 0;
}

/* 1 the first time within the window (now remembered), 0 a duplicate (counted). */
static int digests_first_time(DigestsObject *d, uint64_t stored, double now) {
    if (d->max_age > 0) {
        double horizon = now - d->max_age;
        while (d->count && d->ring_times[d->head] < horizon) digests_forget_oldest(d);
    } else {
        now = 0.0;
    }
    int found;
    size_t i = digests_slot(d, stored, &found);
    if (found) { d->duplicates++; return 0; }
    if (d->count == d->capacity) {
        digests_forget_oldest(d);
        i = digests_slot(d, stored, &found); /* the deletion may have moved the free slot */
    }
    d->table[i] = stored;
    Py_ssize_t tail = d->head + d->count;
    if (tail >= d->capacity) tail -= d->capacity;
    d->ring_keys[tail] = stored;
    if (d->ring_times != NULL) d->ring_times[tail] = now;
    d->count++;
    return 1;
}

static int Digests_init(DigestsObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"capacity", "max_age", NULL};
    Py_ssize_t capacity;
    double max_age = 0.0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "n|d", names, &capacity, &max_age)) return -1;
    if (capacity < 1 || capacity > ((Py_ssize_t)1 << 40)) {
        PyErr_SetString(PyExc_ValueError, "capacity must be 1..2**40");
        return -1;
    }
    size_t slots = 2;
    while (slots < (size_t)capacity * 2) slots <<= 1;
    PyMem_Free(self->ring_keys); PyMem_Free(self->ring_times); PyMem_Free(self->table);
    /* Every page written now, at connect: left to the kernel to map on first touch, the window's first
     * 100,000 frames each had a chance of a page fault (~2-5 us; most of the slowest 1 % of messages). */
    self->ring_keys = PyMem_Malloc((size_t)capacity * sizeof(uint64_t));
    self->ring_times = max_age > 0 ? PyMem_Malloc((size_t)capacity * sizeof(double)) : NULL;
    self->table = PyMem_Malloc(slots * sizeof(uint64_t));
    if (self->ring_keys == NULL || (max_age > 0 && self->ring_times == NULL) || self->table == NULL) {
        PyMem_Free(self->ring_keys); PyMem_Free(self->ring_times); PyMem_Free(self->table);
        self->ring_keys = NULL; self->ring_times = NULL; self->table = NULL;
        self->capacity = self->count = self->head = 0;
        PyErr_NoMemory();
        return -1;
    }
    memset(self->table, 0, slots * sizeof(uint64_t));
    memset(self->ring_keys, 0, (size_t)capacity * sizeof(uint64_t));
    if (self->ring_times != NULL) memset(self->ring_times, 0, (size_t)capacity * sizeof(double));
    self->mask = slots - 1;
    self->capacity = capacity;
    self->max_age = max_age;
    self->count = self->head = self->duplicates = 0;
    return 0;
}

static void Digests_dealloc(DigestsObject *self) {
    PyMem_Free(self->ring_keys);
    PyMem_Free(self->ring_times);
    PyMem_Free(self->table);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Digests_first_frame(DigestsObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "first_frame(payload: bytes, now: float)");
        return NULL;
    }
    if (self->table == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Digests not initialised");
        return NULL;
    }
    double now = PyFloat_AsDouble(args[1]);
    if (now == -1.0 && PyErr_Occurred()) return NULL;
    uint64_t digest = frame_digest(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]));
    return PyBool_FromLong(digests_first_time(self, digest, now));
}

static Py_ssize_t Digests_len(DigestsObject *self) { return self->count; }

static PyMethodDef Digests_methods[] = {
    {"first_frame", (PyCFunction)(void (*)(void))Digests_first_frame, METH_FASTCALL,
     "first_frame(payload, now): remember the frame's digest; False if it is in the window (a duplicate, "
     "counted)."},
    {NULL}
};

static PyMemberDef Digests_members[] = {
    {"duplicates", T_PYSSIZET, offsetof(DigestsObject, duplicates), READONLY, "duplicates seen so far"},
    {"capacity", T_PYSSIZET, offsetof(DigestsObject, capacity), READONLY, "digests held at most"},
    {"max_age", T_DOUBLE, offsetof(DigestsObject, max_age), READONLY, "seconds a digest is held at most"},
    {NULL}
};

static PySequenceMethods Digests_sequence = {.sq_length = (lenfunc)Digests_len};

static PyTypeObject DigestsType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gfws_book.Digests",
    .tp_doc = "Digests(capacity, max_age=0): the frame gate's window of recent frame digests.",
    .tp_basicsize = sizeof(DigestsObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Digests_init,
    .tp_dealloc = (destructor)Digests_dealloc,
    .tp_methods = Digests_methods,
    .tp_members = Digests_members,
    .tp_as_sequence = &Digests_sequence,
};

/* -- venue times ------------------------------------------------------------------- */

/* POSIX seconds of the venue's usual time, "YYYY-MM-DDTHH:MM:SS.ffffffZ", exactly as
 * gfws.market.context.venue_seconds gives them (whole microseconds over 10**6, correctly rounded: exact
 * while the microseconds fit a double's 53 bits, so years 1970-2200); NAN for any other text or date,
 * which the general path reads.  A sampled item's venue delay is then recorded without leaving C. */
static double usual_venue_seconds(PyObject *ts) {
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";
    if (!PyUnicode_Check(ts) || !PyUnicode_IS_ASCII(ts) || PyUnicode_GET_LENGTH(ts) != 27) return NAN;
    const char *s = (const char *)PyUnicode_DATA(ts);
    for (int i = 0; i < 27; i++)
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i]) return NAN;
#define TWO(i) ((s[i] - '0') * 10 + (s[(i) + 1] - '0'))
    int y = TWO(0) * 100 + TWO(2), m = TWO(5), d = TWO(8), hour = TWO(11), minute = TWO(14), second = TWO(17);
    int64_t micros = (int64_t)TWO(20) * 10000 + TWO(22) * 100 + TWO(24);
#undef TWO
    static const int month_days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (y < 1970 || y > 2200 || m < 1 || m > 12 || d < 1 || d > month_days[m - 1] + (m == 2 && leap) ||
        hour > 23 || minute > 59 || second > 59)
        return NAN;
    /* Days since 1970-01-01 of a proleptic Gregorian date (years from March, so the leap day is last). */
    int64_t yy = y - (m <= 2);
    int64_t era = yy / 400, yoe = yy - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
    micros += ((days * 24 + hour) * 60 + minute) * 60 * 1000000 + (int64_t)second * 1000000;
    return (double)micros / 1e6;
}

/* Record the sampled item's venue delay (receipt minus venue time, never below zero). */
static int record_venue_delay(PyObject *record, double sent, PyObject *recv_ts) {
    double received = PyFloat_AsDouble(recv_ts);
    if (received == -1.0 && PyErr_Occurred()) return -1;
    double delay = received - sent;
    PyObject *seconds = PyFloat_FromDouble(delay > 0.0 ? delay : 0.0);
    if (seconds == NULL) return -1;
    PyObject *done = PyObject_CallOneArg(record, seconds);
    Py_DECREF(seconds);
    Py_XDECREF(done);
    return done == NULL ? -1 : 0;
}

/* The usual case of an item's venue time: the same width as the symbol's last and not before it (then it
 * becomes the last).  The sampled item (*sample) has its delay recorded here by `record` when its time
 * is the usual text, and *sample is cleared; else it stays for the general check, as does anything
 * unusual (the last time untouched).  1 usual, 0 for the general check, -1 an error of Python's. */
static int usual_time(PyObject *last_ts, PyObject *symbol, PyObject *ts, PyObject *record, PyObject *recv_ts,
                      int *sample) {
    PyObject *last = PyDict_GetItemWithError(last_ts, symbol);
    if (last == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(ts);
    if (!PyUnicode_Check(last) || !PyUnicode_IS_ASCII(last) || PyUnicode_GET_LENGTH(last) != n ||
        memcmp(PyUnicode_DATA(ts), PyUnicode_DATA(last), (size_t)n) < 0)
        return 0;
    if (*sample) {
        double sent = usual_venue_seconds(ts);
        if (isnan(sent)) return 0;
        if (record_venue_delay(record, sent, recv_ts) < 0) return -1;
        *sample = 0;
    }
    return PyDict_SetItem(last_ts, symbol, ts) < 0 ? -1 : 1;
}

static PyObject *module_venue_seconds(PyObject *unused, PyObject *ts) {
    double seconds = usual_venue_seconds(ts);
    if (isnan(seconds)) Py_RETURN_NONE;
    return PyFloat_FromDouble(seconds);
}

/* -- the usual update frame ------------------------------------------------------- */

typedef struct {
    unsigned char plen, qlen;
    char price[MAX_DIGITS];
    char qty[MAX_DIGITS];
} Parsed;

/* One item of the usual trade update. */
typedef struct {
    PyObject *symbol, *ts;     /* references (ts: a str or None) */
    PyObject *side, *ord_type; /* the interned literals */
    long long trade_id;
    int price_decimals, qty_decimals;
    unsigned char plen, qlen;
    char price[MAX_DIGITS];
    char qty[MAX_DIGITS];
} ParsedTrade;

typedef struct {
    PyObject_HEAD
    PyObject *venue;      /* str */
    PyObject *event_type; /* gfws.events.Book */
    PyObject *books;      /* dict: symbol -> Book, fixed at construction */
    Py_ssize_t nfixed;    /* the books again, with their symbols' text, for a lookup without a str */
    struct { const char *text; Py_ssize_t len; BookObject *book; } *fixed;
    PyObject *seen;       /* dict: symbol -> receipt of its latest item (liveness reads it) */
    PyObject *last_ts;    /* dict: symbol -> its latest venue time (the general path's, shared) */
    int strict_times;     /* every time goes to the general check (an age limit is set) */
    unsigned long timed;  /* timestamped updates so far: one in 16 is sampled for venue delay */
    PyObject *kwnames;
    /* The frame parsed last, waiting for commit(). */
    BookObject *book;     /* the book it is for (a reference), NULL when none waits */
    PyObject *ts;         /* str or None */
    unsigned long checksum;
    Py_ssize_t nbids, nasks, cap;
    Parsed *levels;       /* bids then asks */
    /* Trades (the venue's usual trade update): only with a trade_type. */
    PyObject *trade_type, *trade_kwnames;
    PyObject *precisions;     /* dict: symbol -> PairPrecision (the instruments', kept in place) */
    PyObject *trade_expected; /* set of subscribed symbols, or None: any */
    PyObject *trade_seen, *trade_last_ts;
    unsigned long trades_timed;
    int pending;              /* what waits for commit(): 0 nothing, 1 a book update, 2 trades */
    PyObject *taken;          /* the channel parse() took last ('book', 'trade'), None */
    DigestsObject *digests;   /* the frame gate's window (take() checks resends in it), or NULL */
    PyObject *counts;         /* dict: channel -> frames handled (take() counts in it), or NULL */
    PyObject *venue_delay;    /* callable(seconds): records a sampled item's venue delay, or NULL */
    ParsedTrade *trades;
    Py_ssize_t ntrades, trades_cap;
    /* The trade symbols met so far (at most KNOWN_SYMBOLS): the str made once, and the decimals of the
     * precision object last found for it (a pair's precision is never changed in place: a new
     * announcement is a new object, so the same object means the same decimals). */
    struct {
        char text[KNOWN_SYMBOL_LEN];
        Py_ssize_t len;
        PyObject *symbol, *precision;
        int price_decimals, qty_decimals;
    } known[KNOWN_SYMBOLS];
    int nknown;
} UpdatesObject;

static PyObject *s_book, *s_trade, *s_buy, *s_sell, *s_limit, *s_market, *s_price_decimals, *s_qty_decimals;

static void trades_reset(UpdatesObject *u) {
    for (Py_ssize_t i = 0; i < u->ntrades; i++) {
        Py_CLEAR(u->trades[i].symbol);
        Py_CLEAR(u->trades[i].ts);
    }
    u->ntrades = 0;
}

/* Release a detached array of trades; it becomes the parser's again unless a new one was made meanwhile. */
static void release_trades(UpdatesObject *u, ParsedTrade *trades, Py_ssize_t n, Py_ssize_t cap) {
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_XDECREF(trades[i].symbol);
        Py_XDECREF(trades[i].ts);
    }
    if (u->trades == NULL && trades != NULL) {
        u->trades = trades;
        u->trades_cap = cap;
        u->ntrades = 0;
    } else {
        PyMem_Free(trades);
    }
}

static void known_clear(UpdatesObject *u) {
    for (int i = 0; i < u->nknown; i++) {
        Py_CLEAR(u->known[i].symbol);
        Py_CLEAR(u->known[i].precision);
    }
    u->nknown = 0;
}

static const char PREFIX[] = "{\"channel\":\"book\",\"type\":\"update\",\"data\":[{\"symbol\":\"";

/* The literal `lit` next in the frame, or not this frame (return 0). */
#define EXPECT(lit)                                                                   \
    do {                                                                              \
        size_t n_ = sizeof(lit) - 1;                                                  \
        if ((size_t)(end - p) < n_ || memcmp(p, lit, n_) != 0) {                      \
            return 0;                                                                 \
        }                                                                             \
        p += n_;                                                                      \
    } while (0)

/* A plain JSON string of printable ASCII (no escape): [start, *len). */
static int scan_string(const char **pp, const char *end, const char **start, Py_ssize_t *len) {
    const char *p = *pp;
    *start = p;
    while (p < end && *p != '"') {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c > 0x7E || c == '\\') return 0;
        p++;
    }
    if (p == end) return 0;
    *len = p - *start;
    *pp = p + 1;
    return 1;
}

/* A plain non-negative JSON number with at most `decimals` significant decimals, as units
 * of 10**-decimals without leading zeros (*n = 0 for zero).  0: not plain, or not at precision. */
static int scan_units(const char **pp, const char *end, int decimals, char *out, int *n) {
    const char *p = *pp, *int_start = p;
    if (p == end || *p < '0' || *p > '9') return 0;
    if (*p == '0') p++;
    else while (p < end && *p >= '0' && *p <= '9') p++;
    Py_ssize_t int_len = p - int_start;
    if (int_len > MAX_INT_DIGITS || int_len + decimals > MAX_DIGITS) return 0;
    const char *frac = p;
    Py_ssize_t frac_len = 0;
    if (p < end && *p == '.') {
        frac = ++p;
        while (p < end && *p >= '0' && *p <= '9') p++;
        frac_len = p - frac;
        if (frac_len == 0) return 0;
    }
    if (p < end && (*p == 'e' || *p == 'E')) return 0;
    while (frac_len > 0 && frac[frac_len - 1] == '0') frac_len--;
    if (frac_len > decimals) return 0;
    int k = 0;
    for (const char *c = int_start; c < int_start + int_len; c++)
        if (k || *c != '0') out[k++] = *c;
    for (Py_ssize_t i = 0; i < decimals; i++) {
        char c = i < frac_len ? frac[i] : '0';
        if (k || c != '0') out[k++] = c;
    }
    *n = k;
    *pp = p;
    return 1;
}

/* `[{"price":N,"qty":N},...]` into u->levels from index *count. */
static int scan_levels(UpdatesObject *u, const char **pp, const char *end, BookObject *b, Py_ssize_t *count) {
    const char *p = *pp;
    EXPECT("[");
    if (p < end && *p == ']') { *pp = p + 1; return 1; }
    for (;;) {
        if (*count == u->cap) {
            if (u->cap >= MAX_FRAME_LEVELS) return 0;
            Py_ssize_t cap = u->cap ? u->cap * 2 : 64;
            Parsed *grown = PyMem_Realloc(u->levels, (size_t)cap * sizeof(Parsed));
            if (grown == NULL) return 0;
            u->levels = grown;
            u->cap = cap;
        }
        Parsed *l = &u->levels[*count];
        int plen, qlen;
        EXPECT("{\"price\":");
        if (!scan_units(&p, end, b->price_decimals, l->price, &plen) || plen == 0) return 0;
        EXPECT(",\"qty\":");
        if (!scan_units(&p, end, b->qty_decimals, l->qty, &qlen)) return 0;
        EXPECT("}");
        l->plen = (unsigned char)plen;
        l->qlen = (unsigned char)qlen;
        (*count)++;
        if (p < end && *p == ',') { p++; continue; }
        EXPECT("]");
        *pp = p;
        return 1;
    }
}

static int parse_frame(UpdatesObject *u, const char *p, const char *end) {
    EXPECT(PREFIX);
    const char *s;
    Py_ssize_t slen;
    if (!scan_string(&p, end, &s, &slen)) return 0;
    BookObject *b = NULL;
    for (Py_ssize_t i = 0; i < u->nfixed; i++) {
        if (u->fixed[i].len == slen && memcmp(u->fixed[i].text, s, (size_t)slen) == 0) {
            b = u->fixed[i].book;
            break;
        }
    }
    if (b == NULL || !b->live || b->price_decimals < 0) return 0;
    Py_ssize_t count = 0;
    EXPECT(",\"bids\":");
    if (!scan_levels(u, &p, end, b, &count)) return 0;
    u->nbids = count;
    EXPECT(",\"asks\":");
    if (!scan_levels(u, &p, end, b, &count)) return 0;
    u->nasks = count - u->nbids;
    EXPECT(",\"checksum\":");
    const char *digits = p;
    unsigned long long checksum = 0;
    if (p == end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')) return 0;
    while (p < end && *p >= '0' && *p <= '9') {
        checksum = checksum * 10 + (unsigned)(*p++ - '0');
        if (p - digits > 10) return 0;
    }
    if (checksum > 0xFFFFFFFFull) return 0;
    PyObject *ts = Py_None;
    if (p < end && *p == ',') {
        EXPECT(",\"timestamp\":\"");
        const char *t;
        Py_ssize_t tlen;
        if (!scan_string(&p, end, &t, &tlen)) return 0;
        if ((ts = PyUnicode_FromStringAndSize(t, tlen)) == NULL) { PyErr_Clear(); return 0; }
    } else {
        Py_INCREF(ts);
    }
    if ((size_t)(end - p) != 3 || memcmp(p, "}]}", 3) != 0) { Py_DECREF(ts); return 0; }
    Py_XSETREF(u->ts, ts);
    u->checksum = (unsigned long)checksum;
    Py_XSETREF(u->book, (BookObject *)Py_NewRef(b));
    return 1;
}

static const char TRADE_PREFIX[] = "{\"channel\":\"trade\",\"type\":\"update\",\"data\":[";

/* One of two literals followed by a closing quote: *out is its interned str. */
static int scan_literal(const char **pp, const char *end, const char *a, PyObject *oa, const char *b, PyObject *ob,
                        PyObject **out) {
    const char *p = *pp;
    size_t na = strlen(a), nb = strlen(b);
    if ((size_t)(end - p) > na && memcmp(p, a, na) == 0 && p[na] == '"') { *out = oa; *pp = p + na + 1; return 1; }
    if ((size_t)(end - p) > nb && memcmp(p, b, nb) == 0 && p[nb] == '"') { *out = ob; *pp = p + nb + 1; return 1; }
    return 0;
}

static int decimals_of(PyObject *precision, PyObject *name, int *out) {
    PyObject *v = PyObject_GetAttr(precision, name);
    if (v == NULL) { PyErr_Clear(); return 0; }
    long d = PyLong_Check(v) ? PyLong_AsLong(v) : -1;
    Py_DECREF(v);
    if (d < 0 || d > 18) { PyErr_Clear(); return 0; }
    *out = (int)d;
    return 1;
}

/* `{"channel":"trade","type":"update","data":[{item},...]}`, each item of the usual shape, of a subscribed
 * symbol whose precision is known, its price and size within it and > 0. */
static int parse_trades(UpdatesObject *u, const char *p, const char *end) {
    EXPECT(TRADE_PREFIX);
    for (;;) {
        if (u->ntrades == u->trades_cap) {
            if (u->trades_cap >= MAX_FRAME_LEVELS) return 0;
            Py_ssize_t cap = u->trades_cap ? u->trades_cap * 2 : 16;
            ParsedTrade *grown = PyMem_Realloc(u->trades, (size_t)cap * sizeof(ParsedTrade));
            if (grown == NULL) { PyErr_Clear(); return 0; }
            u->trades = grown;
            u->trades_cap = cap;
        }
        ParsedTrade *t = &u->trades[u->ntrades];
        t->symbol = t->ts = NULL;
        u->ntrades++; /* from here on, trades_reset() releases what it holds */
        const char *s;
        Py_ssize_t slen;
        EXPECT("{\"symbol\":\"");
        if (!scan_string(&p, end, &s, &slen)) return 0;
        int known = 0;
        while (known < u->nknown && (u->known[known].len != slen || memcmp(u->known[known].text, s, (size_t)slen)))
            known++;
        if (known < u->nknown) {
            t->symbol = Py_NewRef(u->known[known].symbol);
        } else {
            if ((t->symbol = PyUnicode_FromStringAndSize(s, slen)) == NULL) { PyErr_Clear(); return 0; }
            /* A subscribed symbol is interned, as the dicts' keys are (found by identity); the venue's
             * other symbols are not (an unbounded set: interning them would keep their memory). */
            int subscribed = u->trade_expected != Py_None ? PySet_Contains(u->trade_expected, t->symbol) : 0;
            if (subscribed < 0) { PyErr_Clear(); return 0; }
            if (subscribed) PyUnicode_InternInPlace(&t->symbol);
            if (u->nknown < KNOWN_SYMBOLS && slen <= KNOWN_SYMBOL_LEN) {
                memcpy(u->known[known].text, s, (size_t)slen);
                u->known[known].len = slen;
                u->known[known].symbol = Py_NewRef(t->symbol);
                u->known[known].precision = NULL;
                u->nknown++;
            } else {
                known = -1;
            }
        }
        if (u->trade_expected != Py_None && PySet_Contains(u->trade_expected, t->symbol) != 1) {
            PyErr_Clear();
            return 0;
        }
        PyObject *precision = PyDict_GetItemWithError(u->precisions, t->symbol);
        if (precision == NULL) { PyErr_Clear(); return 0; }
        if (known >= 0 && precision == u->known[known].precision) {
            t->price_decimals = u->known[known].price_decimals;
            t->qty_decimals = u->known[known].qty_decimals;
        } else {
            if (!decimals_of(precision, s_price_decimals, &t->price_decimals) ||
                !decimals_of(precision, s_qty_decimals, &t->qty_decimals))
                return 0;
            if (known >= 0) {
                Py_XSETREF(u->known[known].precision, Py_NewRef(precision));
                u->known[known].price_decimals = t->price_decimals;
                u->known[known].qty_decimals = t->qty_decimals;
            }
        }
        int plen, qlen;
        EXPECT(",\"side\":\"");
        if (!scan_literal(&p, end, "buy", s_buy, "sell", s_sell, &t->side)) return 0;
        EXPECT(",\"price\":");
        if (!scan_units(&p, end, t->price_decimals, t->price, &plen) || plen == 0) return 0;
        EXPECT(",\"qty\":");
        if (!scan_units(&p, end, t->qty_decimals, t->qty, &qlen) || qlen == 0) return 0;
        t->plen = (unsigned char)plen;
        t->qlen = (unsigned char)qlen;
        EXPECT(",\"ord_type\":\"");
        if (!scan_literal(&p, end, "limit", s_limit, "market", s_market, &t->ord_type)) return 0;
        EXPECT(",\"trade_id\":");
        const char *digits = p;
        unsigned long long id = 0;
        if (p == end || *p < '0' || *p > '9' || (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')) return 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (p - digits >= 19) return 0;
            id = id * 10 + (unsigned)(*p++ - '0');
        }
        if (id > 9223372036854775807ull) return 0;
        t->trade_id = (long long)id;
        if (p < end && *p == ',') {
            const char *ts;
            Py_ssize_t tslen;
            EXPECT(",\"timestamp\":\"");
            if (!scan_string(&p, end, &ts, &tslen)) return 0;
            if ((t->ts = PyUnicode_FromStringAndSize(ts, tslen)) == NULL) { PyErr_Clear(); return 0; }
        } else {
            t->ts = Py_NewRef(Py_None);
        }
        EXPECT("}");
        if (p < end && *p == ',') { p++; continue; }
        EXPECT("]}");
        return p == end;
    }
}

static PyObject *Updates_parse(UpdatesObject *self, PyObject *payload) {
    char *data;
    Py_ssize_t size;
    Py_CLEAR(self->book);
    trades_reset(self);
    self->pending = 0;
    Py_XSETREF(self->taken, Py_NewRef(Py_None));
    if (PyBytes_AsStringAndSize(payload, &data, &size) < 0) return NULL;
    if (parse_frame(self, data, data + size)) {
        self->pending = 1;
        Py_XSETREF(self->taken, Py_NewRef(s_book));
        return Py_NewRef(s_book);
    }
    if (self->trade_type != NULL && parse_trades(self, data, data + size)) {
        self->pending = 2;
        Py_XSETREF(self->taken, Py_NewRef(s_trade));
        return Py_NewRef(s_trade);
    }
    trades_reset(self);
    Py_RETURN_NONE;
}

/* The parsed trades as events, in order.  An item whose venue time is not the usual case, or is the one
 * in 16 sampled, comes as (event, sampled) for the general check, and so does every item after it in the
 * frame (the general check must see the times in order). */
static PyObject *commit_trades(UpdatesObject *u, PyObject *recv_ts) {
    /* Detached first: the event type or a collection may run Python code that parses again. */
    ParsedTrade *trades = u->trades;
    Py_ssize_t n = u->ntrades, cap = u->trades_cap;
    u->trades = NULL;
    u->ntrades = u->trades_cap = 0;
    PyObject *out = PyList_New(n);
    if (out == NULL) goto fail;
    int deferred = u->strict_times;
    for (Py_ssize_t i = 0; i < n; i++) {
        ParsedTrade *t = &trades[i];
        int sample = 0;
        if (PyDict_SetItem(u->trade_seen, t->symbol, recv_ts) < 0) goto fail;
        if (t->ts != Py_None) {
            sample = (++u->trades_timed & 15) == 0;
            if (!deferred && (!sample || u->venue_delay != NULL)) {
                int usual = usual_time(u->trade_last_ts, t->symbol, t->ts, u->venue_delay, recv_ts, &sample);
                if (usual < 0) goto fail;
                deferred = !usual;
            } else {
                deferred = 1;
            }
        }
        PyObject *price = decimal_of(t->price, t->plen, t->price_decimals);
        PyObject *qty = price ? decimal_of(t->qty, t->qlen, t->qty_decimals) : NULL;
        PyObject *id = qty ? PyLong_FromLongLong(t->trade_id) : NULL;
        PyObject *event = NULL;
        if (id != NULL) {
            PyObject *args[10] = {u->venue, recv_ts, t->symbol, id, t->side, price, qty, t->ord_type, t->ts, Py_False};
            event = PyObject_Vectorcall(u->trade_type, args, 0, u->trade_kwnames);
        }
        Py_XDECREF(price);
        Py_XDECREF(qty);
        Py_XDECREF(id);
        if (event == NULL) goto fail;
        if (deferred) {
            PyObject *pair = Py_BuildValue("(NO)", event, sample ? Py_True : Py_False);
            if (pair == NULL) goto fail;
            event = pair;
        }
        PyList_SET_ITEM(out, i, event);
    }
    release_trades(u, trades, n, cap);
    return out;
fail:
    Py_XDECREF(out);
    release_trades(u, trades, n, cap);
    return NULL;
}

static PyObject *Updates_commit(UpdatesObject *self, PyObject *recv_ts) {
    int pending = self->pending;
    self->pending = 0;
    if (pending == 2) return commit_trades(self, recv_ts);
    BookObject *b = self->book;
    if (b == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "commit() without a parsed frame");
        return NULL;
    }
    Side *sides[2] = {&b->bids, &b->asks};
    Py_ssize_t from[2] = {0, self->nbids}, to[2] = {self->nbids, self->nbids + self->nasks};
    for (int k = 0; k < 2; k++) {
        for (Py_ssize_t i = from[k]; i < to[k]; i++) {
            Parsed *l = &self->levels[i];
            if (side_set(sides[k], l->price, l->plen, l->qty, l->qlen, NULL) < 0) return NULL;
        }
        side_truncate(sides[k], b->depth);
    }
    self->book = NULL; /* the reference is released below */
    /* Own references: the event type or a collection may run Python code that parses again. */
    PyObject *symbol = Py_NewRef(b->symbol), *ts = Py_NewRef(self->ts), *result;
    unsigned long checksum_given = self->checksum;
    if (PyDict_SetItem(self->seen, symbol, recv_ts) < 0) { Py_DECREF(b); Py_DECREF(symbol); Py_DECREF(ts); return NULL; }
    uint32_t computed = book_crc(b);
    int usual = computed == checksum_given, sample = 0;
    if (usual && b->bids.len && b->asks.len) { /* crossed: best bid >= best ask */
        Level *bid = b->bids.levels[0], *ask = b->asks.levels[0];
        usual = digits_cmp(bid->price, bid->plen, ask->price, ask->plen) < 0;
    }
    if (ts != Py_None) {
        sample = (++self->timed & 15) == 0;
        if (usual && (!sample || self->venue_delay != NULL) && !self->strict_times) {
            usual = usual_time(self->last_ts, symbol, ts, self->venue_delay, recv_ts, &sample);
            if (usual < 0) { Py_DECREF(b); Py_DECREF(symbol); Py_DECREF(ts); return NULL; }
        } else {
            usual = 0;
        }
    }
    PyObject *event = Py_None;
    Py_INCREF(event);
    if (computed == checksum_given) {
        PyObject *bids = side_top(b, &b->bids);
        PyObject *asks = bids ? side_top(b, &b->asks) : NULL;
        PyObject *checksum = asks ? PyLong_FromUnsignedLong(computed) : NULL;
        if (checksum == NULL) {
            Py_XDECREF(bids); Py_XDECREF(asks); Py_DECREF(event); Py_DECREF(b); Py_DECREF(symbol); Py_DECREF(ts);
            return NULL;
        }
        PyObject *args[8] = {self->venue, recv_ts, symbol, bids, asks, checksum, Py_False, ts};
        Py_SETREF(event, PyObject_Vectorcall(self->event_type, args, 0, self->kwnames));
        Py_DECREF(bids);
        Py_DECREF(asks);
        Py_DECREF(checksum);
        if (event == NULL) { Py_DECREF(b); Py_DECREF(symbol); Py_DECREF(ts); return NULL; }
    }
    if (usual) {
        Py_DECREF(b);
        Py_DECREF(symbol);
        Py_DECREF(ts);
        return event;
    }
    result = Py_BuildValue("(NOOkkO)", event, symbol, ts, checksum_given, (unsigned long)computed,
                           sample ? Py_True : Py_False);
    Py_DECREF(b);
    Py_DECREF(symbol);
    Py_DECREF(ts);
    return result;
}

/* parse(), the resend check in the gate's window, the channel's count and commit(), in one call: the
 * usual update's whole way in the session but its publishing. */
static PyObject *Updates_take(UpdatesObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "take(payload, recv_ts)");
        return NULL;
    }
    PyObject *payload = args[0], *recv_ts = args[1];
    PyObject *channel = Updates_parse(self, payload);
    if (channel == NULL || channel == Py_None) return channel;
    if (self->digests != NULL) {
        if (self->digests->table == NULL) { /* its __init__ failed again since */
            Py_DECREF(channel);
            PyErr_SetString(PyExc_RuntimeError, "Digests not initialised");
            return NULL;
        }
        double now = PyFloat_AsDouble(recv_ts);
        if (now == -1.0 && PyErr_Occurred()) { Py_DECREF(channel); return NULL; }
        /* parse() took it, so it is bytes */
        if (!digests_first_time(self->digests, frame_digest(PyBytes_AS_STRING(payload), PyBytes_GET_SIZE(payload)),
                                now)) {
            Py_CLEAR(self->book);
            trades_reset(self);
            self->pending = 0;
            Py_DECREF(channel);
            Py_RETURN_FALSE;
        }
    }
    if (self->counts != NULL) {
        PyObject *n = PyDict_GetItemWithError(self->counts, channel);
        Py_ssize_t so_far = n != NULL ? PyLong_AsSsize_t(n) : 0;
        PyObject *more = PyErr_Occurred() ? NULL : PyLong_FromSsize_t(so_far + 1);
        if (more == NULL || PyDict_SetItem(self->counts, channel, more) < 0) {
            Py_XDECREF(more);
            Py_DECREF(channel);
            return NULL;
        }
        Py_DECREF(more);
    }
    Py_DECREF(channel);
    return Updates_commit(self, recv_ts);
}

static PyObject *Updates_get_taken(UpdatesObject *self, void *c) {
    return Py_NewRef(self->taken != NULL ? self->taken : Py_None);
}

static PyGetSetDef Updates_getset[] = {
    {"taken", (getter)Updates_get_taken, NULL, "the channel parse() took last ('book', 'trade'), or None", NULL},
    {NULL}
};

static int Updates_init(UpdatesObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"venue", "event_type", "books", "seen", "last_ts", "strict_times", "trade_type",
                            "precisions", "trade_expected", "trade_seen", "trade_last_ts", "digests", "counts",
                            "venue_delay", NULL};
    PyObject *venue, *event_type, *books, *seen, *last_ts;
    PyObject *trade_type = NULL, *precisions = NULL, *trade_expected = Py_None, *trade_seen = NULL,
             *trade_last_ts = NULL, *digests = Py_None, *counts = Py_None, *venue_delay = Py_None;
    int strict_times = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "UOO!O!O!|pOO!OO!O!OOO", names, &venue, &event_type, &PyDict_Type,
                                     &books, &PyDict_Type, &seen, &PyDict_Type, &last_ts, &strict_times,
                                     &trade_type, &PyDict_Type, &precisions, &trade_expected, &PyDict_Type,
                                     &trade_seen, &PyDict_Type, &trade_last_ts, &digests, &counts, &venue_delay))
        return -1;
    if ((digests != Py_None && !Py_IS_TYPE(digests, &DigestsType)) || (counts != Py_None && !PyDict_Check(counts))) {
        PyErr_SetString(PyExc_TypeError, "digests must be a Digests or None, counts a dict or None");
        return -1;
    }
    if (digests != Py_None && ((DigestsObject *)digests)->table == NULL) {
        PyErr_SetString(PyExc_ValueError, "digests must be initialised");
        return -1;
    }
    Py_XSETREF(self->digests, digests != Py_None ? (DigestsObject *)Py_NewRef(digests) : NULL);
    Py_XSETREF(self->counts, counts != Py_None ? Py_NewRef(counts) : NULL);
    if (venue_delay != Py_None && !PyCallable_Check(venue_delay)) {
        PyErr_SetString(PyExc_TypeError, "venue_delay must be callable or None");
        return -1;
    }
    Py_XSETREF(self->venue_delay, venue_delay != Py_None ? Py_NewRef(venue_delay) : NULL);
    if (trade_type != NULL && (precisions == NULL || trade_seen == NULL || trade_last_ts == NULL ||
                               (trade_expected != Py_None && !PyAnySet_Check(trade_expected)))) {
        PyErr_SetString(PyExc_TypeError, "trades need precisions, trade_seen, trade_last_ts and a set or None");
        return -1;
    }
    Py_XSETREF(self->trade_type, Py_XNewRef(trade_type));
    Py_XSETREF(self->precisions, Py_XNewRef(precisions));
    Py_XSETREF(self->trade_expected, Py_NewRef(trade_expected));
    Py_XSETREF(self->trade_seen, Py_XNewRef(trade_seen));
    Py_XSETREF(self->trade_last_ts, Py_XNewRef(trade_last_ts));
    self->trades_timed = 0;
    known_clear(self); /* another map of precisions, perhaps */
    self->pending = 0;
    static const char *trade_fields[10] = {"venue", "recv_ts", "symbol", "trade_id", "side", "price", "qty",
                                           "ord_type", "ts", "snapshot"};
    PyObject *trade_kwnames = PyTuple_New(10);
    if (trade_kwnames == NULL) return -1;
    for (int i = 0; i < 10; i++) {
        PyObject *name = PyUnicode_InternFromString(trade_fields[i]);
        if (name == NULL) { Py_DECREF(trade_kwnames); return -1; }
        PyTuple_SET_ITEM(trade_kwnames, i, name);
    }
    Py_XSETREF(self->trade_kwnames, trade_kwnames);
    Py_XSETREF(self->venue, Py_NewRef(venue));
    Py_XSETREF(self->event_type, Py_NewRef(event_type));
    Py_XSETREF(self->books, PyDict_Copy(books)); /* its own: `fixed` borrows from it, so no one may change it */
    if (self->books == NULL) return -1;
    books = self->books;
    Py_XSETREF(self->seen, Py_NewRef(seen));
    PyMem_Free(self->fixed);
    self->nfixed = 0;
    self->fixed = PyMem_Calloc((size_t)PyDict_GET_SIZE(books) + 1, sizeof(*self->fixed));
    if (self->fixed == NULL) { PyErr_NoMemory(); return -1; }
    PyObject *key, *value;
    Py_ssize_t pos = 0;
    while (PyDict_Next(books, &pos, &key, &value)) {
        if (!Py_IS_TYPE(value, &BookType) || !PyUnicode_Check(key)) {
            PyErr_SetString(PyExc_TypeError, "books must map symbols to compiled books");
            return -1;
        }
        const char *text = PyUnicode_AsUTF8AndSize(key, &self->fixed[self->nfixed].len);
        if (text == NULL) return -1;
        self->fixed[self->nfixed].text = text; /* owned by the key, which `books` keeps */
        self->fixed[self->nfixed++].book = (BookObject *)value;
    }
    Py_XSETREF(self->last_ts, Py_NewRef(last_ts));
    self->strict_times = strict_times;
    self->timed = 0;
    /* Interned, as the event type's own field names are: they match by identity, not by text. */
    static const char *fields[8] = {"venue", "recv_ts", "symbol", "bids", "asks", "checksum", "snapshot", "ts"};
    PyObject *kwnames = PyTuple_New(8);
    if (kwnames == NULL) return -1;
    for (int i = 0; i < 8; i++) {
        PyObject *name = PyUnicode_InternFromString(fields[i]);
        if (name == NULL) { Py_DECREF(kwnames); return -1; }
        PyTuple_SET_ITEM(kwnames, i, name);
    }
    Py_XSETREF(self->kwnames, kwnames);
    Py_XSETREF(self->ts, Py_NewRef(Py_None));
    Py_CLEAR(self->book);
    return 0;
}

static void Updates_dealloc(UpdatesObject *self) {
    Py_XDECREF(self->taken);
    Py_XDECREF(self->digests);
    Py_XDECREF(self->counts);
    Py_XDECREF(self->venue_delay);
    Py_XDECREF(self->venue);
    Py_XDECREF(self->event_type);
    Py_XDECREF(self->books);
    Py_XDECREF(self->seen);
    Py_XDECREF(self->last_ts);
    Py_XDECREF(self->kwnames);
    Py_XDECREF(self->ts);
    Py_XDECREF(self->book);
    trades_reset(self);
    PyMem_Free(self->trades);
    known_clear(self);
    Py_XDECREF(self->trade_type);
    Py_XDECREF(self->trade_kwnames);
    Py_XDECREF(self->precisions);
    Py_XDECREF(self->trade_expected);
    Py_XDECREF(self->trade_seen);
    Py_XDECREF(self->trade_last_ts);
    PyMem_Free(self->levels);
    PyMem_Free(self->fixed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* -- the session's way in ------------------------------------------------------------------------ */

/* An attribute the receiver reads or writes for every frame: where it is a plain slot (__slots__) of the
 * object's type, read and written in place, as the slot's own descriptor does (~20 instructions instead
 * of ~250 through the generic attribute machinery); otherwise, or once the object's type is not the one
 * bound or that type has changed since (its version tag), through that machinery. */
typedef struct {
    PyObject *obj; /* borrowed: the receiver holds it */
    PyObject *name;
    PyTypeObject *type;    /* the object's type when bound */
    unsigned int version;  /* its version tag then: another means a changed class */
    Py_ssize_t offset;     /* of the slot, or -1 */
} Attr;

static void attr_bind(Attr *a, PyObject *obj, PyObject *name) {
    PyTypeObject *type = Py_TYPE(obj);
    a->obj = obj;
    a->name = name;
    a->type = type;
    a->offset = -1;
    if (type->tp_getattro != PyObject_GenericGetAttr || type->tp_setattro != PyObject_GenericSetAttr) return;
    PyObject *descr = _PyType_Lookup(type, name); /* borrowed; the whole MRO, as attribute access */
    a->version = type->tp_version_tag; /* valid after a lookup, for a type that has one (else 0) */
    if (a->version != 0 && descr != NULL && Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *m = ((PyMemberDescrObject *)descr)->d_member;
        if (m->type == T_OBJECT_EX && !(m->flags & READONLY) && PyObject_TypeCheck(obj, PyDescr_TYPE(descr)))
            a->offset = m->offset;
    }
}

static inline int attr_direct(Attr *a) {
    return a->offset >= 0 && Py_TYPE(a->obj) == a->type && a->type->tp_version_tag == a->version;
}

static inline PyObject *attr_get(Attr *a) {
    if (!attr_direct(a)) return PyObject_GetAttr(a->obj, a->name);
    PyObject *value = *(PyObject **)((char *)a->obj + a->offset);
    if (value == NULL) {
        PyErr_SetObject(PyExc_AttributeError, a->name);
        return NULL;
    }
    return Py_NewRef(value);
}

static inline int attr_set(Attr *a, PyObject *value) {
    if (!attr_direct(a)) return PyObject_SetAttr(a->obj, a->name, value);
    PyObject **slot = (PyObject **)((char *)a->obj + a->offset);
    PyObject *old = *slot;
    *slot = Py_NewRef(value);
    Py_XDECREF(old);
    return 0;
}

/* What a session does with every frame, compiled: counted in the endpoint's statistics (one in
 * `sample_every` timed into its processing-time histogram), the usual update taken (take()), the
 * liveness told, the verified Book handed to the outlet's market route and a frame's usual trades to
 * `trade_route`; everything else to the session's own Python (`general` for a frame not taken,
 * `duplicate`, `trades`, `books` for what take() hands back, `failed` for an error after a frame was
 * taken).  The same steps as FeedSession._received in Python, without its interpreted frames. */
typedef struct {
    PyObject_HEAD
    UpdatesObject *updates;
    PyObject *stats, *liveness, *outlet;
    PyObject *record, *general, *duplicate, *trades, *books, *failed;
    PyObject *trade_route; /* one frame's usual trades */
    Attr received, last_data, market; /* stats.received, liveness.last_data, outlet.market */
    unsigned long sample_mask;
} ReceiverObject;

static PyTypeObject ReceiverType;
static PyObject *s_received, *s_last_data, *s_record; /* and s_market, the ord_type literal */

static PyObject *Updates_take(UpdatesObject *self, PyObject *const *args, Py_ssize_t nargs);

/* An error after the frame was taken (on `channel`): reported through `failed(channel, error, recv_ts)`,
 * as the session's `except Exception` does; anything else (KeyboardInterrupt) goes on up. */
static PyObject *receiver_failed(ReceiverObject *self, PyObject *channel, PyObject *recv_ts) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
    PyObject *type, *value, *tb;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL) PyException_SetTraceback(value, tb);
    Py_XDECREF(type);
    Py_XDECREF(tb);
    if (value == NULL) value = Py_NewRef(Py_None);
    if (attr_set(&self->last_data, recv_ts) < 0) { Py_DECREF(value); return NULL; }
    PyObject *args[3] = {channel, value, recv_ts};
    PyObject *done = PyObject_Vectorcall(self->failed, args, 3, NULL);
    Py_DECREF(value);
    return done;
}

static int all_of_type(PyObject *list, PyTypeObject *type) {
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(list); i++)
        if (Py_TYPE(PyList_GET_ITEM(list, i)) != type) return 0;
    return type != NULL;
}

static PyObject *receiver_frame(ReceiverObject *self, PyObject *payload, PyObject *recv_ts) {
    PyObject *args[2] = {payload, recv_ts};
    PyObject *result = Updates_take(self->updates, args, 2);
    if (result == NULL) {
        PyObject *taken = self->updates->taken;
        if (taken != NULL && taken != Py_None) return receiver_failed(self, taken, recv_ts);
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return NULL;
        PyErr_Clear(); /* failed before taking it (not bytes): the general path has the frame */
        return PyObject_Vectorcall(self->general, args, 2, NULL);
    }
    if (result == Py_None) {
        Py_DECREF(result);
        return PyObject_Vectorcall(self->general, args, 2, NULL);
    }
    /* The channel taken, held: a route may feed the session another frame before it returns. */
    PyObject *channel = Py_NewRef(self->updates->taken != NULL ? self->updates->taken : Py_None);
    PyObject *done;
    if (attr_set(&self->last_data, recv_ts) < 0) {
        done = NULL;
    } else if (Py_TYPE(result) == (PyTypeObject *)self->updates->event_type) {
        /* The usual book update: verified, in time, not crossed.  The route is read each time: the
         * selector changes it as the leader changes. */
        PyObject *market = attr_get(&self->market);
        done = market != NULL ? PyObject_Vectorcall(market, &result, 1, NULL) : NULL;
        Py_XDECREF(market);
    } else if (result == Py_False) {
        done = PyObject_Vectorcall(self->duplicate, NULL, 0, NULL);
    } else if (PyList_CheckExact(result) && all_of_type(result, (PyTypeObject *)self->updates->trade_type)) {
        done = PyObject_Vectorcall(self->trade_route, &result, 1, NULL); /* the usual trades */
    } else {
        PyObject *handed[2] = {result, recv_ts};
        done = PyObject_Vectorcall(PyList_CheckExact(result) ? self->trades : self->books, handed, 2, NULL);
    }
    Py_DECREF(result);
    if (done == NULL) done = receiver_failed(self, channel, recv_ts);
    Py_DECREF(channel);
    return done;
}

static inline double monotonic_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t); /* what time.perf_counter reads on Linux */
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static PyObject *Receiver_receive(ReceiverObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "receive(payload, recv_ts)");
        return NULL;
    }
    if (self->updates == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "Receiver not initialised");
        return NULL;
    }
    PyObject *n = attr_get(&self->received);
    if (n == NULL) return NULL;
    size_t received = PyLong_AsSize_t(n);
    Py_DECREF(n);
    if (received == (size_t)-1 && PyErr_Occurred()) return NULL;
    received++;
    n = PyLong_FromSize_t(received);
    if (n == NULL || attr_set(&self->received, n) < 0) { Py_XDECREF(n); return NULL; }
    Py_DECREF(n);
    if (received & self->sample_mask) return receiver_frame(self, args[0], args[1]);
    double started = monotonic_seconds();
    PyObject *done = receiver_frame(self, args[0], args[1]);
    if (done == NULL) return NULL;
    PyObject *seconds = PyFloat_FromDouble(monotonic_seconds() - started);
    PyObject *recorded = seconds != NULL ? PyObject_Vectorcall(self->record, &seconds, 1, NULL) : NULL;
    Py_XDECREF(seconds);
    if (recorded == NULL) { Py_DECREF(done); return NULL; }
    Py_DECREF(recorded);
    return done;
}

static int Receiver_traverse(ReceiverObject *self, visitproc visit, void *arg) {
    Py_VISIT(self->updates);
    Py_VISIT(self->stats);
    Py_VISIT(self->liveness);
    Py_VISIT(self->outlet);
    Py_VISIT(self->record);
    Py_VISIT(self->general);
    Py_VISIT(self->duplicate);
    Py_VISIT(self->trades);
    Py_VISIT(self->books);
    Py_VISIT(self->failed);
    Py_VISIT(self->trade_route);
    return 0;
}

static int Receiver_clear(ReceiverObject *self) {
    Py_CLEAR(self->updates);
    Py_CLEAR(self->stats);
    Py_CLEAR(self->liveness);
    Py_CLEAR(self->outlet);
    Py_CLEAR(self->record);
    Py_CLEAR(self->general);
    Py_CLEAR(self->duplicate);
    Py_CLEAR(self->trades);
    Py_CLEAR(self->books);
    Py_CLEAR(self->failed);
    Py_CLEAR(self->trade_route);
    return 0;
}

static void Receiver_dealloc(ReceiverObject *self) {
    PyObject_GC_UnTrack(self);
    Receiver_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *Updates_receiver(UpdatesObject *self, PyObject *args, PyObject *kw) {
    static char *names[] = {"stats", "liveness", "outlet", "trade_route", "general", "duplicate", "trades", "books",
                            "failed", "sample_every", NULL};
    PyObject *stats, *liveness, *outlet, *trade_route, *general, *duplicate, *trades, *books, *failed;
    unsigned long sample_every;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOOOOk", names, &stats, &liveness, &outlet, &trade_route,
                                     &general, &duplicate, &trades, &books, &failed, &sample_every))
        return NULL;
    if (sample_every == 0 || (sample_every & (sample_every - 1)) != 0) {
        PyErr_SetString(PyExc_ValueError, "sample_every must be a power of two");
        return NULL;
    }
    if (!PyCallable_Check(trade_route) || !PyCallable_Check(general) || !PyCallable_Check(duplicate) ||
        !PyCallable_Check(trades) ||
        !PyCallable_Check(books) || !PyCallable_Check(failed)) {
        PyErr_SetString(PyExc_TypeError, "trade_route, general, duplicate, trades, books and failed must be callable");
        return NULL;
    }
    PyObject *record = PyObject_GetAttr(stats, s_record);
    if (record == NULL) return NULL;
    ReceiverObject *r = PyObject_GC_New(ReceiverObject, &ReceiverType);
    if (r == NULL) { Py_DECREF(record); return NULL; }
    r->trade_route = Py_NewRef(trade_route);
    r->updates = (UpdatesObject *)Py_NewRef(self);
    r->stats = Py_NewRef(stats);
    r->liveness = Py_NewRef(liveness);
    r->outlet = Py_NewRef(outlet);
    r->record = record;
    r->general = Py_NewRef(general);
    r->duplicate = Py_NewRef(duplicate);
    r->trades = Py_NewRef(trades);
    r->books = Py_NewRef(books);
    r->failed = Py_NewRef(failed);
    r->sample_mask = sample_every - 1;
    attr_bind(&r->received, r->stats, s_received);
    attr_bind(&r->last_data, r->liveness, s_last_data);
    attr_bind(&r->market, r->outlet, s_market);
    PyObject_GC_Track(r);
    return (PyObject *)r;
}

static PyMethodDef Receiver_methods[] = {
    {"receive", (PyCFunction)(void (*)(void))Receiver_receive, METH_FASTCALL,
     "receive(payload, recv_ts): one frame's whole way in the session (FeedSession.frame_received)."},
    {NULL}
};

static PyTypeObject ReceiverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gfws_book.Receiver",
    .tp_doc = "A session's way in for every frame (made by Updates.receiver).",
    .tp_basicsize = sizeof(ReceiverObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_dealloc = (destructor)Receiver_dealloc,
    .tp_traverse = (traverseproc)Receiver_traverse,
    .tp_clear = (inquiry)Receiver_clear,
    .tp_methods = Receiver_methods,
};

static PyMethodDef Updates_methods[] = {
    {"parse", (PyCFunction)Updates_parse, METH_O,
     "'book' for the usual update of a live book, 'trade' for the usual trade update (with a trade_type), "
     "parsed and kept for commit(); None: not such a frame (nothing changed, the general path takes it)."},
    {"commit", (PyCFunction)Updates_commit, METH_O,
     "Apply the parsed update (its receipt the argument) and note the symbol seen.  Returns the verified "
     "Book event when all is usual: its venue time not before the last (which it becomes), not sampled, "
     "not crossed.  Otherwise (event or None if the checksums differ, symbol, ts, venue checksum, "
     "computed, sampled) for the general checks.  For trades: a list, each a Trade event or (event, "
     "sampled) for the general time check."},
    {"take", (PyCFunction)(void (*)(void))Updates_take, METH_FASTCALL,
     "take(payload, recv_ts): parse(); then, for a frame it took, the resend check in `digests` (False: a "
     "duplicate, counted there), the channel counted in `counts`, and commit()'s result.  None: not taken."},
    {"receiver", (PyCFunction)(void (*)(void))Updates_receiver, METH_VARARGS | METH_KEYWORDS,
     "receiver(stats, liveness, outlet, trade_route, general, duplicate, trades, books, failed, sample_every): a "
     "session's "
     "way in for every frame, its receive() the session's frame_received."},
    {NULL}
};

static PyTypeObject UpdatesType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_gfws_book.Updates",
    .tp_doc = "The venue's usual book update frame, parsed and applied in one pass.",
    .tp_basicsize = sizeof(UpdatesObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Updates_init,
    .tp_dealloc = (destructor)Updates_dealloc,
    .tp_methods = Updates_methods,
    .tp_getset = Updates_getset,
};

static PyMethodDef module_methods[] = {
    {"crc32", (PyCFunction)module_crc32, METH_O, "zlib's CRC32 of bytes, as books compute it (a test's)."},
    {"venue_seconds", (PyCFunction)module_venue_seconds, METH_O,
     "POSIX seconds of the venue's usual time (as gfws.market.context.venue_seconds), else None."},
    {NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_gfws_book", "Kraken v2 books in ticks and lots (compiled).", -1, module_methods,
};

PyMODINIT_FUNC PyInit__gfws_book(void) {
    crc_init();
#ifdef CRC_FOLDING
    __builtin_cpu_init();
    crc_folds = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
#endif
    PyObject *decimal = PyImport_ImportModule("decimal");
    if (decimal == NULL) return NULL;
    Decimal = PyObject_GetAttrString(decimal, "Decimal");
    Py_DECREF(decimal);
    if (Decimal == NULL) return NULL;
    int direct = decimal_check();
    if (direct < 0) return NULL;
    direct_decimals = direct;
    if ((s_book = PyUnicode_InternFromString("book")) == NULL || (s_trade = PyUnicode_InternFromString("trade")) == NULL ||
        (s_buy = PyUnicode_InternFromString("buy")) == NULL || (s_sell = PyUnicode_InternFromString("sell")) == NULL ||
        (s_limit = PyUnicode_InternFromString("limit")) == NULL ||
        (s_market = PyUnicode_InternFromString("market")) == NULL ||
        (s_price_decimals = PyUnicode_InternFromString("price_decimals")) == NULL ||
        (s_qty_decimals = PyUnicode_InternFromString("qty_decimals")) == NULL ||
        (s_received = PyUnicode_InternFromString("received")) == NULL ||
        (s_last_data = PyUnicode_InternFromString("last_data")) == NULL ||
        (s_record = PyUnicode_InternFromString("record")) == NULL)
        return NULL;
    if (PyType_Ready(&BookType) < 0 || PyType_Ready(&UpdatesType) < 0 || PyType_Ready(&DigestsType) < 0 ||
        PyType_Ready(&ReceiverType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Book", (PyObject *)&BookType) < 0 ||
        PyModule_AddObjectRef(m, "Updates", (PyObject *)&UpdatesType) < 0 ||
        PyModule_AddObjectRef(m, "Digests", (PyObject *)&DigestsType) < 0 ||
        PyModule_AddObjectRef(m, "DIRECT_DECIMALS", direct_decimals ? Py_True : Py_False) < 0 ||
#ifdef CRC_FOLDING
        PyModule_AddObjectRef(m, "CRC_FOLDING", crc_folds ? Py_True : Py_False) < 0) {
#else
        PyModule_AddObjectRef(m, "CRC_FOLDING", Py_False) < 0) {
#endif
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
