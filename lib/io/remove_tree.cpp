#include "io/remove_tree.h"

#include "common/error.h"

#include <ftw.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace hyft::io {

namespace {
int remove_entry(const char* path, const struct stat*, int, struct FTW*) { return std::remove(path); }
}  // namespace

void remove_tree(const std::string& path) {
  if (::nftw(path.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
    fail(path, ": cannot remove (", std::strerror(errno), ")");
}

}  // namespace hyft::io
