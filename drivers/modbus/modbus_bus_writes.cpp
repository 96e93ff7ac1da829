// A Modbus bus's writes (modbus_bus_state.hpp): a value checked against the profile's [[writes]]
// entry, written, and read back; a broadcast to every unit at once.

#include "modbus_bus_state.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <spdlog/spdlog.h>
#include <boost/asio/use_awaitable.hpp>

namespace firegate::modbus::detail {
namespace asio = boost::asio;
using namespace std::chrono_literals;

write_outcome bus::invalid(std::string detail) {
  return write_outcome{std::make_error_code(std::errc::invalid_argument), false, std::move(detail)};
}

std::optional<std::string> bus::build_write(const device_profile& profile, const write_def& w, double value,
                                            write_request& request, std::uint16_t (&regs)[2]) {
  const auto& p = w.target;
  if ((w.min && value < *w.min) || (w.max && value > *w.max) ||
      (!p.labels.empty() && !config::has_label(p.labels, value))) {
    return fmt::format("{} is outside what {} accepts for {} (min {}, max {}{})", value, profile.name, p.name,
                       w.min ? fmt::format("{}", *w.min) : "-", w.max ? fmt::format("{}", *w.max) : "-",
                       p.labels.empty() ? "" : ", one of the labelled values");
  }
  if (auto ec = encode_registers(p, value, std::span(regs, register_span(p)))) {
    return fmt::format("{} does not fit {} ({})", value, p.name, ec.message());
  }
  request = {function_code::write_single_register, p.address, {}, {}};
  if (p.table == register_table::coil) {
    request.function = function_code::write_single_coil;
    request.bits = {regs[0] != 0};
  } else if (register_span(p) == 2) {
    request.function = function_code::write_multiple_registers;
    request.registers = {regs[0], regs[1]};
  } else {
    request.registers = {regs[0]};
  }
  return std::nullopt;
}

std::string bus::writables(const device_profile& profile) {
  std::vector<std::string> names;
  for (const auto& x : profile.writes) names.push_back(x.target.name);
  return names.empty() ? std::string("none") : fmt::format("{}", fmt::join(names, ", "));
}

awaitable<write_outcome> bus::do_write(const write_command& c, worker& wk) {
  if (c.device == broadcast_device) co_return co_await do_broadcast(c, wk);
  auto it = std::find_if(devices_.begin(), devices_.end(),
                         [&](const device_state& s) { return s.settings->name == c.device; });
  if (it == devices_.end()) co_return invalid(fmt::format("no device \"{}\" on bus {}", c.device, name_));
  auto& d = *it;
  const auto& profile = *d.settings->profile;
  const auto* w = profile.find_write(c.target);
  if (!w) {
    co_return invalid(fmt::format("profile {} has no writable \"{}\"; it has: {}", profile.name, c.target,
                                  writables(profile)));
  }
  const auto& p = w->target;
  std::uint16_t regs[2]{};
  write_request request;
  if (auto refused = build_write(profile, *w, c.value, request, regs)) co_return invalid(std::move(*refused));
  if (c.only_if_differs) {
    auto ec = co_await read_back(d, p, request, regs, wk);
    if (!ec) {
      spdlog::info(
          "modbus write not needed bus={} device={} addr={} target={} value={} reason=\"reads back "
          "at the value already\"",
          name_, c.device, where(d), p.name, c.value);
      co_return write_outcome{
          {},
          true,
          fmt::format("{} {} reads {} at {} already; nothing written", c.device, p.name, c.value, where(d)),
          true};
    }
    // Unreadable (a timeout, an exception): written all the same, as a safety output must be. A
    // timeout closes a TCP connection to resynchronise: opened again for the write.
    if (ec != modbus_errc::readback_mismatch) {
      spdlog::warn(
          "modbus read before a write failed bus={} device={} addr={} target={} error=\"{}\" "
          "action=\"writing all the same\"",
          name_, c.device, where(d), p.name, ec.message());
      while (opening_ && !stopped_) co_await wait_opening(wk);  // another worker reopens it
      if (stopped_) {
        // The bus stopped meanwhile (a reload): the line is the next bus's now, not this write's.
        ++d.counters.writes;
        co_return write_failed(d, c, p, make_error_code(std::errc::operation_canceled), "the bus stopped");
      }
      if (!transport_->is_open()) {
        auto failed = co_await reopen();
        if (failed) {
          ++d.counters.writes;
          // reopen counted it as a failure of every device on the bus, this one too
          co_return write_failed(d, c, p, failed, "reopen before the write", true);
        }
      }
    }
  }
  ++d.counters.writes;
  wk.request.clear();
  encode_request(request, wk.request);
  auto pdu = co_await exchange(d, wk.request);
  std::error_code ec = pdu ? check_write_response(request, *pdu) : pdu.error();
  if (ec) co_return write_failed(d, c, p, ec, "write");
  count_response(d);
  bool verified = false;
  if (w->verify) {
    if (auto back = co_await read_back(d, p, request, regs, wk))
      co_return write_failed(d, c, p, back, "read-back");
    verified = true;
  }
  const auto key = label_key(c.value);
  const auto label = key ? p.labels.find(*key) : p.labels.end();
  spdlog::info("modbus write bus={} device={} addr={} target={} value={}{} verified={}", name_, c.device,
               where(d), p.name, c.value,
               label == p.labels.end() ? std::string() : fmt::format(" label={}", label->second), verified);
  co_return write_outcome{{},
                          verified,
                          fmt::format("{} {}={} written at {}{}", c.device, p.name, c.value, where(d),
                                      verified ? " and read back" : "")};
}

write_outcome bus::write_failed(device_state& d, const write_command& c, const point_def& p,
                                std::error_code ec, std::string_view stage, bool error_counted) {
  ++d.counters.write_failures;
  if (!error_counted) count_error(d, ec);
  auto detail =
      fmt::format("{} {}={} at {}: {} failed: {}", c.device, p.name, c.value, where(d), stage, ec.message());
  spdlog::warn("modbus write failed bus={} device={} addr={} target={} value={} stage={} error=\"{}\"", name_,
               c.device, where(d), p.name, c.value, stage, ec.message());
  return write_outcome{ec, false, std::move(detail)};
}

awaitable<std::error_code> bus::read_back(device_state& d, const point_def& p, const write_request& request,
                                          const std::uint16_t (&regs)[2], worker& wk) {
  const read_request back{read_function(p.table), p.address, register_span(p)};
  wk.request.clear();
  encode_request(back, wk.request);
  auto answer = co_await exchange(d, wk.request);
  if (!answer) co_return answer.error();
  if (p.table == register_table::coil) {
    auto bits = decode_read_bits_response(back, *answer);
    if (!bits) co_return bits.error();
    count_response(d);
    co_return (*bits)[0] != request.bits[0] ? make_error_code(modbus_errc::readback_mismatch)
                                            : std::error_code{};
  }
  auto got = decode_read_response(back, *answer);
  if (!got) co_return got.error();
  count_response(d);
  co_return std::equal(got->begin(), got->end(), regs) ? std::error_code{}
                                                       : make_error_code(modbus_errc::readback_mismatch);
}

awaitable<write_outcome> bus::do_broadcast(const write_command& c, worker& wk) {
  const write_def* w = nullptr;
  const device_profile* profile = nullptr;
  for (const auto& d : devices_) {
    const auto* mine = d.settings->profile->find_write(c.target);
    if (!mine) continue;
    if (w && (mine->target.table != w->target.table || mine->target.address != w->target.address ||
              register_span(mine->target) != register_span(w->target))) {
      co_return invalid(fmt::format(
          "\"{}\" is at different places in {} and {} on bus {}: a broadcast would mean different things "
          "to them; write each device instead",
          c.target, profile->name, d.settings->profile->name, name_));
    }
    w = mine;
    profile = d.settings->profile.get();
  }
  if (!w) co_return invalid(fmt::format("no device on bus {} has a writable \"{}\"", name_, c.target));
  std::uint16_t regs[2]{};
  write_request request;
  if (auto refused = build_write(*profile, *w, c.value, request, regs))
    co_return invalid(std::move(*refused));
  wk.request.clear();
  encode_request(request, wk.request);
  if (auto ec = co_await transport_->broadcast(wk.request, settings_->broadcast_turnaround)) {
    if (ec == std::errc::operation_not_supported) {
      co_return write_outcome{
          ec, false,
          fmt::format("bus {} is Modbus TCP, which has no broadcast: write each device, or "
                      "use framing = \"rtu\" if it is a transparent serial server",
                      name_)};
    }
    spdlog::warn("modbus broadcast failed bus={} addr={} target={} value={} error=\"{}\"", name_,
                 transport_->endpoint(), c.target, c.value, ec.message());
    co_return write_outcome{
        ec, false,
        fmt::format("broadcast {}={} on bus {} failed: {}", c.target, c.value, name_, ec.message())};
  }
  spdlog::info("modbus broadcast bus={} addr={} target={} value={} turnaround_ms={}", name_,
               transport_->endpoint(), c.target, c.value, settings_->broadcast_turnaround.count());
  co_return write_outcome{{},
                          false,
                          fmt::format("broadcast {}={} to every unit on bus {}; no unit answers a broadcast, "
                                      "so nothing confirms it",
                                      c.target, c.value, name_)};
}

}  // namespace firegate::modbus::detail
