// libjpeg reports a fatal error through `error_exit`, which must not return: the caller longjmps back to a setjmp
// point. Swift cannot call setjmp, so the whole decode lives here, in C.
#include "graft_jpeg.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jpeglib.h>
#include <jerror.h>

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf escape;
    char *message;
    size_t message_size;
} graft_error_mgr;

static void fail_with_message(j_common_ptr cinfo) {
    graft_error_mgr *err = (graft_error_mgr *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    err->base.format_message(cinfo, text);
    snprintf(err->message, err->message_size, "%s", text);
    longjmp(err->escape, 1);
}

// Level -1 is a warning (higher levels are traces). Every warning but two means damaged data that libjpeg would
// paper over (bad codes, a premature end, stray bytes); an unknown JFIF revision or Adobe transform code concerns
// metadata only, and libjpeg's guess there is PIL's.
static void emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_JFIF_MAJOR || code == JWRN_ADOBE_XFORM) return;
    fail_with_message(cinfo);
}

int graft_jpeg_decode(const unsigned char *data, size_t size, long max_pixels,
                      graft_jpeg_image *image, char *message, size_t message_size) {
    struct jpeg_decompress_struct cinfo;
    graft_error_mgr err;
    // Volatile: these change between setjmp and a longjmp back to it.
    unsigned char *volatile pixels = NULL;
    memset(image, 0, sizeof *image);
    if (size == 0) {
        snprintf(message, message_size, "the file is empty");
        return -1;
    }
    cinfo.err = jpeg_std_error(&err.base);
    err.base.error_exit = fail_with_message;
    err.base.emit_message = emit_message;
    err.message = message;
    err.message_size = message_size;
    if (setjmp(err.escape)) {
        jpeg_destroy_decompress(&cinfo);
        free(pixels);
        return -1;
    }
    jpeg_create_decompress(&cinfo);
    jpeg_mem_src(&cinfo, data, (unsigned long)size);
    jpeg_read_header(&cinfo, TRUE);
    if ((long)cinfo.image_width * (long)cinfo.image_height > max_pixels) {
        snprintf(message, message_size, "%u × %u pixels is over the limit of %ld", cinfo.image_width,
                 cinfo.image_height, max_pixels);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    // libjpeg converts grey and YCbCr to RGB itself, but not CMYK/YCCK: those come out as CMYK.
    int cmyk = cinfo.num_components == 4;
    cinfo.out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(&cinfo);
    size_t row_bytes = (size_t)cinfo.output_width * (size_t)cinfo.output_components;
    pixels = malloc(row_bytes * cinfo.output_height + 1);
    if (!pixels) {
        snprintf(message, message_size, "out of memory for %u × %u pixels", cinfo.output_width, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return -1;
    }
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + row_bytes * cinfo.output_scanline;
        jpeg_read_scanlines(&cinfo, &row, 1);  // a memory source never suspends: one line per call
    }
    jpeg_finish_decompress(&cinfo);
    image->pixels = pixels;
    image->width = (int)cinfo.output_width;
    image->height = (int)cinfo.output_height;
    image->components = cinfo.output_components;
    image->adobe = cinfo.saw_Adobe_marker;
    jpeg_destroy_decompress(&cinfo);
    return 0;
}

void graft_jpeg_free(graft_jpeg_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
