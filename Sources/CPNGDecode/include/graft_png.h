#ifndef GRAFT_PNG_H
#define GRAFT_PNG_H

#include <stddef.h>

/// A decoded PNG reduced to 8-bit samples without alpha: `components` is 1 (grey) or 3 (RGB), rows top to bottom.
typedef struct {
    unsigned char *pixels;
    int width, height, components;
} graft_png_image;

/// Decodes `size` bytes with libpng: palette images become RGB, grey below 8 bits is scaled up to 8, 16-bit samples
/// keep their high byte, alpha (and a tRNS chunk) is dropped, interlacing is undone. Returns 0 and fills `image`
/// (free it with `graft_png_free`), or -1 with libpng's message in `message`. Images over `max_pixels` pixels are
/// refused from the header, before anything is allocated.
int graft_png_decode(const unsigned char *data, size_t size, long max_pixels,
                     graft_png_image *image, char *message, size_t message_size);

void graft_png_free(graft_png_image *image);

#endif
