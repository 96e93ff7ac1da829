#include "technician.hpp"

#include "domain/catalogue.hpp"
#include "modbus_error.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <set>

namespace firegate::modbus {

std::optional<register_table> parse_table(std::string_view name) {
  if (name == "holding") return register_table::holding;
  if (name == "input") return register_table::input;
  if (name == "coil") return register_table::coil;
  if (name == "discrete") return register_table::discrete_input;
  return std::nullopt;
}

namespace {

bool is_bits(register_table t) {
  return t == register_table::coil || t == register_table::discrete_input;
}

register_reply refused(std::string why) {
  return {make_error_code(modbus_errc::illegal_data_value), std::move(why), {}, {}};
}

/// The values of a read response: registers, or bits as 0 and 1.
result<std::vector<std::uint16_t>> decode_values(const read_request& r, std::span<const std::uint8_t> pdu) {
  if (is_bit_read(r.function)) {
    auto bits = decode_read_bits_response(r, pdu);
    if (!bits) return bits.error();
    return std::vector<std::uint16_t>(bits->begin(), bits->end());
  }
  return decode_read_response(r, pdu);
}

}  // namespace

void transact_registers(const pdu_sender& send, const register_request& request,
                        std::function<void(register_reply)> done) {
  const auto table = parse_table(request.table);
  if (!table) {
    return done(refused(
        fmt::format("no table \"{}\": the tables are holding, input, coil and discrete", request.table)));
  }
  if (request.unit < 1 || request.unit > 247) {
    return done(refused(fmt::format("unit {} is not a device address: give 1–247", request.unit)));
  }
  std::vector<std::uint8_t> pdu;
  if (request.values.empty()) {
    const auto max = is_bits(*table) ? max_read_bits : max_read_registers;
    if (request.count < 1 || request.count > max) {
      return done(refused(
          fmt::format("a read of {} takes 1–{} at a time, not {}", request.table, max, request.count)));
    }
    if (static_cast<std::uint32_t>(request.address) + request.count > 0x10000) {
      return done(
          refused(fmt::format("{} + {} runs past the last address 65535", request.address, request.count)));
    }
    const read_request r{read_function(*table), request.address, request.count};
    encode_request(r, pdu);
    send(request.unit, std::move(pdu),
         [r, done = std::move(done)](result<std::vector<std::uint8_t>> answer, std::chrono::microseconds t) {
           if (!answer) return done({answer.error(), answer.error().message(), {}, t});
           auto values = decode_values(r, *answer);
           if (!values) return done({values.error(), values.error().message(), {}, t});
           done({{}, {}, std::move(*values), t});
         });
    return;
  }
  if (*table == register_table::input || *table == register_table::discrete_input) {
    return done(refused(read_only_table(request.table)));  // --direct: the daemon refuses it first
  }
  write_request w;
  w.address = request.address;
  if (*table == register_table::coil) {
    if (request.values.size() > max_write_bits) {
      return done(refused(fmt::format("at most {} coils at a time", max_write_bits)));
    }
    for (auto v : request.values) {
      if (v > 1) return done(refused(fmt::format("a coil is 0 or 1, not {}", v)));
      w.bits.push_back(v == 1);
    }
    w.function = w.bits.size() == 1 ? function_code::write_single_coil : function_code::write_multiple_coils;
  } else {
    if (request.values.size() > max_write_registers) {
      return done(refused(fmt::format("at most {} registers at a time", max_write_registers)));
    }
    w.registers = request.values;
    w.function = w.registers.size() == 1 ? function_code::write_single_register
                                         : function_code::write_multiple_registers;
  }
  if (static_cast<std::uint32_t>(w.address) + request.values.size() > 0x10000) {
    return done(refused("the write runs past the last address 65535"));
  }
  encode_request(w, pdu);
  send(request.unit, std::move(pdu),
       [w, done = std::move(done)](result<std::vector<std::uint8_t>> answer, std::chrono::microseconds t) {
         if (!answer) return done({answer.error(), answer.error().message(), {}, t});
         if (auto ec = check_write_response(w, *answer)) return done({ec, ec.message(), {}, t});
         done({{}, {}, {}, t});
       });
}

std::vector<read_key> identification_reads(const profile_library& library) {
  std::vector<read_key> out;
  for (const auto& [name, profile] : library) {
    for (const auto& b : profile->gapless_blocks) {
      const read_key k{b.request.function, b.request.address, b.request.count};
      if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
    }
  }
  return out;
}

namespace {

/// The value of point `p` of block `b` in what the unit answered to that block's read.
double value_read(const point_def& p, const read_block& b, const std::vector<std::uint16_t>& regs) {
  const auto offset = static_cast<std::size_t>(p.address - b.request.address);
  return is_bit_read(b.request.function)
             ? decode_bit(p, regs[offset] != 0).value
             : decode_registers(p, std::span(regs).subspan(offset, register_span(p))).value;
}

}  // namespace

std::vector<std::string> matching_profiles(const profile_library& library,
                                           const std::map<read_key, std::vector<std::uint16_t>>& answers) {
  std::vector<std::pair<std::size_t, std::string>> fits;
  for (const auto& [name, profile] : library) {
    bool fit = !profile->gapless_blocks.empty();
    std::size_t confirmed = 0;
    for (const auto& b : profile->gapless_blocks) {
      const auto it = answers.find({b.request.function, b.request.address, b.request.count});
      if (it == answers.end() || it->second.size() != b.request.count) {
        fit = false;
        break;
      }
      for (auto i : b.points) {
        const auto& p = profile->points[i];
        if (p.labels.empty()) continue;
        if (!config::has_label(p.labels, value_read(p, b, it->second))) {
          fit = false;
          break;
        }
        ++confirmed;
      }
      if (!fit) break;
    }
    if (fit) fits.emplace_back(confirmed, name);
  }
  std::stable_sort(fits.begin(), fits.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : fits) out.push_back(std::move(f.second));
  return out;
}

namespace {

/// The labelled points of `profile` whose value was read, with that value's name: what confirms it.
std::vector<std::string> confirmations(const device_profile& profile,
                                       const std::map<read_key, std::vector<std::uint16_t>>& answers) {
  std::vector<std::string> out;
  for (const auto& b : profile.gapless_blocks) {
    const auto it = answers.find({b.request.function, b.request.address, b.request.count});
    if (it == answers.end() || it->second.size() != b.request.count) continue;
    for (auto i : b.points) {
      const auto& p = profile.points[i];
      if (p.labels.empty()) continue;
      const auto key = label_key(value_read(p, b, it->second));
      const auto label = key ? p.labels.find(*key) : p.labels.end();
      if (label != p.labels.end())
        out.push_back(fmt::format("{} reads {} ({})", p.name, *key, label->second));
    }
  }
  return out;
}

std::string table_name(register_table t) {
  switch (t) {
    case register_table::coil:
      return "coil";
    case register_table::discrete_input:
      return "discrete input";
    case register_table::input:
      return "input register";
    case register_table::holding:
      return "holding register";
  }
  return "register";
}

/// Where two fitting profiles read the same register as different things: what tells them apart.
std::string difference(const device_profile& a, const device_profile& b) {
  for (const auto& p : a.points) {
    const auto other = std::find_if(b.points.begin(), b.points.end(), [&](const point_def& q) {
      return q.table == p.table && q.address == p.address;
    });
    if (other == b.points.end()) {
      return fmt::format("{} {} (0x{:04X}) is {}'s {}{}, which {} does not have", table_name(p.table),
                         p.address, p.address, a.name, p.name, p.unit.empty() ? "" : " in " + p.unit, b.name);
    }
    if (other->name != p.name || other->unit != p.unit) {
      return fmt::format("{} {} (0x{:04X}) is {}'s {}{} but {}'s {}{}", table_name(p.table), p.address,
                         p.address, a.name, p.name, p.unit.empty() ? "" : " (" + p.unit + ")", b.name,
                         other->name, other->unit.empty() ? "" : " (" + other->unit + ")");
    }
  }
  return {};
}

}  // namespace

std::string identity_text(const profile_library& library,
                          const std::map<read_key, std::vector<std::uint16_t>>& answers,
                          const std::vector<std::string>& profiles, std::size_t reads) {
  if (profiles.empty()) {
    return fmt::format("answers, but fits no shipped profile ({} of {} reads answered)", answers.size(),
                       reads);
  }
  // Registers that all read one value (blank ones read 0) fit many maps by chance.
  std::set<std::uint16_t> values;
  for (const auto& [key, regs] : answers) values.insert(regs.begin(), regs.end());
  if (profiles.size() == 1) {
    const auto& p = *library.at(profiles.front());
    const auto confirmed = confirmations(p, answers);
    if (values.size() <= 1) {
      return fmt::format(
          "may be {}: every register it answered reads {}, as blank registers of any device would; check its "
          "nameplate",
          p.name, values.empty() ? 0 : *values.begin());
    }
    if (confirmed.empty()) {
      return fmt::format(
          "may be {}: it answers {}'s reads, but nothing read could confirm it (no value {} names was read); "
          "a "
          "meter of another make answers the same: check its nameplate",
          p.name, p.name, p.name);
    }
    return fmt::format("looks like {} ({})", p.name, fmt::join(confirmed, ", "));
  }
  std::string names;
  for (std::size_t i = 0; i < profiles.size(); ++i)
    names += (i == 0 ? "" : i + 1 == profiles.size() ? " or " : ", ") + profiles[i];
  std::vector<std::string> apart;
  for (std::size_t i = 1; i < profiles.size(); ++i) {
    if (auto d = difference(*library.at(profiles.front()), *library.at(profiles[i])); !d.empty())
      apart.push_back(std::move(d));
  }
  return fmt::format("could be {}: what it answered fits each{}", names,
                     apart.empty() ? std::string("; nothing read tells them apart: check its nameplate")
                                   : fmt::format("; to tell them apart: {}", fmt::join(apart, "; ")));
}

namespace {

/// One unit's identification, read by read; owned by the callbacks that carry it on.
struct identification : std::enable_shared_from_this<identification> {
  pdu_sender send;
  std::shared_ptr<const profile_library> library;
  std::uint8_t unit{0};
  std::vector<read_key> reads;
  std::size_t next{0};
  std::map<read_key, std::vector<std::uint16_t>> answers;
  bool answered{false};
  std::string last_error;
  std::function<void(unit_identity)> done;

  void step() {
    if (next == reads.size()) return finish();
    const auto k = reads[next++];
    const read_request r{k.function, k.address, k.count};
    std::vector<std::uint8_t> pdu;
    encode_request(r, pdu);
    send(unit, std::move(pdu),
         [self = shared_from_this(), r, k](result<std::vector<std::uint8_t>> answer,
                                           std::chrono::microseconds) {
           if (answer) {
             self->answered = true;  // an exception is an answer too
             if (auto values = decode_values(r, *answer)) {
               self->answers[k] = std::move(*values);
             } else {
               self->last_error = values.error().message();
             }
           } else {
             self->last_error = answer.error().message();
             // Nobody there: the first read tells, the rest would only cost their timeouts.
             if (!self->answered) return self->finish();
           }
           self->step();
         });
  }

  void finish() {
    unit_identity id;
    id.unit = unit;
    id.answered = answered;
    if (answered) {
      id.profiles = matching_profiles(*library, answers);
      id.detail = identity_text(*library, answers, id.profiles, reads.size());
    } else {
      id.detail = last_error.empty() ? "no answer" : last_error;
    }
    done(std::move(id));
  }
};

}  // namespace

void identify_unit(const pdu_sender& send, std::shared_ptr<const profile_library> library, std::uint8_t unit,
                   std::function<void(unit_identity)> done) {
  auto job = std::make_shared<identification>();
  job->send = send;
  job->reads = library ? identification_reads(*library) : std::vector<read_key>{};
  job->library = library ? std::move(library) : std::make_shared<const profile_library>();
  job->unit = unit;
  job->done = std::move(done);
  if (job->reads.empty()) {
    job->done({unit, false, {}, "no shipped profiles to compare with"});
    return;
  }
  job->step();
}

}  // namespace firegate::modbus
