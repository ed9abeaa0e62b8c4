/*
 * The C JSON helper (comm_json.h) against its promises: finding members and
 * elements by path, strings with every escape decoded, integers and floats
 * with range errors, and the writer's escaping, commas and overflow. Prints
 * "ok" and exits 0, or names the first check that failed and exits 1.
 */
#include "comm_json.h"

static int failures;

#define CHECK(cond) do { if (!(cond)) { printf("failed: %s (line %d)\n", #cond, __LINE__); failures++; } } while (0)

static commhost_str S(const char *text) {
    commhost_str s = { text, strlen(text) };
    return s;
}

static int same(commhost_str s, const char *text) {
    return s.len == strlen(text) && memcmp(s.ptr, text, s.len) == 0;
}

int main(void) {
    const char *doc = " {\"method\" : \"update\", \"state\": {\"value\": 42, \"label\": \"a\\\"b\\\\c\\u00e9\\ud83d\\ude00\\n\","
                      " \"big\": 9223372036854775808, \"neg\": -9223372036854775808, \"pi\": 3.25e0, \"on\": true},"
                      " \"children\": [\"IPY_MODEL_a\", {\"x\": [1, [2, 3]]}], \"k\\u0065y\": 1, \"empty\": {} } ";
    commhost_str json = S(doc), v;

    /* find */
    CHECK(commhost_json_find(json, "method", &v) == COMMHOST_OK && same(v, "\"update\""));
    CHECK(commhost_json_find(json, "state.value", &v) == COMMHOST_OK && same(v, "42"));
    CHECK(commhost_json_find(json, "children.0", &v) == COMMHOST_OK && same(v, "\"IPY_MODEL_a\""));
    CHECK(commhost_json_find(json, "children.1.x.1.0", &v) == COMMHOST_OK && same(v, "2"));
    CHECK(commhost_json_find(json, "state", &v) == COMMHOST_OK && v.ptr[0] == '{' && v.ptr[v.len - 1] == '}');
    CHECK(commhost_json_find(json, "", &v) == COMMHOST_OK && v.ptr[0] == '{');
    CHECK(commhost_json_find(json, "nope", &v) == COMMHOST_EINVAL);
    CHECK(commhost_json_find(json, "children.2", &v) == COMMHOST_EINVAL);
    CHECK(commhost_json_find(json, "empty.x", &v) == COMMHOST_EINVAL);
    CHECK(commhost_json_find(json, "method.x", &v) == COMMHOST_EJSON);
    CHECK(commhost_json_find(json, "key", &v) == COMMHOST_EINVAL);
    /* Text that is not JSON (cut short) is never read past its end. */
    CHECK(commhost_json_find(S("{\"a\": [1, 2"), "a.1", &v) == COMMHOST_EJSON);
    CHECK(commhost_json_find(S("{\"a\": [1, 2"), "b", &v) == COMMHOST_EJSON);
    CHECK(commhost_json_find(S("{\"a\": \"x"), "a", &v) == COMMHOST_EJSON);
    CHECK(commhost_json_find(json, NULL, &v) == COMMHOST_EINVAL);

    /* strings */
    char text[64];
    size_t len = 0;
    CHECK(commhost_json_find(json, "state.label", &v) == COMMHOST_OK);
    CHECK(commhost_json_string_value(v, text, sizeof text, &len) == COMMHOST_OK);
    CHECK(len == strlen("a\"b\\c\xc3\xa9\xf0\x9f\x98\x80\n") && strcmp(text, "a\"b\\c\xc3\xa9\xf0\x9f\x98\x80\n") == 0);
    CHECK(commhost_json_string_value(v, text, 5, &len) == COMMHOST_ELIMIT);
    CHECK(commhost_json_string_value(S("42"), text, sizeof text, &len) == COMMHOST_EJSON);
    CHECK(commhost_json_string_value(S("\"\\ud83d\""), text, sizeof text, &len) == COMMHOST_EJSON);
    CHECK(commhost_json_string_value(S("\"\\q\""), text, sizeof text, &len) == COMMHOST_EJSON);
    CHECK(commhost_json_string_value(S("\"\""), text, sizeof text, &len) == COMMHOST_OK && len == 0 && text[0] == '\0');

    /* integers */
    int64_t n = 0;
    CHECK(commhost_json_find(json, "state.value", &v) == COMMHOST_OK && commhost_json_int64_value(v, &n) == COMMHOST_OK && n == 42);
    CHECK(commhost_json_find(json, "state.big", &v) == COMMHOST_OK && commhost_json_int64_value(v, &n) == COMMHOST_ELIMIT);
    CHECK(commhost_json_find(json, "state.neg", &v) == COMMHOST_OK && commhost_json_int64_value(v, &n) == COMMHOST_OK && n == INT64_MIN);
    CHECK(commhost_json_int64_value(S("9223372036854775807"), &n) == COMMHOST_OK && n == INT64_MAX);
    CHECK(commhost_json_int64_value(S("3.5"), &n) == COMMHOST_EJSON);
    CHECK(commhost_json_int64_value(S("1e3"), &n) == COMMHOST_EJSON);
    CHECK(commhost_json_int64_value(S("012"), &n) == COMMHOST_EJSON);
    CHECK(commhost_json_int64_value(S("\"7\""), &n) == COMMHOST_EJSON);
    CHECK(commhost_json_int64_value(S("-"), &n) == COMMHOST_EJSON);

    /* floats and booleans */
    double d = 0;
    bool b = false;
    CHECK(commhost_json_find(json, "state.pi", &v) == COMMHOST_OK && commhost_json_double_value(v, &d) == COMMHOST_OK && d == 3.25);
    CHECK(commhost_json_double_value(S("-0.5e-3"), &d) == COMMHOST_OK && d == -0.0005);
    CHECK(commhost_json_double_value(S("1e999"), &d) == COMMHOST_ELIMIT);
    CHECK(commhost_json_double_value(S("0x10"), &d) == COMMHOST_EJSON);
    CHECK(commhost_json_double_value(S("inf"), &d) == COMMHOST_EJSON);
    CHECK(commhost_json_double_value(S("1."), &d) == COMMHOST_EJSON);
    CHECK(commhost_json_find(json, "state.on", &v) == COMMHOST_OK && commhost_json_bool_value(v, &b) == COMMHOST_OK && b);
    CHECK(commhost_json_bool_value(S("1"), &b) == COMMHOST_EJSON);

    /* writing */
    char out[256];
    commhost_json_writer w = commhost_json_writer_init(out, sizeof out);
    commhost_json_begin_object(&w);
    commhost_json_key(&w, "method");
    commhost_json_string(&w, "update", 6);
    commhost_json_key(&w, "text");
    commhost_json_string(&w, "q\"b\\s\n\x01\xc3\xa9", 9);
    commhost_json_key(&w, "list");
    commhost_json_begin_array(&w);
    commhost_json_int64(&w, -7);
    commhost_json_double(&w, 0.5);
    commhost_json_bool(&w, false);
    commhost_json_null(&w);
    commhost_json_raw(&w, S("{\"a\":1}"));
    commhost_json_end_array(&w);
    commhost_json_key(&w, "empty");
    commhost_json_begin_object(&w);
    commhost_json_end_object(&w);
    commhost_json_end_object(&w);
    commhost_str written;
    CHECK(commhost_json_finish(&w, &written) == COMMHOST_OK);
    CHECK(same(written, "{\"method\":\"update\",\"text\":\"q\\\"b\\\\s\\n\\u0001\xc3\xa9\",\"list\":[-7,0.5,false,null,{\"a\":1}],\"empty\":{}}"));
    /* What it wrote reads back. */
    CHECK(commhost_json_find(written, "text", &v) == COMMHOST_OK && commhost_json_string_value(v, text, sizeof text, &len) == COMMHOST_OK
          && len == 9 && memcmp(text, "q\"b\\s\n\x01\xc3\xa9", 9) == 0);
    CHECK(commhost_json_find(written, "list.4.a", &v) == COMMHOST_OK && same(v, "1"));

    char small[8];
    w = commhost_json_writer_init(small, sizeof small);
    commhost_json_begin_object(&w);
    commhost_json_key(&w, "long key");
    commhost_json_int64(&w, 1);
    commhost_json_end_object(&w);
    CHECK(commhost_json_finish(&w, &written) == COMMHOST_ELIMIT);
    w = commhost_json_writer_init(out, sizeof out);
    commhost_json_begin_array(&w);
    CHECK(commhost_json_finish(&w, &written) == COMMHOST_EINVAL);
    w = commhost_json_writer_init(out, sizeof out);
    commhost_json_double(&w, NAN);
    CHECK(commhost_json_finish(&w, &written) == COMMHOST_EINVAL);

    if (failures) return 1;
    printf("ok\n");
    return 0;
}
