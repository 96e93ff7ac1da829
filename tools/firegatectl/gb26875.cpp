#include "gb26875.hpp"

#include "client.hpp"
#include "gb26875/app_data.hpp"
#include "gb26875/frame.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cctype>
#include <optional>
#include <ostream>
#include <sstream>

namespace firegatectl {
namespace {

using namespace firegate::gb26875;

/// The bytes of a hex dump, or nullopt with `error` naming the first character that is not one.
std::optional<std::vector<std::uint8_t>> parse_hex(const std::string& text, std::string& error) {
  std::vector<std::uint8_t> out;
  std::string digits;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '0' && i + 1 < text.size() && (text[i + 1] == 'x' || text[i + 1] == 'X') &&
        (i == 0 || !std::isxdigit(static_cast<unsigned char>(text[i - 1])))) {
      ++i;  // a 0x prefix
      continue;
    }
    if (std::isxdigit(static_cast<unsigned char>(c))) {
      digits += c;
    } else if (!std::isspace(static_cast<unsigned char>(c)) && c != ':' && c != ',' && c != '-') {
      error = fmt::format("'{}' at position {} is not a hex digit", c, i + 1);
      return std::nullopt;
    }
  }
  if (digits.size() % 2 != 0) {
    error = fmt::format("{} hex digits: an odd number (a byte is two)", digits.size());
    return std::nullopt;
  }
  for (std::size_t i = 0; i < digits.size(); i += 2)
    out.push_back(static_cast<std::uint8_t>(std::stoul(digits.substr(i, 2), nullptr, 16)));
  return out;
}

std::string hex_of(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (auto b : bytes) out += fmt::format("{}{:02X}", out.empty() ? "" : " ", b);
  return out;
}

/// An address as the configuration writes it (uitd_address = 889: the six bytes, low byte first)
/// beside its bytes.
std::uint64_t address_number(const address& a) {
  std::uint64_t n = 0;
  for (std::size_t i = a.size(); i-- > 0;) n = (n << 8) | a[i];
  return n;
}
std::string address_text(const address& a) {
  return fmt::format("{} ({})", address_number(a), hex_of(a));
}

/// The bytes of a text of hex lines, as a log or a pasted dump has them: on each line, the tokens of
/// two hex digits (so a log line's time and words are left out), or the whole line when it is one
/// run of hex digits; "0x" prefixes and trailing commas and colons allowed.
std::vector<std::uint8_t> bytes_of_lines(const std::string& text) {
  std::vector<std::uint8_t> out;
  std::istringstream lines(text);
  for (std::string line; std::getline(lines, line);) {
    std::vector<std::string> tokens;
    std::istringstream words(line);
    for (std::string w; words >> w;) {
      if (w.starts_with("0x") || w.starts_with("0X")) w = w.substr(2);
      while (!w.empty() && (w.back() == ',' || w.back() == ':')) w.pop_back();
      tokens.push_back(w);
    }
    const auto hex = [](const std::string& t) {
      return !t.empty() && t.size() % 2 == 0 &&
             std::all_of(t.begin(), t.end(), [](unsigned char c) { return std::isxdigit(c) != 0; });
    };
    for (const auto& t : tokens) {
      if (!hex(t) || (t.size() > 2 && tokens.size() > 1)) continue;
      for (std::size_t i = 0; i < t.size(); i += 2)
        out.push_back(static_cast<std::uint8_t>(std::stoul(t.substr(i, 2), nullptr, 16)));
    }
  }
  return out;
}

/// One frame, whole and verified: its fields, to `out` (as JSON: on one line when `one_line`).
void print_frame(std::span<const std::uint8_t> bytes, const frame& f, bool as_json, std::ostream& out,
                 bool one_line = false) {
  std::optional<app_data> data;
  std::string data_error;
  if (!f.data.empty()) data = decode_app_data(f.data, data_error);
  const auto sum = bytes[header_size + f.data.size()];
  if (as_json) {
    nlohmann::json j{{"serial", f.serial},
                     {"version", fmt::format("{}.{}", f.version_main, f.version_user)},
                     {"time", f.time.text()},
                     {"source", address_number(f.source)},
                     {"source_bytes", hex_of(f.source)},
                     {"destination", address_number(f.destination)},
                     {"destination_bytes", hex_of(f.destination)},
                     {"length", f.data.size()},
                     {"command", f.command},
                     {"command_name", command_name(f.command)},
                     {"checksum", fmt::format("0x{:02X}", sum)}};
    if (data) {
      j["type"] = data->type;
      j["fields"] = describe(*data);
    } else if (!f.data.empty()) {
      j["data"] = hex_of(f.data);
      j["data_error"] = data_error;
    }
    out << (one_line ? j.dump() : j.dump(2)) << "\n";
    return;
  }
  out << fmt::format("frame        {} bytes, checksum 0x{:02X} ok, markers ok\n", bytes.size(), sum);
  out << fmt::format("serial       {}\n", f.serial);
  out << fmt::format("version      {}.{}\n", f.version_main, f.version_user);
  out << fmt::format("time         {}{}\n", f.time.text(), f.time.valid() ? "" : " (not a valid time)");
  out << fmt::format("source       {}\n", address_text(f.source));
  out << fmt::format("destination  {}\n", address_text(f.destination));
  out << fmt::format("command      {} ({})\n", f.command, command_name(f.command));
  out << fmt::format("data         {} bytes{}\n", f.data.size(),
                     f.data.empty() ? (f.command == command::send_data ? " (a heartbeat)" : "") : "");
  if (data) {
    for (const auto& line : describe(*data)) out << "  " << line << "\n";
  } else if (!f.data.empty()) {
    out << "  " << hex_of(f.data) << "\n";
    out << "  application data not decoded: " << data_error << "\n";
  }
}

}  // namespace

int gb26875_decode(const std::string& hex, bool as_json, std::ostream& out, std::ostream& err) {
  std::string error;
  const auto bytes = parse_hex(hex, error);
  if (!bytes) {
    err << "not a hex dump: " << error << "\n";
    return exit_code::usage;
  }
  const auto decoded = decode_one(*bytes);
  if (!decoded.frame) {
    err << "not a valid GB/T 26875.3 frame (" << bytes->size() << " bytes): " << decoded.error << "\n";
    return exit_code::refused;
  }
  print_frame(*bytes, *decoded.frame, as_json, out);
  return exit_code::ok;
}

int gb26875_decode_stream(std::istream& in, bool as_json, std::ostream& out, std::ostream& err) {
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // Text (hex lines: a log, a pasted dump) or the raw bytes of a capture, which are not all text.
  const bool raw = !std::all_of(text.begin(), text.end(), [](unsigned char c) {
    return (c >= 0x20 && c < 0x7F) || c == '\n' || c == '\r' || c == '\t';
  });
  const auto bytes = raw ? std::vector<std::uint8_t>(text.begin(), text.end()) : bytes_of_lines(text);
  frame_reader reader;
  reader.feed(bytes);
  std::size_t frames = 0, faults = 0;
  while (auto r = reader.next()) {
    if (r->frame) {
      ++frames;
      const auto encoded = encode(*r->frame);
      if (!as_json) out << fmt::format("{}-- frame {} --\n", frames + faults == 1 ? "" : "\n", frames);
      print_frame(encoded, *r->frame, as_json, out, /*one_line=*/true);  // JSON: one frame a line
    } else if (r->fault) {
      ++faults;
      err << fmt::format("not a frame (serial {}): {}\n", r->fault->serial, r->fault->detail);
    }
  }
  const auto incomplete = reader.buffered();
  err << fmt::format(
      "{} frame{}, {} not a frame, {} byte{} outside any frame{}{}\n", frames, frames == 1 ? "" : "s", faults,
      reader.skipped(), reader.skipped() == 1 ? "" : "s",
      incomplete > 0 ? fmt::format(", {} bytes of a frame cut off at the end", incomplete) : "",
      raw ? " (read as raw bytes: the input is not a hex dump)" : "");
  return frames > 0 && faults == 0 ? exit_code::ok : exit_code::refused;
}

}  // namespace firegatectl
