#pragma once
// The simulated devices. Each device is a register image built from a shipped profile (the same
// TOML the daemon reads), so every profile can be simulated and values are set by point name in
// engineering units. A little device logic per known model makes it behave like the real one: an
// EFD-4T raises its alarm bits when residual current or a cable temperature passes its setting for
// its alarm delay, and its fault bits on a probe open; a GD-1 derives its state from concentration;
// an SD-1 in fire shows smoke. Owned by the simulator's loop; not thread-safe.

#include "modbus/profile.hpp"

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <vector>

namespace firegate::sim {

using steady = std::chrono::steady_clock;

/// One simulated device.
struct device {
  std::shared_ptr<const modbus::device_profile> profile;
  std::map<std::uint16_t, std::uint16_t> holding, input;  ///< registers that exist; others: exception 2
  std::map<std::uint16_t, bool> coils, discrete;
  bool answering{true};                ///< false: dead on the wire, no answer at all
  std::chrono::milliseconds delay{0};  ///< answers this late (a slow device or a busy gateway)
  int corrupt_percent{0};              ///< this share of answers is corrupted (CRC on RTU, length on TCP)
  int junk_percent{0};                 ///< this share of valid answers is followed by stray bytes
  /// Reserved registers between documented ones, which read 0 unless `strict`: then a read that
  /// covers one gets exception 2, as some devices answer.
  std::map<std::uint16_t, bool> reserved_holding, reserved_input;
  bool strict{false};
  /// Drifting points: the value set by a script or at start, noise is added around it.
  std::map<std::string, double, std::less<>> base;
  /// How much each drifting point wanders around its base (engineering units).
  std::map<std::string, double, std::less<>> noise;
  struct ramp {
    double from, to;
    steady::time_point start;
    std::chrono::duration<double> length;
  };
  std::map<std::string, ramp, std::less<>> ramps;
  /// EFD-4T alarm delay: when each alarm condition began to hold, by alarm bit.
  std::map<int, steady::time_point> pending_alarm;
};

class fleet {
 public:
  explicit fleet(std::uint64_t seed) : random_(static_cast<unsigned>(seed)) {}
  /// Adds a device at `unit`; an error text when the unit is taken.
  std::optional<std::string> add(std::uint8_t unit, std::shared_ptr<const modbus::device_profile> profile);
  std::size_t size() const { return devices_.size(); }
  /// "SD-1 ×3 (units 1-3), EFD-4T ×1 (unit 4)" for the start-up line.
  std::string describe() const;

  /// The answer PDU to a request PDU for `unit`, or nullopt when nobody answers (no device there,
  /// or it is set not to answer). Register reads, single and multiple writes, exceptions as a real
  /// device gives them (Modbus Application Protocol §7).
  std::optional<std::vector<std::uint8_t>> answer(std::uint8_t unit, std::span<const std::uint8_t> pdu,
                                                  steady::time_point now);
  const device* find(std::uint8_t unit) const;
  /// A write to unit 0: every answering device acts on it; nobody replies.
  void broadcast(std::span<const std::uint8_t> pdu, steady::time_point now);

  /// Applies a change: a point or writable name of the device's profile with an engineering value,
  /// or one of the simulator's own fields (answering 0/1, delay_ms, corrupt 0-100). Returns an error
  /// text.
  std::optional<std::string> set(std::uint8_t unit, std::string_view field, double value,
                                 steady::time_point now);
  /// Sets a point to its first "no value" raw value from the profile (0x7FFF: a probe open).
  std::optional<std::string> set_invalid(std::uint8_t unit, std::string_view point, steady::time_point now);
  /// Moves a point from its value now to `to` over `seconds` (a leakage-current ramp).
  std::optional<std::string> ramp(std::uint8_t unit, std::string_view point, double to, double seconds,
                                  steady::time_point now);
  /// Advances ramps, noise and device logic to `now`. Called every 100 ms.
  void tick(steady::time_point now);
  /// Whether this answer should be corrupted (by the device's corrupt_percent).
  bool corrupt(std::uint8_t unit);
  /// Whether stray bytes should follow this answer (by the device's junk_percent).
  bool junk(std::uint8_t unit);

  /// The engineering value of a point, for tests and logs (NaN when it holds a "no value").
  std::optional<double> value(std::uint8_t unit, std::string_view point) const;

  /// Told of every command a master writes (silence, reset), for the simulator's log.
  std::function<void(std::uint8_t unit, std::string_view command)> on_command;

 private:
  const modbus::point_def* point(const device& d, std::string_view name) const;
  std::uint16_t* register_of(device& d, const modbus::point_def& p);
  void put(device& d, const modbus::point_def& p, double v);
  double get(const device& d, std::string_view name) const;
  void behave(std::uint8_t unit, device& d, steady::time_point now);

  std::map<std::uint8_t, device> devices_;
  std::mt19937 random_;
};

}  // namespace firegate::sim
