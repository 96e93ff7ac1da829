#include "sim_fleet.hpp"

#include "modbus/modbus_error.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

namespace firegate::sim {
namespace {

using namespace std::chrono_literals;

/// A device's values at power-on, and how much each wanders (noise amplitude, engineering units).
struct start_value {
  std::string_view point;
  double value;
  double noise;
};

const std::vector<start_value>& start_values(std::string_view profile) {
  static const std::vector<start_value> sd1{
      {"state", 0, 0}, {"smoke", 0.03, 0.02}, {"temperature", 21.5, 0.3}, {"supply_voltage", 24.0, 0.05}};
  static const std::vector<start_value> efd{{"residual_current", 35, 4},
                                            {"cable_temperature_1", 28.0, 0.3},
                                            {"cable_temperature_2", 29.5, 0.3},
                                            {"cable_temperature_3", 27.0, 0.3},
                                            {"cable_temperature_4", 30.5, 0.3},
                                            {"voltage_a", 220.0, 1.5},
                                            {"voltage_b", 221.0, 1.5},
                                            {"voltage_c", 219.0, 1.5},
                                            {"current_a", 5.2, 0.2},
                                            {"current_b", 4.8, 0.2},
                                            {"current_c", 5.0, 0.2},
                                            {"leakage_alarm_setting", 300, 0},
                                            {"temperature_1_alarm_setting", 70, 0},
                                            {"temperature_2_alarm_setting", 70, 0},
                                            {"temperature_3_alarm_setting", 70, 0},
                                            {"temperature_4_alarm_setting", 70, 0},
                                            {"alarm_delay", 5.0, 0},
                                            {"mode", 1, 0}};
  static const std::vector<start_value> gd1{{"concentration", 0.4, 0.3},  {"state", 0, 0},
                                            {"low_alarm_setting", 20, 0}, {"high_alarm_setting", 50, 0},
                                            {"gas_type", 1, 0},           {"sensor_days_remaining", 700, 0}};
  static const std::vector<start_value> none;
  if (profile == "SD-1") return sd1;
  if (profile == "EFD-4T") return efd;
  if (profile.starts_with("GD-1")) return gd1;
  return none;
}

bool is_bit_table(modbus::register_table t) {
  return t == modbus::register_table::coil || t == modbus::register_table::discrete_input;
}

}  // namespace

std::optional<std::string> fleet::add(std::uint8_t unit,
                                      std::shared_ptr<const modbus::device_profile> profile) {
  if (devices_.contains(unit)) return fmt::format("unit {} is given twice", unit);
  device d;
  d.profile = std::move(profile);
  const auto make = [&](const modbus::point_def& p) {
    for (std::uint16_t i = 0; i < modbus::register_span(p); ++i) {
      const auto a = static_cast<std::uint16_t>(p.address + i);
      switch (p.table) {
        case modbus::register_table::coil:
          d.coils.try_emplace(a, false);
          break;
        case modbus::register_table::discrete_input:
          d.discrete.try_emplace(a, false);
          break;
        case modbus::register_table::holding:
          d.holding.try_emplace(a, std::uint16_t{0});
          break;
        case modbus::register_table::input:
          d.input.try_emplace(a, std::uint16_t{0});
          break;
      }
    }
  };
  for (const auto& p : d.profile->points) make(p);
  for (const auto& w : d.profile->writes) make(w.target);
  // Reserved registers between documented ones read 0, as on most devices, so a master may read
  // across small gaps in one request.
  for (auto* table : {&d.holding, &d.input}) {
    auto& reserved = table == &d.holding ? d.reserved_holding : d.reserved_input;
    std::vector<std::uint16_t> gaps;
    for (auto it = table->begin(); it != table->end() && std::next(it) != table->end(); ++it) {
      const auto next = std::next(it)->first;
      if (next - it->first <= modbus::default_max_gap + 1) {
        for (auto a = it->first + 1; a < next; ++a) gaps.push_back(static_cast<std::uint16_t>(a));
      }
    }
    for (auto a : gaps) {
      table->emplace(a, std::uint16_t{0});
      reserved.emplace(a, true);
    }
  }
  const auto& known = start_values(d.profile->name);
  for (const auto& s : known) {
    if (const auto* p = point(d, s.point)) {
      put(d, *p, s.value);
      if (s.noise > 0) {
        d.base.emplace(std::string(s.point), s.value);
        d.noise.emplace(std::string(s.point), s.noise);
      }
    }
  }
  if (known.empty()) {
    // A profile the simulator has no figures for (a site's own, a benchmark's meter): every
    // measured point (a register with a unit and no labels) starts at 25 and wanders by ten steps
    // of its resolution, so that it looks like a live sensor rather than a row of zeros.
    for (const auto& p : d.profile->points) {
      if (is_bit_table(p.table) || p.unit.empty() || !p.labels.empty()) continue;
      put(d, p, 25.0);
      d.base.emplace(p.name, 25.0);
      d.noise.emplace(p.name, 10 * std::abs(p.scale));
    }
  }
  devices_.emplace(unit, std::move(d));
  return std::nullopt;
}

std::string fleet::describe() const {
  std::string out;
  std::string name;
  std::uint8_t first = 0, last = 0;
  std::size_t count = 0;
  const auto flush = [&] {
    if (count == 0) return;
    if (!out.empty()) out += ", ";
    out += count == 1 ? fmt::format("{} (unit {})", name, first)
                      : fmt::format("{} x{} (units {}-{})", name, count, first, last);
  };
  for (const auto& [unit, d] : devices_) {
    if (count > 0 && d.profile->name == name && unit == last + 1) {
      last = unit;
      ++count;
      continue;
    }
    flush();
    name = d.profile->name;
    first = last = unit;
    count = 1;
  }
  flush();
  return out;
}

void fleet::broadcast(std::span<const std::uint8_t> pdu, steady::time_point now) {
  for (auto& [unit, d] : devices_) (void)answer(unit, pdu, now);
}

const device* fleet::find(std::uint8_t unit) const {
  auto it = devices_.find(unit);
  return it == devices_.end() ? nullptr : &it->second;
}

const modbus::point_def* fleet::point(const device& d, std::string_view name) const {
  for (const auto& p : d.profile->points) {
    if (p.name == name) return &p;
  }
  if (const auto* w = d.profile->find_write(name)) return &w->target;
  return nullptr;
}

std::uint16_t* fleet::register_of(device& d, const modbus::point_def& p) {
  auto& table = p.table == modbus::register_table::holding ? d.holding : d.input;
  auto it = table.find(p.address);
  return it == table.end() ? nullptr : &it->second;
}

void fleet::put(device& d, const modbus::point_def& p, double v) {
  if (is_bit_table(p.table)) {
    (p.table == modbus::register_table::coil ? d.coils : d.discrete)[p.address] = v != 0;
    return;
  }
  auto& table = p.table == modbus::register_table::holding ? d.holding : d.input;
  std::uint16_t regs[2]{table[p.address], 0};
  if (modbus::register_span(p) == 2) regs[1] = table[static_cast<std::uint16_t>(p.address + 1)];
  if (modbus::encode_registers(p, v, std::span(regs, modbus::register_span(p)))) return;  // does not fit
  table[p.address] = regs[0];
  if (modbus::register_span(p) == 2) table[static_cast<std::uint16_t>(p.address + 1)] = regs[1];
}

double fleet::get(const device& d, std::string_view name) const {
  const auto* p = point(d, name);
  if (p == nullptr) return 0;
  if (is_bit_table(p->table)) {
    const auto& t = p->table == modbus::register_table::coil ? d.coils : d.discrete;
    return t.at(p->address) ? 1 : 0;
  }
  const auto& table = p->table == modbus::register_table::holding ? d.holding : d.input;
  std::uint16_t regs[2]{table.at(p->address), 0};
  if (modbus::register_span(*p) == 2) regs[1] = table.at(static_cast<std::uint16_t>(p->address + 1));
  const auto v = modbus::decode_registers(*p, std::span(regs, modbus::register_span(*p)));
  return v.q == quality::good ? v.value : std::nan("");
}

std::optional<double> fleet::value(std::uint8_t unit, std::string_view name) const {
  const auto* d = find(unit);
  if (d == nullptr || point(*d, name) == nullptr) return std::nullopt;
  return get(*d, name);
}

std::optional<std::string> fleet::set(std::uint8_t unit, std::string_view field, double value,
                                      steady::time_point now) {
  auto it = devices_.find(unit);
  if (it == devices_.end()) return fmt::format("no device at unit {}", unit);
  auto& d = it->second;
  if (field == "answering") {
    d.answering = value != 0;
  } else if (field == "delay_ms") {
    if (value < 0 || value > 60000) return "delay_ms is 0-60000";
    d.delay = std::chrono::milliseconds(static_cast<long>(value));
  } else if (field == "strict") {
    d.strict = value != 0;
  } else if (field == "corrupt") {
    if (value < 0 || value > 100) return "corrupt is a percentage, 0-100";
    d.corrupt_percent = static_cast<int>(value);
  } else if (field == "junk") {
    if (value < 0 || value > 100) return "junk is a percentage, 0-100";
    d.junk_percent = static_cast<int>(value);
  } else if (const auto* p = point(d, field)) {
    std::uint16_t probe[2]{};
    if (!is_bit_table(p->table) &&
        modbus::encode_registers(*p, value, std::span(probe, modbus::register_span(*p))))
      return fmt::format("{} does not fit {} ({})", value, p->name,
                         modbus::register_span(*p) == 2 ? "32 bits" : "16 bits");
    d.ramps.erase(p->name);
    put(d, *p, value);
    if (auto b = d.base.find(p->name); b != d.base.end()) b->second = value;
    if (d.profile->name == "SD-1" && p->name == "state") {
      // A fire shows in the smoke value too; a detector back to normal reads clean air.
      auto& smoke = d.base["smoke"];
      smoke = value == 1 ? std::max(smoke, 0.25) : std::min(smoke, 0.05);
      put(d, *point(d, "smoke"), smoke);
    }
  } else {
    std::string names;
    for (const auto& q : d.profile->points) names += (names.empty() ? "" : ", ") + q.name;
    return fmt::format("{} has no \"{}\"; use one of: {}, or answering, delay_ms, corrupt, junk, strict",
                       d.profile->name, field, names);
  }
  behave(unit, d, now);
  return std::nullopt;
}

std::optional<std::string> fleet::set_invalid(std::uint8_t unit, std::string_view name,
                                              steady::time_point now) {
  auto it = devices_.find(unit);
  if (it == devices_.end()) return fmt::format("no device at unit {}", unit);
  auto& d = it->second;
  const auto* p = point(d, name);
  if (p == nullptr || p->invalid.empty())
    return fmt::format("{} has no point \"{}\" with a no-value code (invalid = [...])", d.profile->name,
                       name);
  d.ramps.erase(p->name);
  if (auto* r = register_of(d, *p)) *r = static_cast<std::uint16_t>(p->invalid.front());
  behave(unit, d, now);
  return std::nullopt;
}

std::optional<std::string> fleet::ramp(std::uint8_t unit, std::string_view name, double to, double seconds,
                                       steady::time_point now) {
  auto it = devices_.find(unit);
  if (it == devices_.end()) return fmt::format("no device at unit {}", unit);
  auto& d = it->second;
  const auto* p = point(d, name);
  if (p == nullptr || is_bit_table(p->table))
    return fmt::format("{} has no analog point \"{}\"", d.profile->name, name);
  if (seconds <= 0) return "a ramp needs a duration over 0 s";
  const auto from = d.base.contains(p->name) ? d.base[p->name] : get(d, name);
  d.ramps[p->name] = {std::isnan(from) ? 0 : from, to, now, std::chrono::duration<double>(seconds)};
  d.base.try_emplace(p->name, from);
  return std::nullopt;
}

void fleet::tick(steady::time_point now) {
  std::uniform_real_distribution<double> unit_noise(-1.0, 1.0);
  std::bernoulli_distribution change(0.2);  // values wander about once every half second
  for (auto& [unit, d] : devices_) {
    for (auto it = d.ramps.begin(); it != d.ramps.end();) {
      const auto& r = it->second;
      const double f = std::min(1.0, (now - r.start) / r.length);
      d.base[it->first] = r.from + (r.to - r.from) * f;
      it = f >= 1.0 ? d.ramps.erase(it) : std::next(it);
    }
    for (const auto& [name, base] : d.base) {
      const auto* p = point(d, name);
      if (p == nullptr) continue;
      const auto raw = register_of(d, *p);
      if (raw && std::find(p->invalid.begin(), p->invalid.end(), *raw) != p->invalid.end()) continue;  // open
      const auto noise = d.noise.find(name);
      const auto amplitude = d.ramps.contains(name) || noise == d.noise.end() ? 0.0 : noise->second;
      if (amplitude > 0 && !change(random_)) continue;
      const auto v = std::max(0.0, base + amplitude * unit_noise(random_));
      // Round to the point's resolution so the integer types take it.
      put(d, *p, std::round((v - p->offset) / p->scale) * p->scale + p->offset);
    }
    behave(unit, d, now);
  }
}

void fleet::behave(std::uint8_t, device& d, steady::time_point now) {
  const auto& name = d.profile->name;
  if (name == "EFD-4T") {
    // Alarm word bits 0-6 follow their conditions, raised after the alarm delay, cleared at once;
    // bits 7 and 8 (over-current, arc fault) are set by scripts. Mode 0 (off) raises nothing.
    const bool enabled = get(d, "mode") != 0;
    const double delay = get(d, "alarm_delay");
    const auto holds = [&](int bit, bool condition) {
      if (!condition || !enabled) {
        d.pending_alarm.erase(bit);
        return false;
      }
      auto [it, fresh] = d.pending_alarm.try_emplace(bit, now);
      return now - it->second >= std::chrono::duration<double>(delay);
    };
    std::uint16_t alarm = d.holding[0x0010] & 0x0180;
    std::uint16_t fault = d.holding[0x0011] & 0x0021;
    if (holds(0, get(d, "residual_current") >= get(d, "leakage_alarm_setting"))) alarm |= 1u << 0;
    for (int i = 1; i <= 4; ++i) {
      const auto t = get(d, fmt::format("cable_temperature_{}", i));
      if (std::isnan(t)) fault = static_cast<std::uint16_t>(fault | (1u << i));  // probe open
      if (holds(i, !std::isnan(t) && t >= get(d, fmt::format("temperature_{}_alarm_setting", i))))
        alarm = static_cast<std::uint16_t>(alarm | (1u << i));
    }
    const auto phases = {get(d, "voltage_a"), get(d, "voltage_b"), get(d, "voltage_c")};
    if (holds(5, std::ranges::any_of(phases, [](double v) { return v > 242; }))) alarm |= 1u << 5;
    if (holds(6, std::ranges::any_of(phases, [](double v) { return v < 187; }))) alarm |= 1u << 6;
    if (alarm & 0x01FF) alarm |= 0x8000;
    d.holding[0x0010] = alarm;
    d.holding[0x0011] = fault;
  } else if (name.starts_with("GD-1")) {
    // States 3 (fault) and 4 (warm-up) are set by scripts and stay; otherwise concentration decides.
    const auto state = get(d, "state");
    if (state <= 2) {
      const auto c = get(d, "concentration");
      put(d, *point(d, "state"),
          c >= get(d, "high_alarm_setting")  ? 2
          : c >= get(d, "low_alarm_setting") ? 1
                                             : 0);
    }
  }
}

bool fleet::junk(std::uint8_t unit) {
  const auto* d = find(unit);
  if (d == nullptr || d->junk_percent == 0) return false;
  return std::uniform_int_distribution<int>(1, 100)(random_) <= d->junk_percent;
}

bool fleet::corrupt(std::uint8_t unit) {
  const auto* d = find(unit);
  if (d == nullptr || d->corrupt_percent == 0) return false;
  return std::uniform_int_distribution<int>(1, 100)(random_) <= d->corrupt_percent;
}

std::optional<std::vector<std::uint8_t>> fleet::answer(std::uint8_t unit, std::span<const std::uint8_t> pdu,
                                                       steady::time_point now) {
  auto it = devices_.find(unit);
  if (it == devices_.end() || !it->second.answering) return std::nullopt;
  auto& d = it->second;
  std::vector<std::uint8_t> reply;
  const std::uint8_t function = pdu.empty() ? 0 : pdu[0];
  const auto exception = [&](std::uint8_t code) {
    modbus::encode_exception(function, code, reply);
    return reply;
  };
  auto decoded = modbus::decode_request(pdu);
  if (!decoded) return exception(decoded.error() == modbus::modbus_errc::illegal_function ? 1 : 3);
  if (const auto* read = std::get_if<modbus::read_request>(&*decoded)) {
    if (modbus::is_bit_read(read->function)) {
      const auto& table = read->function == modbus::function_code::read_coils ? d.coils : d.discrete;
      std::vector<bool> bits;
      for (std::uint32_t a = read->address; a < read->address + read->count; ++a) {
        auto b = table.find(static_cast<std::uint16_t>(a));
        if (b == table.end()) return exception(2);
        bits.push_back(b->second);
      }
      modbus::encode_read_bits_response(read->function, bits, reply);
      return reply;
    }
    // SD-1 answers fc 03 as well as fc 04 (its manual says so): its input registers either way.
    const bool input = read->function == modbus::function_code::read_input_registers ||
                       (d.profile->name == "SD-1" && !d.holding.contains(read->address));
    const auto& table = input ? d.input : d.holding;
    const auto& reserved = input ? d.reserved_input : d.reserved_holding;
    std::vector<std::uint16_t> regs;
    for (std::uint32_t a = read->address; a < read->address + read->count; ++a) {
      auto r = table.find(static_cast<std::uint16_t>(a));
      if (r == table.end()) return exception(2);  // illegal data address
      if (d.strict && reserved.contains(static_cast<std::uint16_t>(a))) return exception(2);
      regs.push_back(r->second);
    }
    modbus::encode_read_response(read->function, regs, reply);
    return reply;
  }
  const auto& write = std::get<modbus::write_request>(*decoded);
  // Only what the profile lists as writable can be written, within its range, as a device refuses
  // a read-only or unknown register (exception 2) and a value it does not accept (exception 3).
  const modbus::write_def* target = nullptr;
  for (const auto& w : d.profile->writes) {
    if (w.target.address == write.address &&
        (w.target.table == modbus::register_table::coil) == write.registers.empty())
      target = &w;
  }
  if (target == nullptr) return exception(2);
  std::uint16_t regs[2]{};
  for (std::size_t i = 0; i < write.registers.size() && i < 2; ++i) regs[i] = write.registers[i];
  if (!write.bits.empty()) regs[0] = write.bits[0] ? 1 : 0;
  if ((write.registers.size() > 0 && write.registers.size() != modbus::register_span(target->target)) ||
      write.bits.size() > 1)
    return exception(3);
  const auto v =
      modbus::decode_registers(target->target, std::span(regs, modbus::register_span(target->target)));
  if ((target->min && v.value < *target->min) || (target->max && v.value > *target->max) ||
      (!target->target.labels.empty() && !config::has_label(target->target.labels, v.value)))
    return exception(3);
  if (target->target.name == "command") {
    // Acted on at once; a command register reads 0 afterwards.
    const auto key = label_key(v.value);
    const auto label = key ? target->target.labels.find(*key) : target->target.labels.end();
    if (label != target->target.labels.end() && label->second == "reset") {
      if (d.profile->name == "SD-1") put(d, *point(d, "state"), 0);
      d.pending_alarm.clear();
    }
    if (on_command) on_command(unit, label == target->target.labels.end() ? "?" : label->second);
  } else {
    put(d, target->target, v.value);
  }
  behave(unit, d, now);
  modbus::encode_write_response(write, reply);
  return reply;
}

}  // namespace firegate::sim
