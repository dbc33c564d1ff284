// Recursive removal of a file or folder. std::filesystem::remove_all is not used:
// the torch wheel's libtorch.so exports a broken copy of it that the dynamic linker
// may pick (it jumps to address 0).
#pragma once

#include <cstdint>
#include <string>

namespace hyft::io {

// Removes `path` and everything below it; a missing path is not an error.
void remove_tree(const std::string& path);

// Removes what interrupted atomic writes left in `folder` (not recursively):
// entries named "<name>.tmp-<pid>" whose process no longer runs. Returns how many.
int64_t remove_stale_temporaries(const std::string& folder);

}  // namespace hyft::io
