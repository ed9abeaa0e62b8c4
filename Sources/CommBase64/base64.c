/*
 * The vector loops of commhost_base64.h, for x86-64: SSSE3 and AVX2, each
 * compiled for its instruction set with a target attribute and called only
 * when the CPU says it has that set, so the library builds for any x86-64.
 *
 * The algorithms are Wojciech Muła's ("Base64 encoding with SIMD
 * instructions", "Base64 decoding with SIMD instructions", 2016-2017) as
 * arranged in Alfred Klomp's aklomp/base64: encode by spreading each 3 bytes
 * over a 32-bit lane (pshufb), cutting out the four 6-bit fields with two
 * multiplies, and turning fields into characters with one 16-entry table;
 * decode by classifying every character through two nibble tables (a block
 * with any character outside the alphabet stops the loop), adding a per-class
 * offset, and packing four 6-bit fields into 3 bytes with two multiply-adds.
 */
#include "commhost_base64.h"

#if defined(__x86_64__)

#include <immintrin.h>

#define COMMHOST_SSSE3 __attribute__((target("ssse3")))
#define COMMHOST_AVX2 __attribute__((target("avx2")))

/* Encoding: 12 bytes at the start of each 16-byte lane -> 16 characters. */

/* The lane's four 3-byte groups, each spread to [A, B, C, D] (6-bit values, one per byte). */
COMMHOST_SSSE3 static inline __m128i encode_fields_128(__m128i in) {
    in = _mm_shuffle_epi8(in, _mm_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    const __m128i ac = _mm_mulhi_epu16(_mm_and_si128(in, _mm_set1_epi32(0x0fc0fc00)), _mm_set1_epi32(0x04000040));
    const __m128i bd = _mm_mullo_epi16(_mm_and_si128(in, _mm_set1_epi32(0x003f03f0)), _mm_set1_epi32(0x01000010));
    return _mm_or_si128(ac, bd);
}

/* 6-bit values -> alphabet characters: a table of offsets indexed by the value's range. */
COMMHOST_SSSE3 static inline __m128i encode_characters_128(__m128i fields) {
    const __m128i offsets = _mm_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    __m128i range = _mm_subs_epu8(fields, _mm_set1_epi8(51));
    range = _mm_sub_epi8(range, _mm_cmpgt_epi8(fields, _mm_set1_epi8(25)));
    return _mm_add_epi8(fields, _mm_shuffle_epi8(offsets, range));
}

COMMHOST_AVX2 static inline __m256i encode_fields_256(__m256i in) {
    in = _mm256_shuffle_epi8(in, _mm256_set_epi8(10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1,
                                                 10, 11, 9, 10, 7, 8, 6, 7, 4, 5, 3, 4, 1, 2, 0, 1));
    const __m256i ac = _mm256_mulhi_epu16(_mm256_and_si256(in, _mm256_set1_epi32(0x0fc0fc00)),
                                          _mm256_set1_epi32(0x04000040));
    const __m256i bd = _mm256_mullo_epi16(_mm256_and_si256(in, _mm256_set1_epi32(0x003f03f0)),
                                          _mm256_set1_epi32(0x01000010));
    return _mm256_or_si256(ac, bd);
}

COMMHOST_AVX2 static inline __m256i encode_characters_256(__m256i fields) {
    const __m256i offsets = _mm256_setr_epi8(65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0,
                                             65, 71, -4, -4, -4, -4, -4, -4, -4, -4, -4, -4, -19, -16, 0, 0);
    __m256i range = _mm256_subs_epu8(fields, _mm256_set1_epi8(51));
    range = _mm256_sub_epi8(range, _mm256_cmpgt_epi8(fields, _mm256_set1_epi8(25)));
    return _mm256_add_epi8(fields, _mm256_shuffle_epi8(offsets, range));
}

COMMHOST_SSSE3 static size_t encode_ssse3(const uint8_t *src, size_t len, uint8_t *dst, size_t i) {
    size_t o = i / 3 * 4;
    /* Each step reads 16 bytes and takes 12. */
    while (i + 16 <= len) {
        const __m128i in = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + o), encode_characters_128(encode_fields_128(in)));
        i += 12;
        o += 16;
    }
    return i;
}

COMMHOST_AVX2 static size_t encode_avx2(const uint8_t *src, size_t len, uint8_t *dst) {
    size_t i = 0, o = 0;
    /* Each step takes 24 bytes, 12 per lane, read as two 16-byte loads (the second ends at i + 28). */
    while (i + 28 <= len) {
        const __m256i in = _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)(src + i))),
                                                   _mm_loadu_si128((const __m128i *)(src + i + 12)), 1);
        _mm256_storeu_si256((__m256i *)(dst + o), encode_characters_256(encode_fields_256(in)));
        i += 24;
        o += 32;
    }
    return encode_ssse3(src, len, dst, i);
}

/* Decoding: 16 characters per lane -> 12 bytes at the start of the lane. */

/*
 * Character classes. A character is in the alphabet exactly when the class
 * bits its low nibble allows and those its high nibble allows have nothing
 * in common; every byte above 0x7F has high class 0x10, which no low nibble
 * clears. `roll` is the offset that takes a class to its 6-bit value; `/`
 * shares its high nibble with `+` and is told apart by its own compare.
 */
#define COMMHOST_LOW_CLASSES 0x15, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x13, 0x1A, 0x1B, 0x1B, 0x1B, 0x1A
#define COMMHOST_HIGH_CLASSES 0x10, 0x10, 0x01, 0x02, 0x04, 0x08, 0x04, 0x08, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x10
#define COMMHOST_ROLL 0, 16, 19, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0

/* Four 6-bit values per 32-bit lane -> their 3 bytes, in order, at the start of the 16-byte lane. */
COMMHOST_SSSE3 static inline __m128i decode_pack_128(__m128i values) {
    const __m128i pairs = _mm_maddubs_epi16(values, _mm_set1_epi32(0x01400140));
    const __m128i quads = _mm_madd_epi16(pairs, _mm_set1_epi32(0x00011000));
    return _mm_shuffle_epi8(quads, _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
}

COMMHOST_AVX2 static inline __m256i decode_pack_256(__m256i values) {
    const __m256i pairs = _mm256_maddubs_epi16(values, _mm256_set1_epi32(0x01400140));
    const __m256i quads = _mm256_madd_epi16(pairs, _mm256_set1_epi32(0x00011000));
    const __m256i lanes = _mm256_shuffle_epi8(quads, _mm256_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1,
                                                                      2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1));
    return _mm256_permutevar8x32_epi32(lanes, _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7));
}

COMMHOST_SSSE3 static size_t decode_ssse3(const uint8_t *src, size_t len, uint8_t *dst, size_t i) {
    const __m128i low_classes = _mm_setr_epi8(COMMHOST_LOW_CLASSES);
    const __m128i high_classes = _mm_setr_epi8(COMMHOST_HIGH_CLASSES);
    const __m128i roll = _mm_setr_epi8(COMMHOST_ROLL);
    const __m128i mask_2f = _mm_set1_epi8(0x2F);
    size_t o = i / 4 * 3;
    /* Each step reads 16 characters and stores 16 bytes, 12 of them decoded: with 24 characters
       left there are 18 bytes of room. */
    while (i + 24 <= len) {
        const __m128i in = _mm_loadu_si128((const __m128i *)(src + i));
        const __m128i high = _mm_and_si128(_mm_srli_epi32(in, 4), mask_2f);
        const __m128i low = _mm_and_si128(in, mask_2f);
        const __m128i clash = _mm_and_si128(_mm_shuffle_epi8(low_classes, low), _mm_shuffle_epi8(high_classes, high));
        if (_mm_movemask_epi8(_mm_cmpgt_epi8(clash, _mm_setzero_si128())) != 0) break;
        const __m128i offset = _mm_shuffle_epi8(roll, _mm_add_epi8(_mm_cmpeq_epi8(in, mask_2f), high));
        _mm_storeu_si128((__m128i *)(dst + o), decode_pack_128(_mm_add_epi8(in, offset)));
        i += 16;
        o += 12;
    }
    return i;
}

COMMHOST_AVX2 static size_t decode_avx2(const uint8_t *src, size_t len, uint8_t *dst) {
    const __m256i low_classes = _mm256_setr_epi8(COMMHOST_LOW_CLASSES, COMMHOST_LOW_CLASSES);
    const __m256i high_classes = _mm256_setr_epi8(COMMHOST_HIGH_CLASSES, COMMHOST_HIGH_CLASSES);
    const __m256i roll = _mm256_setr_epi8(COMMHOST_ROLL, COMMHOST_ROLL);
    const __m256i mask_2f = _mm256_set1_epi8(0x2F);
    size_t i = 0, o = 0;
    /* Each step reads 32 characters and stores 32 bytes, 24 of them decoded: with 44 characters
       left there are 33 bytes of room. */
    while (i + 44 <= len) {
        const __m256i in = _mm256_loadu_si256((const __m256i *)(src + i));
        const __m256i high = _mm256_and_si256(_mm256_srli_epi32(in, 4), mask_2f);
        const __m256i low = _mm256_and_si256(in, mask_2f);
        const __m256i clash = _mm256_and_si256(_mm256_shuffle_epi8(low_classes, low),
                                               _mm256_shuffle_epi8(high_classes, high));
        if (_mm256_movemask_epi8(_mm256_cmpgt_epi8(clash, _mm256_setzero_si256())) != 0) break;
        const __m256i offset = _mm256_shuffle_epi8(roll, _mm256_add_epi8(_mm256_cmpeq_epi8(in, mask_2f), high));
        _mm256_storeu_si256((__m256i *)(dst + o), decode_pack_256(_mm256_add_epi8(in, offset)));
        i += 32;
        o += 24;
    }
    /* A block the wide loop refused goes through the narrow one, which takes its clean half. */
    return decode_ssse3(src, len, dst, i);
}

static int has_ssse3(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("ssse3");
}

static int has_avx2(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2");
}

uint32_t commhost_base64_supported_paths(void) {
    uint32_t paths = 1u << COMMHOST_BASE64_SCALAR;
    if (has_ssse3()) paths |= 1u << COMMHOST_BASE64_SSSE3;
    if (has_avx2()) paths |= 1u << COMMHOST_BASE64_AVX2;
    return paths;
}

size_t commhost_base64_encode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst) {
    if (path == COMMHOST_BASE64_AVX2 && has_avx2()) return encode_avx2(src, len, dst);
    if (path == COMMHOST_BASE64_SSSE3 && has_ssse3()) return encode_ssse3(src, len, dst, 0);
    return 0;
}

size_t commhost_base64_decode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst) {
    if (path == COMMHOST_BASE64_AVX2 && has_avx2()) return decode_avx2(src, len, dst);
    if (path == COMMHOST_BASE64_SSSE3 && has_ssse3()) return decode_ssse3(src, len, dst, 0);
    return 0;
}

#else

uint32_t commhost_base64_supported_paths(void) { return 1u << COMMHOST_BASE64_SCALAR; }

size_t commhost_base64_encode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst) {
    (void)path, (void)src, (void)len, (void)dst;
    return 0;
}

size_t commhost_base64_decode_prefix(commhost_base64_path path, const uint8_t *src, size_t len, uint8_t *dst) {
    (void)path, (void)src, (void)len, (void)dst;
    return 0;
}

#endif
