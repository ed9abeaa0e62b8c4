/*
 * commhost_base64.h — the vector bulk loops behind CommHost's Base64.
 *
 * Each function here does the long middle of an encode or a decode and stops
 * where its vector loop must: it returns how much of the input it took, and
 * the caller's scalar code (Sources/CommHost/Wire/Base64.swift) does the rest:
 * the tail, the padding, and every error. A decode loop stops at the start of
 * the first block holding a character outside the alphabet (`=` included), so
 * the scalar code meets that character itself and reports the same offset
 * and reason whatever path ran.
 *
 * A path is chosen per call, so tests run every path the CPU supports over
 * the same cases; commhost_base64_supported_paths says which those are.
 * Nothing here allocates, keeps state, or reads or writes outside the
 * ranges each function states.
 */
#ifndef COMMHOST_BASE64_H
#define COMMHOST_BASE64_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Which loop a call runs. Fixed-width, as every constant that crosses a boundary. */
typedef int32_t commhost_base64_path;
/** No vector loop: the functions take nothing and the caller's scalar code does it all. */
#define COMMHOST_BASE64_SCALAR 0
/** 16-byte loops (SSSE3 `pshufb`). */
#define COMMHOST_BASE64_SSSE3 1
/** 32-byte loops (AVX2), then the SSSE3 loops for what is left. */
#define COMMHOST_BASE64_AVX2 2

/**
 * The paths this CPU runs, as a bit mask: bit (1 << path) is set for each.
 * COMMHOST_BASE64_SCALAR is always there. [any-thread]
 */
uint32_t commhost_base64_supported_paths(void);

/**
 * Encodes a prefix of `src[0..<len]`: returns the count of bytes taken (a
 * multiple of 3), whose base64 text, count / 3 * 4 characters, is written at
 * `dst`. Reads only `src[0..<len]`; writes only those characters. A path the
 * CPU does not support (see commhost_base64_supported_paths) takes nothing.
 * [any-thread]
 */
size_t commhost_base64_encode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst);

/**
 * Decodes a prefix of the base64 text `src[0..<len]`, which the caller has
 * cut to whole 4-character groups without padding: returns the count of
 * characters taken (a multiple of 4, every one of them in the alphabet),
 * whose count / 4 * 3 bytes are written at `dst`. `dst` must have room for
 * len / 4 * 3 bytes, of which the bytes past the returned count's may be
 * overwritten with scratch values. Reads only `src[0..<len]`. A path the CPU
 * does not support takes nothing. [any-thread]
 */
size_t commhost_base64_decode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst);

#ifdef __cplusplus
}
#endif

#endif
