#include "app_data.hpp"

#include "gb18030.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <stdexcept>

namespace firegate::gb26875 {
namespace {

using fk = field_kind;

// Object bodies (docs/gb26875.md, "Application data"; the standard's clause 8.2.1).
constexpr field_spec system_status[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"status", fk::u16}};
constexpr field_spec component_status[] = {{"system type", fk::u8},       {"system address", fk::u8},
                                           {"component type", fk::u8},    {"component address", fk::u32},
                                           {"component status", fk::u16}, {"description", fk::text31}};
constexpr field_spec component_analog[] = {{"system type", fk::u8},    {"system address", fk::u8},
                                           {"component type", fk::u8}, {"component address", fk::u32},
                                           {"analog type", fk::u8},    {"analog value", fk::i16}};
constexpr field_spec system_operation[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"operation", fk::u8}, {"operator", fk::u8}};
constexpr field_spec system_version[] = {{"system type", fk::u8},
                                         {"system address", fk::u8},
                                         {"major version", fk::u8},
                                         {"minor version", fk::u8}};
constexpr field_spec system_config[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"configuration", fk::lstring}};
constexpr field_spec component_config[] = {{"system type", fk::u8},
                                           {"system address", fk::u8},
                                           {"component type", fk::u8},
                                           {"component address", fk::u32},
                                           {"description", fk::text31}};
constexpr field_spec system_time[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"time", fk::time6}};
constexpr field_spec uitd_status[] = {{"uitd status", fk::u8}};
constexpr field_spec uitd_operation[] = {{"operation", fk::u8}, {"operator", fk::u8}};
constexpr field_spec uitd_version[] = {{"major version", fk::u8}, {"minor version", fk::u8}};
constexpr field_spec uitd_config[] = {{"configuration", fk::lstring}};
constexpr field_spec uitd_time[] = {{"time", fk::time6}};
// Downlinks: what the centre reads names the system (and the component); UITD-directed ones carry
// a reserved byte, but for the operation records (a count and a start time) and the clock (the time).
constexpr field_spec read_system[] = {{"system type", fk::u8}, {"system address", fk::u8}};
constexpr field_spec read_component[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"component address", fk::u32}};
constexpr field_spec read_records[] = {
    {"system type", fk::u8}, {"system address", fk::u8}, {"count", fk::u8}, {"start time", fk::time6}};
constexpr field_spec reserved[] = {{"reserved", fk::u8}};
constexpr field_spec uitd_records[] = {{"count", fk::u8}, {"start time", fk::time6}};
constexpr field_spec set_time[] = {{"time", fk::time6}};

// Only the status, analog and operation types carry a time label after each object (1-4, 21, 24:
// figures 18-21, 26, 27). Versions and configurations have none (5-7, 25, 26: figures 22-24, 28,
// 29); in the system times (8, 28: figures 25, 30) the time is the object itself. The reads of the
// facility name up to as many systems or components as the answer's type allows (clause 8.3.2).
constexpr type_spec types[] = {
    {1, "building fire-facility system status", 102, system_status, true, true},
    {2, "component running status", 22, component_status, true, true},
    {3, "component analog value", 63, component_analog, true, true},
    {4, "facility operation information", 102, system_operation, true, true},
    {5, "facility software version", 1, system_version, false, true},
    {6, "facility system configuration", 3, system_config, false, true},
    {7, "component configuration", 26, component_config, false, true},
    {8, "facility system time", 1, system_time, false, true},
    {21, "UITD running status", 1, uitd_status, true, true},
    {24, "UITD operation information", 127, uitd_operation, true, true},
    {25, "UITD software version", 1, uitd_version, false, true},
    {26, "UITD configuration", 1, uitd_config, false, true},
    {28, "UITD system time", 1, uitd_time, false, true},
    {61, "read facility system status", 102, read_system, false, false},
    {62, "read component running status", 22, read_component, false, false},
    {63, "read component analog value", 63, read_component, false, false},
    {64, "read facility operation information", 1, read_records, false, false},
    {65, "read facility software version", 1, read_system, false, false},
    {66, "read facility system configuration", 3, read_system, false, false},
    {67, "read component configuration", 26, read_component, false, false},
    {68, "read facility system time", 1, read_system, false, false},
    {81, "read UITD running status", 1, reserved, false, false},
    {84, "read UITD operation records", 1, uitd_records, false, false},
    {85, "read UITD software version", 1, reserved, false, false},
    {86, "read UITD configuration", 1, reserved, false, false},
    {88, "read UITD system time", 1, reserved, false, false},
    {89, "initialise UITD", 1, reserved, false, false},
    {90, "synchronise UITD clock", 1, set_time, false, false},
    {91, "inspection check (duty person)", 1, reserved, false, false},
};

std::size_t width(field_kind k) {
  switch (k) {
    case fk::u8:
      return 1;
    case fk::u16:
    case fk::i16:
      return 2;
    case fk::u32:
      return 4;
    case fk::time6:
      return 6;
    case fk::text31:
      return 31;
    case fk::lstring:
      return 1;  // the length byte; the text follows
  }
  return 0;
}

void put_time(std::vector<std::uint8_t>& out, const time_label& t) {
  for (auto b : {t.second, t.minute, t.hour, t.day, t.month}) out.push_back(b);
  out.push_back(static_cast<std::uint8_t>(std::clamp<int>(t.year - 2000, 0, 255)));
}

time_label get_time(const std::uint8_t* p) {
  return {p[0], p[1], p[2], p[3], p[4], static_cast<std::uint16_t>(2000 + p[5])};
}

[[noreturn]] void refuse(const type_spec& t, std::size_t object, const field_spec& f,
                         const std::string& why) {
  throw std::invalid_argument(
      fmt::format("type {} ({}), object {}, {}: {}", t.code, t.name, object + 1, f.name, why));
}

void put_field(std::vector<std::uint8_t>& out, const type_spec& t, std::size_t object, const field_spec& f,
               const field_value& v) {
  if (f.kind == fk::time6) {
    const auto* time = std::get_if<time_label>(&v);
    if (!time) refuse(t, object, f, "a time label is expected");
    put_time(out, *time);
    return;
  }
  if (f.kind == fk::text31 || f.kind == fk::lstring) {
    const auto* text = std::get_if<std::string>(&v);
    if (!text) refuse(t, object, f, "text (bytes) is expected");
    const std::size_t limit = f.kind == fk::text31 ? 31 : 255;
    if (text->size() > limit) refuse(t, object, f, fmt::format("{} bytes; at most {}", text->size(), limit));
    if (f.kind == fk::lstring) out.push_back(static_cast<std::uint8_t>(text->size()));
    out.insert(out.end(), text->begin(), text->end());
    if (f.kind == fk::text31) out.insert(out.end(), 31 - text->size(), 0);
    return;
  }
  const auto* n = std::get_if<std::int64_t>(&v);
  if (!n) refuse(t, object, f, "a number is expected");
  const auto value = *n;
  const auto [lo, hi] = f.kind == fk::u8    ? std::pair<std::int64_t, std::int64_t>{0, 0xFF}
                        : f.kind == fk::u16 ? std::pair<std::int64_t, std::int64_t>{0, 0xFFFF}
                        : f.kind == fk::i16 ? std::pair<std::int64_t, std::int64_t>{-32768, 32767}
                                            : std::pair<std::int64_t, std::int64_t>{0, 0xFFFFFFFF};
  if (value < lo || value > hi) refuse(t, object, f, fmt::format("{} is outside {}..{}", value, lo, hi));
  const auto u = static_cast<std::uint64_t>(value);
  for (std::size_t i = 0; i < width(f.kind); ++i)
    out.push_back(static_cast<std::uint8_t>((u >> (8 * i)) & 0xFF));
}

}  // namespace

const type_spec* find_type(std::uint8_t code) {
  for (const auto& t : types) {
    if (t.code == code) return &t;
  }
  return nullptr;
}

std::span<const type_spec> all_types() {
  return types;
}

std::vector<std::uint8_t> encode(const app_data& d) {
  const auto* t = find_type(d.type);
  if (!t) throw std::invalid_argument(fmt::format("type {} is not in the table", d.type));
  if (d.objects.empty() || d.objects.size() > t->max_objects) {
    throw std::invalid_argument(fmt::format("type {} ({}): {} objects; 1 to {} are allowed", t->code, t->name,
                                            d.objects.size(), t->max_objects));
  }
  std::vector<std::uint8_t> out{t->code, static_cast<std::uint8_t>(d.objects.size())};
  for (std::size_t i = 0; i < d.objects.size(); ++i) {
    const auto& o = d.objects[i];
    if (o.values.size() != t->fields.size()) {
      throw std::invalid_argument(fmt::format("type {} ({}), object {}: {} values; its fields are {}",
                                              t->code, t->name, i + 1, o.values.size(), t->fields.size()));
    }
    for (std::size_t f = 0; f < t->fields.size(); ++f) put_field(out, *t, i, t->fields[f], o.values[f]);
    if (t->time_label) {
      put_time(out, o.time.value_or(time_label{}));
    } else if (o.time) {
      throw std::invalid_argument(fmt::format(
          "type {} ({}), object {}: this type has no time label after its objects", t->code, t->name, i + 1));
    }
  }
  return out;
}

std::optional<app_data> decode_app_data(std::span<const std::uint8_t> bytes, std::string& error) {
  if (bytes.size() < 2) {
    error = fmt::format("{} bytes: application data starts with a type and a count", bytes.size());
    return std::nullopt;
  }
  const auto* t = find_type(bytes[0]);
  if (!t) {
    error = fmt::format("type {} is not in the table", bytes[0]);
    return std::nullopt;
  }
  const std::size_t count = bytes[1];
  if (count == 0 || count > t->max_objects) {
    error =
        fmt::format("type {} ({}): {} objects; 1 to {} are allowed", t->code, t->name, count, t->max_objects);
    return std::nullopt;
  }
  app_data d;
  d.type = t->code;
  std::size_t at = 2;
  for (std::size_t i = 0; i < count; ++i) {
    info_object o;
    for (const auto& f : t->fields) {
      auto need = width(f.kind);
      if (f.kind == fk::lstring && at < bytes.size()) need += bytes[at];
      if (at + need > bytes.size()) {
        error = fmt::format("type {} ({}), object {}, {}: {} bytes needed, {} left", t->code, t->name, i + 1,
                            f.name, need, bytes.size() - at);
        return std::nullopt;
      }
      const auto* p = bytes.data() + at;
      switch (f.kind) {
        case fk::u8:
          o.values.emplace_back(std::int64_t{p[0]});
          break;
        case fk::u16:
          o.values.emplace_back(std::int64_t{p[0] | (p[1] << 8)});
          break;
        case fk::i16:
          o.values.emplace_back(std::int64_t{static_cast<std::int16_t>(p[0] | (p[1] << 8))});
          break;
        case fk::u32:
          o.values.emplace_back(static_cast<std::int64_t>(std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) |
                                                          (std::uint32_t{p[2]} << 16) |
                                                          (std::uint32_t{p[3]} << 24)));
          break;
        case fk::time6:
          o.values.emplace_back(get_time(p));
          break;
        case fk::text31: {
          std::string text(reinterpret_cast<const char*>(p), 31);
          text.erase(std::find(text.begin(), text.end(), '\0'), text.end());
          o.values.emplace_back(std::move(text));
          break;
        }
        case fk::lstring:
          o.values.emplace_back(std::string(reinterpret_cast<const char*>(p + 1), p[0]));
          break;
      }
      at += need;
    }
    if (t->time_label) {
      if (at + 6 > bytes.size()) {
        error = fmt::format("type {} ({}), object {}: its time label needs 6 bytes, {} left", t->code,
                            t->name, i + 1, bytes.size() - at);
        return std::nullopt;
      }
      o.time = get_time(bytes.data() + at);
      at += 6;
    }
    d.objects.push_back(std::move(o));
  }
  if (at != bytes.size()) {
    error = fmt::format("type {} ({}): {} bytes left over after {} objects", t->code, t->name,
                        bytes.size() - at, count);
    return std::nullopt;
  }
  return d;
}

std::vector<app_data> split(const app_data& d) {
  const auto* t = find_type(d.type);
  if (!t) throw std::invalid_argument(fmt::format("type {} is not in the table", d.type));
  if (d.objects.empty())
    throw std::invalid_argument(fmt::format("type {} ({}): no objects to send", t->code, t->name));
  std::vector<app_data> parts;
  std::size_t bytes = 0;
  for (const auto& o : d.objects) {
    const auto size = encode(app_data{d.type, {o}}).size() - 2;  // the object alone
    if (parts.empty() || parts.back().objects.size() >= t->max_objects || bytes + size > max_data_length) {
      parts.push_back(app_data{d.type, {}});
      bytes = 2;
    }
    parts.back().objects.push_back(o);
    bytes += size;
  }
  return parts;
}

std::string_view system_type_name(std::int64_t code) {
  static const std::map<std::int64_t, std::string_view> names{
      {0, "general"},
      {1, "fire alarm system"},
      {10, "fire linkage controller"},
      {11, "fire hydrant system"},
      {12, "automatic sprinkler system"},
      {13, "gas extinguishing system"},
      {14, "water spray extinguishing system (pump)"},
      {15, "water spray extinguishing system (pressure tank)"},
      {16, "foam extinguishing system"},
      {17, "dry powder extinguishing system"},
      {18, "smoke control system"},
      {19, "fire doors and shutters"},
      {20, "fire elevator"},
      {21, "emergency broadcast"},
      {22, "emergency lighting and evacuation signs"},
      {23, "fire power supply"},
      {24, "fire telephone"},
      {0x81, "electrical fire monitoring system (vendor code)"}};
  const auto it = names.find(code);
  return it == names.end() ? std::string_view("unknown") : it->second;
}

std::string_view component_type_name(std::int64_t code) {
  static const std::map<std::int64_t, std::string_view> names{
      {0, "general"},
      {1, "fire alarm controller"},
      {10, "combustible gas detector"},
      {11, "point combustible gas detector"},
      {12, "independent combustible gas detector"},
      {13, "line-type combustible gas detector"},
      {16, "electrical-fire monitoring unit"},
      {17, "residual-current electrical-fire detector"},
      {18, "temperature electrical-fire detector"},
      {23, "manual call point"},
      {25, "fire detector"},
      {30, "heat detector"},
      {31, "point heat detector"},
      {32, "point fixed-temperature heat detector"},
      {33, "point rate-of-rise heat detector"},
      {34, "point rate-compensated heat detector"},
      {35, "line heat detector"},
      {36, "line fixed-temperature heat detector"},
      {37, "line rate-of-rise heat detector"},
      {40, "smoke detector"},
      {41, "ionisation smoke detector"},
      {42, "photoelectric smoke detector"},
      {43, "beam smoke detector"},
      {44, "aspirating smoke detector"},
      {50, "multi-sensor detector"},
      {51, "smoke and heat detector"},
      {52, "smoke and heat multi-sensor"},
      {53, "smoke, heat and CO detector"},
      {61, "ultraviolet flame detector"},
      {62, "infrared flame detector"},
      {74, "gas detector"},
      {121, "alarm device"}};
  const auto it = names.find(code);
  return it == names.end() ? std::string_view("unknown") : it->second;
}

std::string_view analog_type_name(std::int64_t code) {
  static const std::map<std::int64_t, std::string_view> names{{3, "temperature (0.1 °C)"},
                                                              {4, "pressure (0.1 MPa)"},
                                                              {6, "gas concentration (0.1 %LEL)"},
                                                              {8, "voltage (0.1 V)"},
                                                              {9, "current (0.1 A)"}};
  if (code >= 128 && code <= 255) return "user-defined";
  const auto it = names.find(code);
  return it == names.end() ? std::string_view("unknown") : it->second;
}

std::string analog_value_text(std::int64_t code, std::int64_t raw) {
  // Each of these types counts in tenths of its unit, as the standard's list of analog types says.
  static const std::map<std::int64_t, std::string_view> tenths{
      {3, "°C"}, {4, "MPa"}, {6, "%LEL"}, {8, "V"}, {9, "A"}};
  const auto it = tenths.find(code);
  if (it == tenths.end()) return {};
  return fmt::format("{:.1f} {}", static_cast<double>(raw) / 10.0, it->second);
}

std::string status_bits(status_kind kind, std::int64_t value) {
  static constexpr std::array<std::string_view, 14> system{"normal",
                                                           "fire alarm",
                                                           "fault",
                                                           "shielded",
                                                           "supervisory",
                                                           "started",
                                                           "feedback",
                                                           "delay",
                                                           "main power fault",
                                                           "backup power fault",
                                                           "bus fault",
                                                           "manual mode",
                                                           "configuration changed",
                                                           "reset"};
  static constexpr std::array<std::string_view, 9> component{"normal",   "fire alarm",  "fault",
                                                             "shielded", "supervisory", "started",
                                                             "feedback", "delay",       "power fault"};
  static constexpr std::array<std::string_view, 7> uitd{
      "normal monitoring",     "fire alarm",          "fault", "main power fault", "backup power fault",
      "link to centre faulty", "monitored-line fault"};
  static constexpr std::array<std::string_view, 7> operation{
      "reset", "silence", "manual alarm", "alarm cleared", "self-check", "confirm / inspection reply",
      "test"};
  using names_t = std::span<const std::string_view>;
  const names_t names = kind == status_kind::system      ? names_t(system)
                        : kind == status_kind::component ? names_t(component)
                        : kind == status_kind::uitd      ? names_t(uitd)
                                                         : names_t(operation);
  std::string out;
  for (std::size_t bit = 0; bit < 16; ++bit) {
    if (!(value & (std::int64_t{1} << bit))) continue;
    out += out.empty() ? "" : ", ";
    out += bit < names.size() ? std::string(names[bit]) : fmt::format("bit {}", bit);
  }
  // Bit 0 clear on a system or component means test mode.
  if ((kind == status_kind::system || kind == status_kind::component) && !(value & 1))
    out = out.empty() ? "test" : "test, " + out;
  return out.empty() ? "none" : out;
}

std::vector<std::string> describe(const app_data& d) {
  std::vector<std::string> lines;
  const auto* t = find_type(d.type);
  if (!t) return {fmt::format("type {} (not in the table)", d.type)};
  lines.push_back(fmt::format("type {} ({}), {} object{}", t->code, t->name, d.objects.size(),
                              d.objects.size() == 1 ? "" : "s"));
  for (std::size_t i = 0; i < d.objects.size(); ++i) {
    const auto& o = d.objects[i];
    std::optional<std::int64_t> analog_type;  // the object's, for its value's unit
    for (std::size_t f = 0; f < t->fields.size() && f < o.values.size(); ++f) {
      const auto& spec = t->fields[f];
      const auto& v = o.values[f];
      std::string text;
      if (const auto* n = std::get_if<std::int64_t>(&v)) {
        text = std::to_string(*n);
        if (spec.name == "system type") text += fmt::format(" ({})", system_type_name(*n));
        if (spec.name == "component type") text += fmt::format(" ({})", component_type_name(*n));
        if (spec.name == "analog type") {
          text += fmt::format(" ({})", analog_type_name(*n));
          analog_type = *n;
        }
        if (spec.name == "analog value" && analog_type) {
          if (const auto value = analog_value_text(*analog_type, *n); !value.empty())
            text += fmt::format(" ({})", value);
        }
        if (spec.name == "component address") text = fmt::format("{} (0x{:08X})", *n, *n);
        if (spec.name == "status")
          text += fmt::format(" (0x{:04X}: {})", *n, status_bits(status_kind::system, *n));
        if (spec.name == "component status")
          text += fmt::format(" (0x{:04X}: {})", *n, status_bits(status_kind::component, *n));
        if (spec.name == "uitd status")
          text += fmt::format(" (0x{:02X}: {})", *n, status_bits(status_kind::uitd, *n));
        if (spec.name == "operation")
          text += fmt::format(" (0x{:02X}: {})", *n, status_bits(status_kind::operation, *n));
      } else if (const auto* s = std::get_if<std::string>(&v)) {
        // GB 18030, shown as text with its bytes (a centre's log may need them).
        std::string hex;
        for (char c : *s) hex += fmt::format("{:02X}", static_cast<unsigned char>(c));
        text = fmt::format("\"{}\" ({} bytes{}{})", from_gb18030(*s), s->size(), hex.empty() ? "" : " ", hex);
      } else {
        text = std::get<time_label>(v).text();
      }
      lines.push_back(fmt::format("  object {}  {} = {}", i + 1, spec.name, text));
    }
    if (o.time) lines.push_back(fmt::format("  object {}  time = {}", i + 1, o.time->text()));
  }
  return lines;
}

}  // namespace firegate::gb26875
