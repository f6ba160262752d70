/*
 * embed.c: an example C application of the Kiln runtime's C API (runtime-c/include/kiln.h).
 *
 * It loads a compiled .kiln artifact, makes every input from the model's own metadata (names,
 * dtypes, shapes), runs the model once and prints each output's name, dtype, shape and first
 * values. Inputs: a symbolic dim whose name mentions `seq` or `len` is 5, any other symbolic
 * dim 2 (so `batch` = 2, `seq` = 5); integer inputs whose name mentions `token_type` are 0, those
 * whose name mentions `mask` are 1, other integer inputs (token ids) are 1 + i % 7; bool inputs
 * are 1; float inputs are (i % 8 - 4) / 8, exact in every float type.
 *
 * Usage: embed ARTIFACT.kiln [DUMP_DIR]
 *   With DUMP_DIR, the raw little-endian bytes of input i and output i are also written to
 *   DUMP_DIR/input_<i>.bin and DUMP_DIR/output_<i>.bin (the tests compare them with the Rust
 *   API's results bit for bit).
 *
 * Build (from the workspace root):
 *   cargo build --release -p kiln-runtime-c
 *   cc -std=c99 -Wall -Iruntime-c/include examples/c/embed.c \
 *      target/release/libkiln_runtime_c.a -lpthread -ldl -lm -o embed
 *   ./embed /tmp/tiny.kiln
 */

#include "kiln.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Reports a failed call with the library's message and jumps to the cleanup. */
#define CHECK(call)                                                                          \
    do {                                                                                     \
        KilnStatus status_ = (call);                                                         \
        if (status_ != KILN_STATUS_OK) {                                                     \
            fprintf(stderr, "embed: %s: status %d: %s\n", #call, (int)status_,               \
                    kiln_last_error());                                                      \
            goto done;                                                                       \
        }                                                                                    \
    } while (0)

static const char *dtype_name(KilnDtype d) {
    switch (d) {
    case KILN_DTYPE_F32: return "f32";
    case KILN_DTYPE_F16: return "f16";
    case KILN_DTYPE_BF16: return "bf16";
    case KILN_DTYPE_F64: return "f64";
    case KILN_DTYPE_I64: return "i64";
    case KILN_DTYPE_I32: return "i32";
    case KILN_DTYPE_I8: return "i8";
    case KILN_DTYPE_U8: return "u8";
    case KILN_DTYPE_BOOL: return "bool";
    }
    return "?";
}

static size_t dtype_size(KilnDtype d) {
    switch (d) {
    case KILN_DTYPE_F64: case KILN_DTYPE_I64: return 8;
    case KILN_DTYPE_F32: case KILN_DTYPE_I32: return 4;
    case KILN_DTYPE_F16: case KILN_DTYPE_BF16: return 2;
    case KILN_DTYPE_I8: case KILN_DTYPE_U8: case KILN_DTYPE_BOOL: return 1;
    }
    return 0;
}

/* The f16 bits of a normal float or zero (truncating: exact for the values this program makes). */
static uint16_t f32_to_f16_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, sizeof x);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
    if ((x & 0x7fffffffu) == 0) return sign;
    int32_t exp = (int32_t)((x >> 23) & 0xffu) - 127 + 15;
    return (uint16_t)(sign | ((uint32_t)exp << 10) | ((x & 0x7fffffu) >> 13));
}

static float f16_bits_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, mant = h & 0x3ffu;
    uint32_t x;
    if (exp == 0x1f) {
        x = sign | 0x7f800000u | (mant << 13); /* inf or NaN */
    } else if (exp != 0) {
        x = sign | ((exp - 15 + 127) << 23) | (mant << 13);
    } else {
        float v = (float)mant / 16777216.0f; /* subnormal: mant * 2^-24 */
        return sign ? -v : v;
    }
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

static float bf16_bits_to_f32(uint16_t b) {
    uint32_t x = (uint32_t)b << 16;
    float f;
    memcpy(&f, &x, sizeof f);
    return f;
}

/* Writes element i of the input buffer `buf` (of dtype `d`) by the rules at the top. */
static void fill(void *buf, KilnDtype d, const char *name, size_t i) {
    int64_t id = strstr(name, "token_type") ? 0 : strstr(name, "mask") ? 1 : 1 + (int64_t)(i % 7);
    float f = ((float)(i % 8) - 4.0f) / 8.0f;
    switch (d) {
    case KILN_DTYPE_F32: ((float *)buf)[i] = f; break;
    case KILN_DTYPE_F64: ((double *)buf)[i] = f; break;
    case KILN_DTYPE_F16: ((uint16_t *)buf)[i] = f32_to_f16_bits(f); break;
    case KILN_DTYPE_BF16: {
        uint32_t x;
        memcpy(&x, &f, sizeof x);
        ((uint16_t *)buf)[i] = (uint16_t)(x >> 16);
        break;
    }
    case KILN_DTYPE_I64: ((int64_t *)buf)[i] = id; break;
    case KILN_DTYPE_I32: ((int32_t *)buf)[i] = (int32_t)id; break;
    case KILN_DTYPE_I8: ((int8_t *)buf)[i] = (int8_t)id; break;
    case KILN_DTYPE_U8: ((uint8_t *)buf)[i] = (uint8_t)id; break;
    case KILN_DTYPE_BOOL: ((uint8_t *)buf)[i] = 1; break;
    }
}

/* Prints element i of an output buffer. */
static void print_value(const void *data, KilnDtype d, size_t i) {
    switch (d) {
    case KILN_DTYPE_F32: printf(" %.9g", (double)((const float *)data)[i]); break;
    case KILN_DTYPE_F64: printf(" %.17g", ((const double *)data)[i]); break;
    case KILN_DTYPE_F16: printf(" %.9g", (double)f16_bits_to_f32(((const uint16_t *)data)[i])); break;
    case KILN_DTYPE_BF16: printf(" %.9g", (double)bf16_bits_to_f32(((const uint16_t *)data)[i])); break;
    case KILN_DTYPE_I64: printf(" %" PRId64, ((const int64_t *)data)[i]); break;
    case KILN_DTYPE_I32: printf(" %" PRId32, ((const int32_t *)data)[i]); break;
    case KILN_DTYPE_I8: printf(" %d", (int)((const int8_t *)data)[i]); break;
    case KILN_DTYPE_U8: printf(" %u", (unsigned)((const uint8_t *)data)[i]); break;
    case KILN_DTYPE_BOOL: printf(" %u", (unsigned)((const uint8_t *)data)[i]); break;
    }
}

static void print_shape(const int64_t *dims, size_t rank) {
    printf(" [");
    for (size_t a = 0; a < rank; a++) printf(a ? ", %" PRId64 : "%" PRId64, dims[a]);
    printf("]");
}

/* Writes `len` bytes to DIR/KIND_<i>.bin; returns 0 on success. */
static int dump(const char *dir, const char *kind, size_t i, const void *data, size_t len) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s_%zu.bin", dir, kind, i);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        return 1;
    }
    int bad = len > 0 && fwrite(data, 1, len, f) != len;
    bad |= fclose(f) != 0;
    if (bad) perror(path);
    return bad;
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s ARTIFACT.kiln [DUMP_DIR]\n", argv[0]);
        return 2;
    }
    const char *dump_dir = argc == 3 ? argv[2] : NULL;
    int ok = 0;
    KilnModel *model = NULL;
    KilnSession *session = NULL;
    KilnOutputs *outputs = NULL;
    KilnInput *inputs = NULL;
    size_t num_inputs = 0, num_outputs = 0;

    /* Zeros mean defaults: KILN_THREADS or every CPU, and a budget of the memory available. */
    KilnLoadOptions options = {0, 0};
    CHECK(kiln_model_load(argv[1], &options, &model));
    CHECK(kiln_session_new(model, &session));

    CHECK(kiln_model_num_inputs(model, &num_inputs));
    inputs = calloc(num_inputs ? num_inputs : 1, sizeof *inputs);
    if (!inputs) goto oom;
    for (size_t i = 0; i < num_inputs; i++) {
        KilnInput *in = &inputs[i];
        const int64_t *declared;
        CHECK(kiln_model_input_name(model, i, &in->name));
        CHECK(kiln_model_input_dtype(model, i, &in->dtype));
        CHECK(kiln_model_input_shape(model, i, &declared, &in->rank));
        int64_t *shape = calloc(in->rank ? in->rank : 1, sizeof *shape);
        if (!shape) goto oom;
        in->shape = shape;
        size_t count = 1;
        for (size_t a = 0; a < in->rank; a++) {
            shape[a] = declared[a];
            if (shape[a] < 0) { /* symbolic: choose a size by the dim's name */
                const char *dim;
                CHECK(kiln_model_input_dim_name(model, i, a, &dim));
                shape[a] = (strstr(dim, "seq") || strstr(dim, "len")) ? 5 : 2;
            }
            count *= (size_t)shape[a];
        }
        in->byte_len = count * dtype_size(in->dtype);
        void *data = malloc(in->byte_len ? in->byte_len : 1);
        if (!data) goto oom;
        in->data = data;
        for (size_t e = 0; e < count; e++) fill(data, in->dtype, in->name, e);
        printf("input %s %s", in->name, dtype_name(in->dtype));
        print_shape(in->shape, in->rank);
        printf("\n");
        if (dump_dir && dump(dump_dir, "input", i, in->data, in->byte_len)) goto done;
    }

    CHECK(kiln_session_run(session, inputs, num_inputs, &outputs));

    CHECK(kiln_outputs_count(outputs, &num_outputs));
    for (size_t i = 0; i < num_outputs; i++) {
        const char *name;
        KilnDtype dtype;
        const int64_t *dims;
        size_t rank;
        const void *data;
        size_t byte_len;
        CHECK(kiln_outputs_name(outputs, i, &name));
        CHECK(kiln_outputs_dtype(outputs, i, &dtype));
        CHECK(kiln_outputs_shape(outputs, i, &dims, &rank));
        CHECK(kiln_outputs_data(outputs, i, &data, &byte_len));
        printf("output %s %s", name, dtype_name(dtype));
        print_shape(dims, rank);
        printf(" first:");
        size_t count = byte_len / dtype_size(dtype);
        for (size_t e = 0; e < count && e < 6; e++) print_value(data, dtype, e);
        printf("\n");
        if (dump_dir && dump(dump_dir, "output", i, data, byte_len)) goto done;
    }
    ok = 1;
    goto done;

oom:
    fprintf(stderr, "embed: out of memory\n");
done:
    /* Every handle is freed on every path; the free functions accept NULL. */
    kiln_outputs_free(outputs);
    kiln_session_free(session);
    kiln_model_free(model);
    if (inputs) {
        for (size_t i = 0; i < num_inputs; i++) {
            free((void *)inputs[i].shape);
            free((void *)inputs[i].data);
        }
        free(inputs);
    }
    return ok ? 0 : 1;
}
