/*
 * comm_json.h: reading and writing the JSON of comm messages in C, so a
 * plugin needs no scanner of its own. Header only (every function is
 * `static inline`), C11 and C++, no allocation, nothing but the C standard
 * library. Include it beside comm_plugin.h.
 *
 * Reading works on the text the host hands a plugin (`message->data`,
 * `message->metadata`: JSON the host has already validated), as borrowed
 * slices: nothing is copied until you ask for a string's decoded text. The
 * readers are `commhost_json_find`, then `commhost_json_string_value`,
 * `_int64_value`, `_double_value` and `_bool_value` on what it found.
 *
 *   commhost_str value;
 *   if (commhost_json_find(message->data, "state.value", &value) == COMMHOST_OK) {
 *       int64_t n;
 *       if (commhost_json_int64_value(value, &n) != COMMHOST_OK) { ... not an integer, or out of range ... }
 *   }
 *
 * Writing appends to a buffer you own, escaping strings as RFC 8259 asks:
 *
 *   char text[256];
 *   commhost_json_writer w = commhost_json_writer_init(text, sizeof text);
 *   commhost_json_begin_object(&w);
 *   commhost_json_key(&w, "method");  commhost_json_string(&w, "update", 6);
 *   commhost_json_key(&w, "value");   commhost_json_int64(&w, 42);
 *   commhost_json_end_object(&w);
 *   commhost_str out;
 *   if (commhost_json_finish(&w, &out) != COMMHOST_OK) { ... the buffer was too small ... }
 *
 * Statuses are comm_plugin.h's: COMMHOST_OK; COMMHOST_EINVAL (no such
 * member, or a NULL argument); COMMHOST_EJSON (the text is not what was
 * asked for: not JSON, not a string, not an integer, …); COMMHOST_ELIMIT (a
 * number out of range, a buffer too small, nesting past
 * COMMHOST_JSON_MAX_DEPTH).
 */
#ifndef COMMHOST_COMM_JSON_H
#define COMMHOST_COMM_JSON_H

#include "comm_plugin.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The deepest nesting the reader follows. */
#define COMMHOST_JSON_MAX_DEPTH 256

/* ---- reading ------------------------------------------------------------ */

/* Internal: skips spaces from *i. */
static inline void commhost_json_skip_space_(const char *p, size_t n, size_t *i) {
    while (*i < n && (p[*i] == ' ' || p[*i] == '\t' || p[*i] == '\n' || p[*i] == '\r')) (*i)++;
}

/* Internal: skips one string starting at the quote at *i. */
static inline commhost_status commhost_json_skip_string_(const char *p, size_t n, size_t *i) {
    if (*i >= n || p[*i] != '"') return COMMHOST_EJSON;
    for ((*i)++; *i < n; (*i)++) {
        if (p[*i] == '\\') { (*i)++; continue; }
        if (p[*i] == '"') { (*i)++; return COMMHOST_OK; }
    }
    return COMMHOST_EJSON;
}

/* Internal: skips one value starting at *i (after spaces). */
static inline commhost_status commhost_json_skip_value_(const char *p, size_t n, size_t *i, int depth) {
    commhost_json_skip_space_(p, n, i);
    if (*i >= n) return COMMHOST_EJSON;
    char c = p[*i];
    if (c == '"') return commhost_json_skip_string_(p, n, i);
    if (c == '{' || c == '[') {
        char close = c == '{' ? '}' : ']';
        if (depth >= COMMHOST_JSON_MAX_DEPTH) return COMMHOST_ELIMIT;
        (*i)++;
        commhost_json_skip_space_(p, n, i);
        if (*i < n && p[*i] == close) { (*i)++; return COMMHOST_OK; }
        for (;;) {
            if (c == '{') {
                commhost_json_skip_space_(p, n, i);
                commhost_status s = commhost_json_skip_string_(p, n, i);
                if (s != COMMHOST_OK) return s;
                commhost_json_skip_space_(p, n, i);
                if (*i >= n || p[*i] != ':') return COMMHOST_EJSON;
                (*i)++;
            }
            commhost_status s = commhost_json_skip_value_(p, n, i, depth + 1);
            if (s != COMMHOST_OK) return s;
            commhost_json_skip_space_(p, n, i);
            if (*i >= n) return COMMHOST_EJSON;
            if (p[*i] == ',') { (*i)++; continue; }
            if (p[*i] == close) { (*i)++; return COMMHOST_OK; }
            return COMMHOST_EJSON;
        }
    }
    /* A number or a literal: up to the next delimiter. */
    size_t start = *i;
    while (*i < n && p[*i] != ',' && p[*i] != '}' && p[*i] != ']' && p[*i] != ' ' && p[*i] != '\t'
           && p[*i] != '\n' && p[*i] != '\r') (*i)++;
    return *i > start ? COMMHOST_OK : COMMHOST_EJSON;
}

/* Internal: the value of `key` (length key_len) in the object `json`. */
static inline commhost_status commhost_json_member_(commhost_str json, const char *key, size_t key_len, commhost_str *out) {
    const char *p = json.ptr;
    size_t n = json.len, i = 0;
    commhost_json_skip_space_(p, n, &i);
    if (i >= n || p[i] != '{') return COMMHOST_EJSON;
    i++;
    commhost_json_skip_space_(p, n, &i);
    if (i < n && p[i] == '}') return COMMHOST_EINVAL;
    for (;;) {
        commhost_json_skip_space_(p, n, &i);
        size_t key_start = i + 1;
        commhost_status s = commhost_json_skip_string_(p, n, &i);
        if (s != COMMHOST_OK) return s;
        size_t key_end = i - 1;
        /* Keys are compared as written; a key with escapes never matches. */
        int match = key_end - key_start == key_len && memcmp(p + key_start, key, key_len) == 0;
        commhost_json_skip_space_(p, n, &i);
        if (i >= n || p[i] != ':') return COMMHOST_EJSON;
        i++;
        commhost_json_skip_space_(p, n, &i);
        size_t value_start = i;
        s = commhost_json_skip_value_(p, n, &i, 1);
        if (s != COMMHOST_OK) return s;
        if (match) {
            out->ptr = p + value_start;
            out->len = i - value_start;
            return COMMHOST_OK;
        }
        commhost_json_skip_space_(p, n, &i);
        if (i < n && p[i] == ',') { i++; continue; }
        if (i < n && p[i] == '}') return COMMHOST_EINVAL;
        return COMMHOST_EJSON;
    }
}

/* Internal: element `index` of the array `json`. */
static inline commhost_status commhost_json_element_(commhost_str json, size_t index, commhost_str *out) {
    const char *p = json.ptr;
    size_t n = json.len, i = 0, k = 0;
    commhost_json_skip_space_(p, n, &i);
    if (i >= n || p[i] != '[') return COMMHOST_EJSON;
    i++;
    commhost_json_skip_space_(p, n, &i);
    if (i < n && p[i] == ']') return COMMHOST_EINVAL;
    for (;; k++) {
        commhost_json_skip_space_(p, n, &i);
        size_t value_start = i;
        commhost_status s = commhost_json_skip_value_(p, n, &i, 1);
        if (s != COMMHOST_OK) return s;
        if (k == index) {
            out->ptr = p + value_start;
            out->len = i - value_start;
            return COMMHOST_OK;
        }
        commhost_json_skip_space_(p, n, &i);
        if (i < n && p[i] == ',') { i++; continue; }
        if (i < n && p[i] == ']') return COMMHOST_EINVAL;
        return COMMHOST_EJSON;
    }
}

/*
 * Finds the value at `path` in `json` and sets *out to its text (a slice
 * of `json`). `path` is member names separated by '.', an all-digit part
 * indexing an array: "state.value", "children.0". An empty path is the
 * whole value. COMMHOST_EINVAL when a member or element is missing (or an
 * argument is NULL), COMMHOST_EJSON when the text on the way is not an
 * object or array where the path needs one.
 */
static inline commhost_status commhost_json_find(commhost_str json, const char *path, commhost_str *out) {
    if (!path || !out || (!json.ptr && json.len)) return COMMHOST_EINVAL;
    commhost_str current = json;
    while (*path) {
        const char *end = strchr(path, '.');
        size_t len = end ? (size_t)(end - path) : strlen(path);
        int digits = len > 0;
        for (size_t k = 0; k < len; k++) if (path[k] < '0' || path[k] > '9') digits = 0;
        size_t first = 0;
        while (first < current.len && (current.ptr[first] == ' ' || current.ptr[first] == '\t'
                                       || current.ptr[first] == '\n' || current.ptr[first] == '\r')) first++;
        commhost_status s;
        if (digits && first < current.len && current.ptr[first] == '[') {
            size_t index = 0;
            for (size_t k = 0; k < len; k++) {
                if (index > ((size_t)-1 - 9) / 10) return COMMHOST_EINVAL;
                index = index * 10 + (size_t)(path[k] - '0');
            }
            s = commhost_json_element_(current, index, &current);
        } else {
            s = commhost_json_member_(current, path, len, &current);
        }
        if (s != COMMHOST_OK) return s;
        path += len;
        if (*path == '.') path++;
    }
    size_t i = 0;
    commhost_json_skip_space_(current.ptr, current.len, &i);
    out->ptr = current.ptr + i;
    out->len = current.len - i;
    while (out->len > 0 && (out->ptr[out->len - 1] == ' ' || out->ptr[out->len - 1] == '\n'
                            || out->ptr[out->len - 1] == '\t' || out->ptr[out->len - 1] == '\r')) out->len--;
    return COMMHOST_OK;
}

/* Internal: four hex digits at p. */
static inline int commhost_json_hex4_(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int k = 0; k < 4; k++) {
        char c = p[k];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (unsigned)(c - 'A' + 10);
        else return 0;
    }
    *out = v;
    return 1;
}

/*
 * Decodes the JSON string `value` (quotes included, as commhost_json_find
 * gives it) into `buf` as UTF-8, escapes resolved (\uXXXX surrogate pairs
 * too), and NUL-terminates it; *out_len (optional) gets its length without
 * the NUL. COMMHOST_EJSON when `value` is not a string, COMMHOST_ELIMIT when
 * `buf` (of `cap` bytes) is too small.
 */
static inline commhost_status commhost_json_string_value(commhost_str value, char *buf, size_t cap, size_t *out_len) {
    if (!buf || cap == 0) return COMMHOST_EINVAL;
    const char *p = value.ptr;
    size_t n = value.len, o = 0;
    if (n < 2 || p[0] != '"' || p[n - 1] != '"') return COMMHOST_EJSON;
    for (size_t i = 1; i + 1 < n; i++) {
        unsigned code = (unsigned char)p[i];
        if (code == '\\') {
            if (++i + 1 >= n) return COMMHOST_EJSON;
            switch (p[i]) {
            case '"': code = '"'; break;
            case '\\': code = '\\'; break;
            case '/': code = '/'; break;
            case 'b': code = '\b'; break;
            case 'f': code = '\f'; break;
            case 'n': code = '\n'; break;
            case 'r': code = '\r'; break;
            case 't': code = '\t'; break;
            case 'u': {
                if (i + 4 >= n || !commhost_json_hex4_(p + i + 1, &code)) return COMMHOST_EJSON;
                i += 4;
                if (code >= 0xD800 && code <= 0xDBFF) {
                    unsigned low;
                    if (i + 6 >= n || p[i + 1] != '\\' || p[i + 2] != 'u' || !commhost_json_hex4_(p + i + 3, &low)
                        || low < 0xDC00 || low > 0xDFFF) return COMMHOST_EJSON;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                    i += 6;
                } else if (code >= 0xDC00 && code <= 0xDFFF) {
                    return COMMHOST_EJSON;
                }
                /* Encode as UTF-8. */
                char utf8[4];
                size_t k;
                if (code < 0x80) { utf8[0] = (char)code; k = 1; }
                else if (code < 0x800) { utf8[0] = (char)(0xC0 | (code >> 6)); utf8[1] = (char)(0x80 | (code & 0x3F)); k = 2; }
                else if (code < 0x10000) {
                    utf8[0] = (char)(0xE0 | (code >> 12)); utf8[1] = (char)(0x80 | ((code >> 6) & 0x3F));
                    utf8[2] = (char)(0x80 | (code & 0x3F)); k = 3;
                } else {
                    utf8[0] = (char)(0xF0 | (code >> 18)); utf8[1] = (char)(0x80 | ((code >> 12) & 0x3F));
                    utf8[2] = (char)(0x80 | ((code >> 6) & 0x3F)); utf8[3] = (char)(0x80 | (code & 0x3F)); k = 4;
                }
                if (o + k >= cap) return COMMHOST_ELIMIT;
                memcpy(buf + o, utf8, k);
                o += k;
                continue;
            }
            default: return COMMHOST_EJSON;
            }
        } else if (code == '"') {
            return COMMHOST_EJSON;
        }
        if (o + 1 >= cap) return COMMHOST_ELIMIT;
        buf[o++] = (char)code;
    }
    buf[o] = '\0';
    if (out_len) *out_len = o;
    return COMMHOST_OK;
}

/*
 * Reads the JSON integer `value`: COMMHOST_EJSON when it is not a number
 * without fraction or exponent, COMMHOST_ELIMIT when it does not fit int64_t.
 */
static inline commhost_status commhost_json_int64_value(commhost_str value, int64_t *out) {
    if (!out || value.len == 0 || !value.ptr) return value.len == 0 ? COMMHOST_EJSON : COMMHOST_EINVAL;
    const char *p = value.ptr;
    size_t n = value.len, i = 0;
    int negative = p[0] == '-';
    if (negative) i++;
    if (i >= n || p[i] < '0' || p[i] > '9' || (p[i] == '0' && i + 1 < n)) return COMMHOST_EJSON;
    uint64_t limit = negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
    int overflow = 0;
    for (; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') return COMMHOST_EJSON;
        unsigned digit = (unsigned)(p[i] - '0');
        if (v > (limit - digit) / 10) overflow = 1;
        else v = v * 10 + digit;
    }
    if (overflow) return COMMHOST_ELIMIT;
    *out = negative ? (v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v) : (int64_t)v;
    return COMMHOST_OK;
}

/*
 * Reads the JSON number `value` as a double: COMMHOST_EJSON when it is not a
 * JSON number, COMMHOST_ELIMIT when its magnitude is past DBL_MAX.
 */
static inline commhost_status commhost_json_double_value(commhost_str value, double *out) {
    if (!out || !value.ptr || value.len == 0 || value.len > 350) return value.len > 350 ? COMMHOST_ELIMIT : COMMHOST_EJSON;
    const char *p = value.ptr;
    size_t n = value.len, i = 0;
    /* The grammar of RFC 8259 first: strtod alone would take "0x10", "inf", " 1". */
    if (p[i] == '-') i++;
    if (i >= n) return COMMHOST_EJSON;
    if (p[i] == '0') i++;
    else if (p[i] >= '1' && p[i] <= '9') { while (i < n && p[i] >= '0' && p[i] <= '9') i++; }
    else return COMMHOST_EJSON;
    if (i < n && p[i] == '.') {
        i++;
        if (i >= n || p[i] < '0' || p[i] > '9') return COMMHOST_EJSON;
        while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    }
    if (i < n && (p[i] == 'e' || p[i] == 'E')) {
        i++;
        if (i < n && (p[i] == '+' || p[i] == '-')) i++;
        if (i >= n || p[i] < '0' || p[i] > '9') return COMMHOST_EJSON;
        while (i < n && p[i] >= '0' && p[i] <= '9') i++;
    }
    if (i != n) return COMMHOST_EJSON;
    char text[352];
    memcpy(text, p, n);
    text[n] = '\0';
    double v = strtod(text, NULL);
    if (isinf(v)) return COMMHOST_ELIMIT;
    *out = v;
    return COMMHOST_OK;
}

/* Reads the JSON literal `true` or `false`: COMMHOST_EJSON for anything else. */
static inline commhost_status commhost_json_bool_value(commhost_str value, bool *out) {
    if (!out) return COMMHOST_EINVAL;
    if (value.len == 4 && memcmp(value.ptr, "true", 4) == 0) { *out = true; return COMMHOST_OK; }
    if (value.len == 5 && memcmp(value.ptr, "false", 5) == 0) { *out = false; return COMMHOST_OK; }
    return COMMHOST_EJSON;
}

/* ---- writing ------------------------------------------------------------ */

/* A JSON text being written into a buffer the caller owns. */
typedef struct commhost_json_writer {
    char *buf;
    size_t cap;
    size_t len;
    /* Set once something did not fit (or was misused): commhost_json_finish reports it. */
    commhost_status status;
    /* Nesting: whether the current object or array already has a member. */
    int depth;
    bool has_member[COMMHOST_JSON_MAX_DEPTH];
    /* Set after a key: the next value needs no comma. */
    bool after_key;
} commhost_json_writer;

/* A writer into `buf` of `cap` bytes. */
static inline commhost_json_writer commhost_json_writer_init(char *buf, size_t cap) {
    commhost_json_writer w;
    memset(&w, 0, sizeof w);
    w.buf = buf;
    w.cap = cap;
    w.status = buf && cap ? COMMHOST_OK : COMMHOST_EINVAL;
    return w;
}

/* Internal: appends raw bytes. */
static inline void commhost_json_put_(commhost_json_writer *w, const char *p, size_t n) {
    if (w->status != COMMHOST_OK) return;
    if (n >= w->cap - w->len) { w->status = COMMHOST_ELIMIT; return; }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

/* Internal: the comma before a value or key, when one is due. */
static inline void commhost_json_separate_(commhost_json_writer *w) {
    if (w->after_key) { w->after_key = false; return; }
    if (w->depth > 0) {
        if (w->has_member[w->depth - 1]) commhost_json_put_(w, ",", 1);
        w->has_member[w->depth - 1] = true;
    }
}

/* Internal: a quoted, escaped string. */
static inline void commhost_json_quoted_(commhost_json_writer *w, const char *s, size_t n) {
    static const char hex[] = "0123456789abcdef";
    commhost_json_put_(w, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        commhost_json_put_(w, s + run, i - run);
        run = i + 1;
        char escape[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
        switch (c) {
        case '"': commhost_json_put_(w, "\\\"", 2); break;
        case '\\': commhost_json_put_(w, "\\\\", 2); break;
        case '\n': commhost_json_put_(w, "\\n", 2); break;
        case '\r': commhost_json_put_(w, "\\r", 2); break;
        case '\t': commhost_json_put_(w, "\\t", 2); break;
        default: commhost_json_put_(w, escape, 6); break;
        }
    }
    commhost_json_put_(w, s + run, n - run);
    commhost_json_put_(w, "\"", 1);
}

/* Internal: opens an object or array. */
static inline void commhost_json_open_(commhost_json_writer *w, char c) {
    commhost_json_separate_(w);
    if (w->depth >= COMMHOST_JSON_MAX_DEPTH) { w->status = COMMHOST_ELIMIT; return; }
    commhost_json_put_(w, &c, 1);
    w->has_member[w->depth++] = false;
}

/* Internal: closes an object or array. */
static inline void commhost_json_close_(commhost_json_writer *w, char c) {
    if (w->depth == 0) { if (w->status == COMMHOST_OK) w->status = COMMHOST_EINVAL; return; }
    w->depth--;
    commhost_json_put_(w, &c, 1);
}

static inline void commhost_json_begin_object(commhost_json_writer *w) { commhost_json_open_(w, '{'); }
static inline void commhost_json_end_object(commhost_json_writer *w) { commhost_json_close_(w, '}'); }
static inline void commhost_json_begin_array(commhost_json_writer *w) { commhost_json_open_(w, '['); }
static inline void commhost_json_end_array(commhost_json_writer *w) { commhost_json_close_(w, ']'); }

/* A member's key (a NUL-terminated string); its value comes next. */
static inline void commhost_json_key(commhost_json_writer *w, const char *key) {
    commhost_json_separate_(w);
    commhost_json_quoted_(w, key, strlen(key));
    commhost_json_put_(w, ":", 1);
    w->after_key = true;
}

/* A string value of `len` bytes of UTF-8, escaped as needed. */
static inline void commhost_json_string(commhost_json_writer *w, const char *s, size_t len) {
    commhost_json_separate_(w);
    commhost_json_quoted_(w, s, len);
}

static inline void commhost_json_int64(commhost_json_writer *w, int64_t v) {
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", (long long)v);
    commhost_json_separate_(w);
    commhost_json_put_(w, text, (size_t)n);
}

/* A double; NaN and infinities have no JSON form and set COMMHOST_EINVAL. */
static inline void commhost_json_double(commhost_json_writer *w, double v) {
    if (isnan(v) || isinf(v)) { if (w->status == COMMHOST_OK) w->status = COMMHOST_EINVAL; return; }
    char text[32];
    int n = snprintf(text, sizeof text, "%.17g", v);
    commhost_json_separate_(w);
    commhost_json_put_(w, text, (size_t)n);
}

static inline void commhost_json_bool(commhost_json_writer *w, bool v) {
    commhost_json_separate_(w);
    commhost_json_put_(w, v ? "true" : "false", v ? 4 : 5);
}

static inline void commhost_json_null(commhost_json_writer *w) {
    commhost_json_separate_(w);
    commhost_json_put_(w, "null", 4);
}

/* A value that is already JSON text (for example one commhost_json_find gave), copied as it is. */
static inline void commhost_json_raw(commhost_json_writer *w, commhost_str json) {
    commhost_json_separate_(w);
    commhost_json_put_(w, json.ptr, json.len);
}

/*
 * Ends the text: NUL-terminates it and sets *out to it. COMMHOST_ELIMIT when
 * something did not fit, COMMHOST_EINVAL when an object or array is still
 * open (or was closed once too often) or a NaN was written.
 */
static inline commhost_status commhost_json_finish(commhost_json_writer *w, commhost_str *out) {
    if (w->status == COMMHOST_OK && (w->depth != 0 || w->after_key)) w->status = COMMHOST_EINVAL;
    if (w->status != COMMHOST_OK) return w->status;
    w->buf[w->len] = '\0';
    out->ptr = w->buf;
    out->len = w->len;
    return COMMHOST_OK;
}

#ifdef __cplusplus
}
#endif

#endif /* COMMHOST_COMM_JSON_H */
