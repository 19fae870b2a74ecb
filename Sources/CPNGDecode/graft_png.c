// libpng reports a fatal error through its error function, which must not return: the caller longjmps back to a
// setjmp point. Swift cannot call setjmp, so the whole decode lives here, in C (as for JPEG in CJPEGDecode).
#include "graft_png.h"

#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <png.h>

typedef struct {
    const unsigned char *data;
    size_t size, offset;
    char *message;
    size_t message_size;
} graft_png_source;

static void fail(png_structp png, png_const_charp text) {
    graft_png_source *source = png_get_error_ptr(png);
    snprintf(source->message, source->message_size, "%s", text);
    png_longjmp(png, 1);
}

// Warnings concern ancillary chunks (a bad CRC, unknown metadata), which libpng skips: the pixels are intact.
static void ignore(png_structp png, png_const_charp text) { (void)png; (void)text; }

static void read_bytes(png_structp png, png_bytep out, size_t count) {
    graft_png_source *source = png_get_io_ptr(png);
    if (count > source->size - source->offset) png_error(png, "the file ends inside the image data (truncated)");
    memcpy(out, source->data + source->offset, count);
    source->offset += count;
}

int graft_png_decode(const unsigned char *data, size_t size, long max_pixels,
                     graft_png_image *image, char *message, size_t message_size) {
    memset(image, 0, sizeof *image);
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) {
        snprintf(message, message_size, "no PNG signature");
        return -1;
    }
    graft_png_source source = {data, size, 0, message, message_size};
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &source, fail, ignore);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        snprintf(message, message_size, "out of memory");
        png_destroy_read_struct(&png, NULL, NULL);
        return -1;
    }
    // Volatile: these change between setjmp and a longjmp back to it.
    unsigned char *volatile pixels = NULL;
    png_bytep *volatile rows = NULL;
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, NULL);
        free(pixels);
        free(rows);
        return -1;
    }
    png_set_read_fn(png, &source, read_bytes);
    png_read_info(png, info);
    png_uint_32 width = png_get_image_width(png, info), height = png_get_image_height(png, info);
    if ((long)width * (long)height > max_pixels) {
        snprintf(message, message_size, "%u × %u pixels is over the limit of %ld", width, height, max_pixels);
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    int type = png_get_color_type(png, info);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY) png_set_expand_gray_1_2_4_to_8(png);
    if (png_get_bit_depth(png, info) == 16) png_set_strip_16(png);
    // Alpha, whether a channel or a tRNS chunk (which palette expansion would turn into one), is dropped.
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(png, info, PNG_INFO_tRNS)) png_set_strip_alpha(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    int components = png_get_channels(png, info);
    if ((components != 1 && components != 3) || png_get_bit_depth(png, info) != 8) {
        snprintf(message, message_size, "unexpected layout after conversion (%d channels, %d bits)", components,
                 png_get_bit_depth(png, info));
        png_destroy_read_struct(&png, &info, NULL);
        return -1;
    }
    size_t row_bytes = (size_t)width * (size_t)components;
    pixels = malloc(row_bytes * height + 1);
    rows = malloc(sizeof(png_bytep) * (height + 1));
    if (!pixels || !rows) png_error(png, "out of memory");
    for (png_uint_32 y = 0; y < height; y++) rows[y] = pixels + row_bytes * y;
    png_read_image(png, rows);
    png_read_end(png, NULL);
    free(rows);
    image->pixels = pixels;
    image->width = (int)width;
    image->height = (int)height;
    image->components = components;
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
}

void graft_png_free(graft_png_image *image) {
    free(image->pixels);
    image->pixels = NULL;
}
