// zlib for Swift: deflateInit2 and inflateInit2 are macros, wrapped here.
#ifndef MONTROSE_CZLIB_SHIM_H
#define MONTROSE_CZLIB_SHIM_H
#include <zlib.h>

static inline int montrose_deflateInit2(z_streamp strm, int level, int windowBits, int memLevel, int strategy) {
    return deflateInit2(strm, level, Z_DEFLATED, windowBits, memLevel, strategy);
}
static inline int montrose_inflateInit2(z_streamp strm, int windowBits) {
    return inflateInit2(strm, windowBits);
}
#endif
