#pragma once
// GB 18030 text, as GB/T 26875.3 carries descriptions (31 bytes) and configuration text, converted
// with glibc's iconv.

#include <cstddef>
#include <string>
#include <string_view>

namespace firegate::gb26875 {

/// UTF-8 as GB 18030, cut at a character boundary to at most `max` bytes. A byte that is not
/// UTF-8 becomes '?'.
std::string to_gb18030(std::string_view utf8, std::size_t max = 31);
/// GB 18030 back to UTF-8 (for people: the centre's printout, firegatectl); invalid bytes and
/// control characters '?'.
std::string from_gb18030(std::string_view gb);

}  // namespace firegate::gb26875
