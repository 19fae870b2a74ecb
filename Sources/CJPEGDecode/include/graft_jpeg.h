#ifndef GRAFT_JPEG_H
#define GRAFT_JPEG_H

#include <stddef.h>

/// A decoded JPEG: `components` is 1 (grey), 3 (RGB) or 4 (CMYK, inverted when `adobe` is set), rows top to bottom.
typedef struct {
    unsigned char *pixels;
    int width, height, components, adobe;
} graft_jpeg_image;

/// Decodes `size` bytes with libjpeg. Returns 0 and fills `image` (free it with `graft_jpeg_free`), or returns -1
/// with libjpeg's message in `message` when libjpeg gives up (`error_exit`) or warns about damaged data; warnings
/// about metadata alone do not count. Images over `max_pixels` pixels are refused before anything is allocated.
int graft_jpeg_decode(const unsigned char *data, size_t size, long max_pixels,
                      graft_jpeg_image *image, char *message, size_t message_size);

void graft_jpeg_free(graft_jpeg_image *image);

#endif
