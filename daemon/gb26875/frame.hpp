#pragma once
// GB/T 26875.3-2011 frames (docs/gb26875.md, "Frames"): encoding, and a reader that takes TCP
// bytes as they come (split, stuck together, with garbage between) and gives whole frames or a
// named fault for each frame that fails verification (to be answered with deny). No I/O: shared by
// the uplink, the reference centre, firegatectl's decoder and the fuzz target.
//
//   @@ | serial(2) | version(2) | time(6) | source(6) | destination(6) | length(2) | command(1)
//      | data(length ≤ 1024) | checksum(1: sum of serial..data, low 8 bits) | ##
// Integers little-endian.

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace firegate::gb26875 {

inline constexpr std::size_t max_data_length = 1024;
/// From the start marker to the command byte, inclusive.
inline constexpr std::size_t header_size = 27;
/// Checksum and end marker.
inline constexpr std::size_t trailer_size = 3;

namespace command {
inline constexpr std::uint8_t control = 1;
inline constexpr std::uint8_t send_data = 2;
inline constexpr std::uint8_t confirm = 3;
inline constexpr std::uint8_t request = 4;
inline constexpr std::uint8_t response = 5;
inline constexpr std::uint8_t deny = 6;
}  // namespace command

/// 1–6, or 128–255 (user-defined).
bool known_command(std::uint8_t c);
/// "send data", "confirm", ... or "user-defined 200" / "unknown 9".
std::string command_name(std::uint8_t c);

using address = std::array<std::uint8_t, 6>;

/// Second, minute, hour, day, month, year: one binary byte each, the year from 2000.
struct time_label {
  std::uint8_t second{0}, minute{0}, hour{0}, day{1}, month{1};
  std::uint16_t year{2000};
  bool operator==(const time_label&) const = default;
  /// Whether every field is in its range (a day of 31 in any month is accepted).
  bool valid() const;
  /// "2025-06-01 12:30:45"
  std::string text() const;
  /// The moment it names, read as local time; nullopt when it is not valid().
  std::optional<std::chrono::system_clock::time_point> to_time_point() const;
};

/// The local time `t` as a time label (the centre reads local time).
time_label local_time_label(std::chrono::system_clock::time_point t);

struct frame {
  std::uint16_t serial{0};
  std::uint8_t version_main{1};
  std::uint8_t version_user{1};
  time_label time;
  address source{};
  address destination{};
  std::uint8_t command{command::send_data};
  std::vector<std::uint8_t> data;
  bool operator==(const frame&) const = default;
};

/// The bytes of `f`. Throws std::length_error when its data is over max_data_length.
std::vector<std::uint8_t> encode(const frame& f);

/// The low 8 bits of the sum of `bytes`.
std::uint8_t checksum(std::span<const std::uint8_t> bytes);

/// A frame that failed verification: what was wrong, and the header as far as it could be read
/// (to address the deny).
struct frame_fault {
  enum class kind : std::uint8_t { too_long, bad_checksum, bad_end, unknown_command };
  kind what{kind::bad_checksum};
  std::string detail;  ///< "checksum 0x12 expected, 0x34 found", ...
  std::uint16_t serial{0};
  address source{};
  address destination{};
};

/// One step of the reader: a frame, a fault, or nothing until more bytes come.
struct read_result {
  std::optional<gb26875::frame> frame;
  std::optional<frame_fault> fault;
};

/// Resynchronising reader over a byte stream. A start marker begins a candidate; the candidate is
/// taken when it is a complete frame that passes verification. When it is not, it never holds a
/// valid frame behind it hostage: a complete, valid frame that starts inside the candidate's extent
/// (the length its header gives, or the header alone when that length is over the limit; at most
/// what is buffered) is taken and the candidate's bytes
/// before it are skipped. A candidate that fails verification on its own is a fault (too long, bad
/// checksum, bad end marker; answered with deny), and reading goes on from its second byte. A
/// candidate still incomplete waits for more bytes, until the owner calls drop_incomplete() after a
/// silence on the line.
class frame_reader {
 public:
  void feed(std::span<const std::uint8_t> bytes);
  /// The next frame or fault from what was fed; nullopt when more bytes are needed. Call until nullopt.
  std::optional<read_result> next();
  /// Bytes held for a frame not yet complete.
  std::size_t buffered() const { return buffer_.size() - start_; }
  /// Bytes skipped: not inside a frame taken or answered (garbage, a candidate that was not a frame,
  /// what drop_incomplete() dropped).
  std::uint64_t skipped() const { return skipped_; }
  /// Drops what is held for a frame that has not completed (the line went quiet: it never will);
  /// returns how many bytes.
  std::size_t drop_incomplete();

 private:
  void consume(std::size_t n);
  void skip(std::size_t n);
  std::vector<std::uint8_t> buffer_;
  std::size_t start_{0};  ///< where unread bytes begin
  std::uint64_t skipped_{0};
};

/// Decodes exactly one frame from `bytes` (a captured frame), with every fault named, including
/// bytes missing or left over. For the technician's decoder and tests.
struct single_result {
  std::optional<gb26875::frame> frame;
  std::string error;  ///< empty when `frame` is set
};
single_result decode_one(std::span<const std::uint8_t> bytes);

}  // namespace firegate::gb26875
