#pragma once
// The reference GB/T 26875.3 centre (firegate-gb26875-center --json) as a test's peer: started on a
// free port, what it received read from its JSON lines, what it asks typed on its standard input.

#include "support.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace firegate::test {

/// The reference centre, listening on a free port.
class gb_centre {
 public:
  explicit gb_centre(const temp_dir& dir, const std::string& name = "centre") {
    process_ =
        std::make_unique<child>(std::vector<std::string>{firegate_gb_center_path(), "--json", "--listen",
                                                         "127.0.0.1:0", "--address", "89912"},
                                dir / (name + ".log"), true);
    nlohmann::json listening;
    if (!wait_until(
            [&] {
              for (auto& l : lines()) {
                if (l.value("event", "") == "listening") listening = l;
              }
              return listening.is_object();
            },
            std::chrono::seconds(10))) {
      throw std::runtime_error("the reference centre did not start: " + process_->log_text());
    }
    port_ = listening.value("port", std::uint16_t{0});
  }
  std::uint16_t port() const { return port_; }
  void send(const std::string& line) { process_->send(line + "\n"); }

  std::vector<nlohmann::json> lines() const {
    std::vector<nlohmann::json> out;
    std::istringstream in(process_->log_text());
    std::string line;
    while (std::getline(in, line)) {
      auto j = nlohmann::json::parse(line, nullptr, false);
      if (j.is_object()) out.push_back(std::move(j));
    }
    return out;
  }
  /// Frames the UITD sent, of application data `type` (0: any).
  std::vector<nlohmann::json> frames(int type = 0) const {
    std::vector<nlohmann::json> out;
    for (auto& l : lines()) {
      if (l.value("event", "") != "frame") continue;
      if (type == 0 || (l.contains("data") && l["data"].value("type", 0) == type))
        out.push_back(std::move(l));
    }
    return out;
  }
  /// The first frame that `match` takes, waiting up to `timeout`.
  std::optional<nlohmann::json> wait_frame(const std::function<bool(const nlohmann::json&)>& match,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    return wait_first<nlohmann::json>([this] { return frames(); }, match, timeout);
  }
  std::string log_text() const { return process_->log_text(); }

 private:
  std::unique_ptr<child> process_;
  std::uint16_t port_{0};
};

/// Component status (type 2) of component `address` with status bit `bit` set (or, with
/// bit 0 alone, a status of normal only).
inline std::function<bool(const nlohmann::json&)> status_of(std::int64_t address, int bits,
                                                            const std::string& command = "send data") {
  return [=](const nlohmann::json& f) {
    if (f.value("command", "") != command || !f.contains("data") || f["data"].value("type", 0) != 2)
      return false;
    for (const auto& o : f["data"]["objects"]) {
      if (o.value("component address", -1) == address && o.value("component status", -1) == bits) return true;
    }
    return false;
  };
}

/// The part of a site file after its head (site_base, or site_header with the MQTT uplink too): the
/// GB/T 26875.3 uplink to the centre at 127.0.0.1:centre_port (UITD 889, centre 89912, then
/// `uplink_keys`), and on the simulator at 127.0.0.1:modbus_port a smoke detector smoke-201 (SD-1,
/// unit 1, component 101, its fire ending with its detector: latch = false) and an electrical-fire
/// detector ef-kitchen (EFD-4T, unit 2, component 102).
inline std::string gb_site_tail(std::uint16_t centre_port, std::uint16_t modbus_port,
                                const std::string& uplink_keys = "") {
  return fmt::format(R"([uplink.gb26875]
host = "127.0.0.1"
port = {}
uitd_address = 889
centre_address = 89912
{}
)",
                     centre_port, uplink_keys) +
         modbus_tcp_bus(modbus_port) + R"([[devices]]
name = "smoke-201"
bus = "tcp-1"
profile = "SD-1"
unit_id = 1
location = "二楼 201 房"
gb26875_address = 101
[devices.rules.fire]
latch = false
[[devices]]
name = "ef-kitchen"
bus = "tcp-1"
profile = "EFD-4T"
unit_id = 2
location = "厨房配电箱"
gb26875_address = 102
)";
}

}  // namespace firegate::test
