#pragma once
// GB/T 26875.3 frames written out byte by byte, for tests that must not agree with firegate's own
// encoder: a published example exchange between a UITD (address 889: 79 03 00 00 00 00) and a
// centre (address 88888: 38 5B 01 00 00 00), sent on 2012-09-26 at 09:58:32 (time label 20 3A 09 1A
// 09 0C). Each frame's checksum was recomputed by hand from its bytes (the sum of bytes 3 to the end
// of the application data, low 8 bits) and agrees with the one printed.

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

namespace firegate::test::gb_published {

inline std::vector<std::uint8_t> hex(const std::string& text) {
  std::vector<std::uint8_t> out;
  std::istringstream in(text);
  std::string b;
  while (in >> b) out.push_back(static_cast<std::uint8_t>(std::stoul(b, nullptr, 16)));
  return out;
}

/// Centre → UITD, request (4): read UITD running status (type 81), one object, the reserved byte.
inline const auto read_uitd_status =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 04 51 01 00 FE 23 23");
/// Centre → UITD, request (4): read UITD software version (type 85).
inline const auto read_uitd_version =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 04 55 01 00 02 23 23");
/// Centre → UITD, request (4): read UITD system time (type 88).
inline const auto read_uitd_time =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 03 00 04 58 01 00 05 23 23");
/// Centre → UITD, control (1): synchronise the UITD clock (type 90) to 2012-09-26 09:58:02.
inline const auto sync_clock =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 38 5B 01 00 00 00 79 03 00 00 00 00 08 00 01 5A 01 02 3A 09 1A "
        "09 0C 7D "
        "23 23");
/// UITD → centre, send data (2): UITD software version 1.1 (type 25): no time label.
inline const auto uitd_version = hex(
    "40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 04 00 02 19 01 01 01 C7 23 23");
/// UITD → centre, send data (2): UITD system time (type 28), 2012-09-26 09:58:02: the time is the
/// object, with no label after it.
inline const auto uitd_time =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 08 00 02 1C 01 02 3A 09 1A "
        "09 0C 40 "
        "23 23");
/// UITD → centre, response (5) to a read of its system time: the same object.
inline const auto uitd_time_response =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 08 00 05 1C 01 02 3A 09 1A "
        "09 0C 43 "
        "23 23");
/// UITD → centre, send data (2): component running status (type 2), one object: system type 1,
/// system address 1, smoke detector (40) at 0A 00 02 00, status 02 00 (fire alarm, test mode), a
/// description of 30 spaces and a zero, then the time label 2012-09-26 09:58:02.
inline const auto component_fire =
    hex("40 40 01 00 01 01 20 3A 09 1A 09 0C 79 03 00 00 00 00 38 5B 01 00 00 00 30 00 02 02 01 01 01 28 0A "
        "00 02 00 02 "
        "00 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 20 00 02 "
        "3A 09 1A 09 "
        "0C 46 23 23");

}  // namespace firegate::test::gb_published
