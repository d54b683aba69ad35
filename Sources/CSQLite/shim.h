// SQLite for Swift. SQLITE_TRANSIENT is a macro casting -1 to a function pointer, which Swift
// cannot import: this wrapper binds text and blobs with it (SQLite copies the bytes).
#ifndef MONTROSE_CSQLITE_SHIM_H
#define MONTROSE_CSQLITE_SHIM_H
#include <sqlite3.h>

static inline int montrose_sqlite3_bind_text(sqlite3_stmt *s, int i, const char *text, int n) {
    return sqlite3_bind_text(s, i, text, n, SQLITE_TRANSIENT);
}
static inline int montrose_sqlite3_bind_blob(sqlite3_stmt *s, int i, const void *bytes, int n) {
    return sqlite3_bind_blob(s, i, bytes, n, SQLITE_TRANSIENT);
}
#endif
