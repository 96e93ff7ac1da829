// The GB/T 26875.3 uplink's side that takes what the centre sends (docs/gb26875.md): confirms and
// denies of our frames, the centre's reads, its control commands (clock, inspection, initialise),
// and frames that fail verification. Split from gb26875_uplink.cpp, which keeps the connection and
// the sending.

#include "gb26875_uplink.hpp"

#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

#include <cstdlib>

namespace firegate {
using namespace std::chrono_literals;
namespace gb = gb26875;

namespace {

std::string hex(std::span<const std::uint8_t> bytes) {
  std::string out;
  for (const auto b : bytes) out += fmt::format("{}{:02X}", out.empty() ? "" : " ", b);
  return out;
}

constexpr auto inspection_window = 10min;

}  // namespace

void gb26875_uplink::on_frame(const gb::frame& f) {
  switch (f.command) {
    case gb::command::confirm:
      on_confirm(f);
      break;
    case gb::command::deny:
      on_deny(f);
      break;
    case gb::command::request:
      on_request(f);
      break;
    case gb::command::control:
      on_control(f);
      break;
    case gb::command::send_data:
      reply(gb::command::confirm, f.serial, {});  // the centre's own data: taken
      break;
    default:
      spdlog::debug("gb26875 uplink ignored frame command={} serial={}", gb::command_name(f.command),
                    f.serial);
      break;
  }
}

void gb26875_uplink::on_fault(const gb::frame_fault& fault) {
  ++counts_.bad_frames;
  // Denies at deny_rate a second (deny_burst at once): a flood of garbage must not be answered
  // with a flood of frames over a metered link.
  const auto now = std::chrono::steady_clock::now();
  deny_tokens_ = std::min(
      deny_burst, deny_tokens_ + std::chrono::duration<double>(now - deny_refilled_).count() * deny_rate);
  deny_refilled_ = now;
  const bool deny = deny_tokens_ >= 1.0;
  if (deny) {
    deny_tokens_ -= 1.0;
    ++counts_.denied_by_us;
  } else {
    ++counts_.denies_suppressed;
  }
  if (now - last_fault_log_ >= 10s) {
    last_fault_log_ = now;
    spdlog::warn(
        "gb26875 uplink bad frame from centre={}:{} serial={} error=\"{}\" bad_frames={} "
        "denies_suppressed={} "
        "action={}",
        cfg_.host, cfg_.port, fault.serial, fault.detail, counts_.bad_frames, counts_.denies_suppressed,
        deny ? "deny" : "\"none: denies are rate-limited\"");
  }
  if (deny) reply(gb::command::deny, fault.serial, {});
}

void gb26875_uplink::on_confirm(const gb::frame& f) {
  const bool was_abnormal = exchange_.link_abnormal();
  if (exchange_.on_confirm(f.serial, std::chrono::steady_clock::now()) != gb26875_exchange::step::confirmed) {
    spdlog::debug("gb26875 uplink confirm for serial={} not waited for", f.serial);
    return;
  }
  confirm_timer_.cancel();
  ++counts_.confirmed;
  last_confirm_ = clock::now();
  counts_.last_latency_ms = static_cast<std::uint64_t>(exchange_.last_latency().count());
  if (was_abnormal) spdlog::info("gb26875 uplink link normal centre={}:{}", cfg_.host, cfg_.port);
  const auto& w = *exchange_.current();
  ack_latency_.observe(exchange_.last_latency());
  if (w.item.alarm_read) alarm_latency_.observe(*last_confirm_ - *w.item.alarm_read);
  if (!w.heartbeat) {
    spdlog::debug("gb26875 uplink confirmed serial={} what={} outbox_id={} ms={}", f.serial, w.item.what,
                  w.item.id, counts_.last_latency_ms);
  }
  done_current();
}

void gb26875_uplink::on_deny(const gb::frame& f) {
  const auto step = exchange_.on_deny(f.serial);
  if (step == gb26875_exchange::step::not_waited_for) {
    spdlog::debug("gb26875 uplink deny for serial={} not waited for", f.serial);
    return;
  }
  confirm_timer_.cancel();
  ++counts_.denied_by_centre;
  const auto& w = *exchange_.current();
  if (step == gb26875_exchange::step::send_again) {
    // It may have been damaged on the way: once more, as it was.
    spdlog::warn("gb26875 uplink centre denied serial={} what={} action=\"send once more\"", f.serial,
                 w.item.what);
    send_current();
    return;
  }
  ++counts_.set_aside;
  spdlog::error(
      "gb26875 uplink centre denied twice serial={} what={} outbox_id={} frame=\"{}\" action=\"set aside: it "
      "would block what comes after it\" check=\"the centre's log for why it refuses this frame; the item "
      "stays on the other uplinks\"",
      f.serial, w.item.what, w.item.id,
      hex(gb::encode(make_frame(gb::command::send_data, w.serial, w.item.data))));
  done_current();
}

void gb26875_uplink::on_request(const gb::frame& f) {
  std::string error;
  const auto request = gb::decode_app_data(f.data, error);
  const auto* spec = request ? gb::find_type(request->type) : nullptr;
  if (!request || spec == nullptr || spec->uplink || request->type > 88) {
    ++counts_.denied_by_us;
    spdlog::warn("gb26875 uplink request not understood serial={} error=\"{}\" action=deny", f.serial,
                 error.empty() ? fmt::format("type {} is not a read", request ? request->type : 0) : error);
    reply(gb::command::deny, f.serial, {});
    return;
  }
  ++counts_.requests;
  const auto serial = f.serial;
  const auto type = request->type;
  const auto send = [this, serial, type, c = link_](std::optional<gb::app_data> answer) {
    if (!connected_ || c->closed) return;  // asked on a connection since lost
    if (!answer) {
      ++counts_.denied_by_us;
      spdlog::info("gb26875 uplink request type={} serial={} answer=none action=deny", type, serial);
      reply(gb::command::deny, serial, {});
      return;
    }
    try {
      // Over one frame's object limit or 1,024 bytes: several responses under the request's serial.
      const auto parts = gb::split(*answer);
      std::vector<std::vector<std::uint8_t>> frames;
      for (const auto& part : parts) frames.push_back(gb::encode(part));
      for (auto& data : frames) reply(gb::command::response, serial, std::move(data));
      spdlog::info("gb26875 uplink request answered type={} serial={} answer_type={} objects={} frames={}",
                   type, serial, answer->type, answer->objects.size(), frames.size());
    } catch (const std::exception& e) {
      ++counts_.denied_by_us;
      spdlog::error("gb26875 uplink cannot encode answer type={} error=\"{}\" action=deny", type, e.what());
      reply(gb::command::deny, serial, {});
    }
  };
  // What the UITD itself knows is answered here; the rest by the application.
  const auto now = now_label();
  switch (type) {
    case 85: {
      const auto v = firegate_gb_version();
      send(gb::app_data{25, {{{v.major, v.minor}, std::nullopt}}});
      return;
    }
    case 88:
      send(gb::app_data{28, {{{now}, std::nullopt}}});
      return;
    default:
      break;
  }
  if (!query_) {
    send(std::nullopt);
    return;
  }
  query_(*request, held(send));
}

void gb26875_uplink::on_control(const gb::frame& f) {
  std::string error;
  const auto command = gb::decode_app_data(f.data, error);
  if (!command || command->objects.empty()) {
    ++counts_.denied_by_us;
    spdlog::warn("gb26875 uplink control command not understood serial={} error=\"{}\" action=deny", f.serial,
                 error.empty() ? "no information object" : error);
    reply(gb::command::deny, f.serial, {});
    return;
  }
  switch (command->type) {
    case 90: {
      const auto* label = std::get_if<gb::time_label>(&command->objects.front().values.front());
      const auto centre_time = label ? label->to_time_point() : std::nullopt;
      if (!centre_time) {
        ++counts_.denied_by_us;
        spdlog::warn("gb26875 uplink clock synchronisation with an invalid time serial={} action=deny",
                     f.serial);
        reply(gb::command::deny, f.serial, {});
        return;
      }
      // To the second: the label has no finer part.
      const auto now = std::chrono::floor<std::chrono::seconds>(clock::now());
      const auto step = *centre_time - now;
      centre_clock_ = clock_measure{step, clock::now()};
      if (const auto step_s = std::chrono::duration_cast<std::chrono::seconds>(step);
          std::chrono::abs(step_s) > cfg_.clock_max_step) {
        // A spoofed or broken centre must not move the time of every alarm: refused, reported.
        ++counts_.denied_by_us;
        reply(gb::command::deny, f.serial, {});
        const auto detail = fmt::format(
            "the centre {}:{} asked to set the time labels to {}, {} s {} the box's clock; at most {} s is "
            "followed ([uplink.gb26875] clock_max_step_s), so the labels stay on {} s; check the box's "
            "clock (timedatectl: NTP synchronised?) and ask the centre to check its own",
            cfg_.host, cfg_.port, label->text(), std::abs(step_s.count()),
            step_s.count() > 0 ? "ahead of" : "behind", cfg_.clock_max_step.count(),
            std::chrono::duration_cast<std::chrono::seconds>(clock_offset_).count());
        spdlog::error(
            "gb26875 uplink clock synchronisation refused serial={} centre_time=\"{}\" step_s={} "
            "max_step_s={} action=deny check=\"the box's NTP, then the centre's clock\"",
            f.serial, label->text(), step_s.count(), cfg_.clock_max_step.count());
        // 0 is the site's own choice never to follow the centre: logged, no fault.
        if (!clock_refused_reported_ && clock_refused_ && cfg_.clock_max_step.count() > 0) {
          clock_refused_reported_ = true;
          clock_refused_(detail, static_cast<double>(step_s.count()));
        }
        return;
      }
      reply(gb::command::confirm, f.serial, {});
      clock_refused_reported_ = false;
      clock_offset_ = step;
      const auto offset_ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock_offset_).count();
      spdlog::log(
          std::abs(offset_ms) > 60000 ? spdlog::level::warn : spdlog::level::info,
          "gb26875 uplink clock synchronised by the centre centre_time=\"{}\" offset_ms={} action=\"time "
          "labels sent to the centre follow its clock\"{}",
          label->text(), offset_ms,
          std::abs(offset_ms) > 60000 ? " check=\"the box's clock is off by over a minute: its NTP\"" : "");
      const auto t = now_label();
      queue(lane::fault, {0, gb::encode(gb::app_data{28, {{{t}, std::nullopt}}}), "UITD time"});
      return;
    }
    case 91: {
      reply(gb::command::confirm, f.serial, {});
      ++counts_.inspections;
      inspection_ = inspection{clock::now(), std::chrono::steady_clock::now() + inspection_window};
      spdlog::warn(
          "gb26875 uplink inspection check from the centre action=\"the duty person answers within 10 "
          "minutes: "
          "firegatectl gb26875 answer\"");
      inspection_timer_.expires_after(inspection_window);
      inspection_timer_.async_wait(held([this](boost::system::error_code ec) {
        if (ec || stopped_ || !inspection_) return;
        ++counts_.inspections_missed;
        inspection_.reset();
        spdlog::error(
            "gb26875 uplink inspection check not answered within 10 minutes check=\"someone must be on duty "
            "at "
            "this place; the centre records the miss\"");
      }));
      return;
    }
    case 89:
      // The records a fire transmission device keeps are kept through anything (GB 25506 practice).
      ++counts_.denied_by_us;
      spdlog::warn(
          "gb26875 uplink centre asked to initialise the UITD serial={} action=\"deny: firegate does not "
          "erase its records on request\"",
          f.serial);
      reply(gb::command::deny, f.serial, {});
      return;
    default:
      ++counts_.denied_by_us;
      spdlog::warn("gb26875 uplink control command type={} serial={} not supported action=deny",
                   command->type, f.serial);
      reply(gb::command::deny, f.serial, {});
      return;
  }
}

std::string gb26875_uplink::answer_inspection(unsigned operator_number) {
  if (!inspection_) return "the centre has no inspection check waiting";
  if (operator_number > 255) return "the operator number is 0 to 255";
  inspection_.reset();
  inspection_timer_.cancel();
  ++counts_.inspections_answered;
  constexpr std::int64_t inspection_reply = 1 << 5;
  const auto t = now_label();
  queue(lane::alarm,
        {0, gb::encode(gb::app_data{24, {{{inspection_reply, std::int64_t{operator_number}}, t}}}),
         "inspection answer"});
  spdlog::info("gb26875 uplink inspection check answered operator={}", operator_number);
  return {};
}

}  // namespace firegate
