#include "frame.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <stdexcept>

namespace firegate::gb26875 {
namespace {

constexpr std::uint8_t start_byte = 0x40;  // '@'
constexpr std::uint8_t end_byte = 0x23;    // '#'

void put16(std::vector<std::uint8_t>& out, std::uint16_t v) {
  out.push_back(static_cast<std::uint8_t>(v & 0xFF));
  out.push_back(static_cast<std::uint8_t>(v >> 8));
}

std::uint16_t get16(const std::uint8_t* p) {
  return static_cast<std::uint16_t>(p[0] | (p[1] << 8));
}

/// The header fields at `p` (the start marker), which must hold header_size bytes.
frame header_at(const std::uint8_t* p) {
  frame f;
  f.serial = get16(p + 2);
  f.version_main = p[4];
  f.version_user = p[5];
  f.time = {p[6], p[7], p[8], p[9], p[10], static_cast<std::uint16_t>(2000 + p[11])};
  std::copy(p + 12, p + 18, f.source.begin());
  std::copy(p + 18, p + 24, f.destination.begin());
  f.command = p[26];
  return f;
}

frame_fault fault_of(const frame& header, frame_fault::kind k, std::string detail) {
  return {k, std::move(detail), header.serial, header.source, header.destination};
}

}  // namespace

bool known_command(std::uint8_t c) {
  return (c >= command::control && c <= command::deny) || c >= 128;
}

std::string command_name(std::uint8_t c) {
  static constexpr const char* names[] = {"control", "send data", "confirm", "request", "response", "deny"};
  if (c >= 1 && c <= 6) return names[c - 1];
  if (c >= 128) return fmt::format("user-defined {}", c);
  return fmt::format("unknown {}", c);
}

bool time_label::valid() const {
  return second < 60 && minute < 60 && hour < 24 && day >= 1 && day <= 31 && month >= 1 && month <= 12 &&
         year >= 2000 && year <= 2255;
}

std::string time_label::text() const {
  return fmt::format("{:04}-{:02}-{:02} {:02}:{:02}:{:02}", year, month, day, hour, minute, second);
}

std::optional<std::chrono::system_clock::time_point> time_label::to_time_point() const {
  if (!valid()) return std::nullopt;
  std::tm tm{};
  tm.tm_sec = second;
  tm.tm_min = minute;
  tm.tm_hour = hour;
  tm.tm_mday = day;
  tm.tm_mon = month - 1;
  tm.tm_year = year - 1900;
  tm.tm_isdst = -1;
  const auto t = ::mktime(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

time_label local_time_label(std::chrono::system_clock::time_point t) {
  const auto tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  ::localtime_r(&tt, &tm);
  return {static_cast<std::uint8_t>(std::min(tm.tm_sec, 59)),
          static_cast<std::uint8_t>(tm.tm_min),
          static_cast<std::uint8_t>(tm.tm_hour),
          static_cast<std::uint8_t>(tm.tm_mday),
          static_cast<std::uint8_t>(tm.tm_mon + 1),
          static_cast<std::uint16_t>(std::clamp(tm.tm_year + 1900, 2000, 2255))};
}

std::uint8_t checksum(std::span<const std::uint8_t> bytes) {
  unsigned sum = 0;
  for (auto b : bytes) sum += b;
  return static_cast<std::uint8_t>(sum & 0xFF);
}

std::vector<std::uint8_t> encode(const frame& f) {
  if (f.data.size() > max_data_length) {
    throw std::length_error(
        fmt::format("GB/T 26875.3 application data of {} bytes; at most {}", f.data.size(), max_data_length));
  }
  std::vector<std::uint8_t> out;
  out.reserve(header_size + f.data.size() + trailer_size);
  out.push_back(start_byte);
  out.push_back(start_byte);
  put16(out, f.serial);
  out.push_back(f.version_main);
  out.push_back(f.version_user);
  const auto& t = f.time;
  for (auto b : {t.second, t.minute, t.hour, t.day, t.month}) out.push_back(b);
  out.push_back(static_cast<std::uint8_t>(std::clamp<int>(t.year - 2000, 0, 255)));
  out.insert(out.end(), f.source.begin(), f.source.end());
  out.insert(out.end(), f.destination.begin(), f.destination.end());
  put16(out, static_cast<std::uint16_t>(f.data.size()));
  out.push_back(f.command);
  out.insert(out.end(), f.data.begin(), f.data.end());
  out.push_back(checksum(std::span(out).subspan(2)));
  out.push_back(end_byte);
  out.push_back(end_byte);
  return out;
}

void frame_reader::feed(std::span<const std::uint8_t> bytes) {
  // Reclaim what was read before growing.
  if (start_ > 0 && start_ * 2 >= buffer_.size()) {
    buffer_.erase(buffer_.begin(), buffer_.begin() + static_cast<std::ptrdiff_t>(start_));
    start_ = 0;
  }
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
}

void frame_reader::consume(std::size_t n) {
  start_ += n;
  if (start_ == buffer_.size()) {
    buffer_.clear();
    start_ = 0;
  }
}

namespace {

/// The length of the complete frame at `p` (`size` bytes there) that passes verification: start
/// marker, length within the limit, end marker and checksum; 0 when there is none.
std::size_t valid_frame_at(const std::uint8_t* p, std::size_t size) {
  if (size < header_size + trailer_size || p[0] != start_byte || p[1] != start_byte) return 0;
  const auto length = get16(p + 24);
  if (length > max_data_length) return 0;
  const std::size_t total = header_size + length + trailer_size;
  if (size < total || p[total - 2] != end_byte || p[total - 1] != end_byte) return 0;
  return checksum(std::span(p + 2, header_size - 2 + length)) == p[header_size + length] ? total : 0;
}

/// Where the first complete, valid frame after the start starts, up to `limit`; 0 when none does.
std::size_t later_frame(const std::uint8_t* begin, std::size_t size, std::size_t limit) {
  for (std::size_t b = 1; b < limit && b + header_size + trailer_size <= size; ++b) {
    if (valid_frame_at(begin + b, size - b)) return b;
  }
  return 0;
}

}  // namespace

std::optional<read_result> frame_reader::next() {
  for (;;) {
    const auto* begin = buffer_.data() + start_;
    const auto size = buffer_.size() - start_;
    // Resynchronise on the start marker.
    std::size_t at = 0;
    while (at + 1 < size && !(begin[at] == start_byte && begin[at + 1] == start_byte)) ++at;
    if (at + 1 >= size) {
      // No marker: keep a last '@' that may begin one.
      const auto keep = size > 0 && begin[size - 1] == start_byte ? 1u : 0u;
      skip(size - keep);
      return std::nullopt;
    }
    if (at > 0) {
      skip(at);
      continue;
    }
    // A candidate: "@@" and what follows. Shorter than a header, no later frame can be complete.
    if (size < header_size) return std::nullopt;
    const auto header = header_at(begin);
    const auto length = get16(begin + 24);
    const bool too_long = length > max_data_length;
    const std::size_t total = header_size + length + trailer_size;
    if (total <= size && valid_frame_at(begin, size)) {
      if (!known_command(header.command)) {
        // Well-formed but for its command: a frame, answered with deny, and passed whole.
        consume(total);
        return read_result{std::nullopt, fault_of(header, frame_fault::kind::unknown_command,
                                                  fmt::format("command byte {} is not defined (1-6, 128-255)",
                                                              header.command))};
      }
      frame f = header;
      f.data.assign(begin + header_size, begin + header_size + length);
      consume(total);
      return read_result{std::move(f), std::nullopt};
    }
    // Not a valid frame (yet). Its bytes must not hold a valid frame among them hostage: a stray '@'
    // before a frame, or a frame cut short and followed by whole ones, makes a candidate whose
    // length reaches into them. A complete, valid frame starting inside its extent (its header
    // alone when its length is over the limit) wins, and the candidate's bytes before it are
    // skipped.
    if (const auto b = later_frame(begin, size, std::min(too_long ? header_size : total, size))) {
      skip(b);
      continue;
    }
    if (too_long) {
      skip(1);  // the next '@' may begin a frame
      return read_result{std::nullopt,
                         fault_of(header, frame_fault::kind::too_long,
                                  fmt::format("application data length {} is over the limit of {}", length,
                                              max_data_length))};
    }
    if (size < total) return std::nullopt;  // more bytes, or drop_incomplete() after a silence
    const auto expected = checksum(std::span(begin + 2, header_size - 2 + length));
    const auto found = begin[header_size + length];
    auto fault = expected != found
                     ? fault_of(header, frame_fault::kind::bad_checksum,
                                fmt::format("checksum 0x{:02X} expected, 0x{:02X} found", expected, found))
                     : fault_of(header, frame_fault::kind::bad_end,
                                fmt::format("end marker 23 23 expected, {:02X} {:02X} found",
                                            begin[total - 2], begin[total - 1]));
    skip(1);
    return read_result{std::nullopt, std::move(fault)};
  }
}

void frame_reader::skip(std::size_t n) {
  skipped_ += n;
  consume(n);
}

std::size_t frame_reader::drop_incomplete() {
  const auto n = buffered();
  skip(n);
  return n;
}

single_result decode_one(std::span<const std::uint8_t> bytes) {
  if (bytes.size() < 2 || bytes[0] != start_byte || bytes[1] != start_byte) {
    return {std::nullopt, bytes.size() < 2 ? "too short: a frame starts with 40 40"
                                           : fmt::format("start marker 40 40 expected, {:02X} {:02X} found",
                                                         bytes[0], bytes[1])};
  }
  if (bytes.size() < header_size) {
    return {std::nullopt,
            fmt::format("{} bytes: a frame has at least {} (header {}, checksum and end marker)",
                        bytes.size(), header_size + trailer_size, header_size)};
  }
  const auto length = get16(bytes.data() + 24);
  if (length > max_data_length) {
    return {std::nullopt,
            fmt::format("application data length {} is over the limit of {}", length, max_data_length)};
  }
  const auto total = header_size + length + trailer_size;
  if (bytes.size() != total) {
    return {
        std::nullopt,
        fmt::format("the length field says {} bytes of application data, so the frame is {} bytes; {} were "
                    "given ({})",
                    length, total, bytes.size(), bytes.size() < total ? "bytes missing" : "bytes left over")};
  }
  frame_reader reader;
  reader.feed(bytes);
  auto r = reader.next();
  if (r && r->frame) return {std::move(r->frame), {}};
  if (r && r->fault) return {std::nullopt, r->fault->detail};
  return {std::nullopt, "incomplete frame"};
}

}  // namespace firegate::gb26875
